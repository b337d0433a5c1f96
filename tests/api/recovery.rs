//! Password reset, email verification and the refresh-token cookie.

use api_tests::{Function, PASSWORD, TestApp, Tokens};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const NEW_PASSWORD: &str = "an entirely new passphrase";

fn comparable(response: &api_tests::Response) -> (StatusCode, String) {
    (response.status, response.text())
}

#[sqlx::test(migrations = "../migrations")]
async fn reset_answers_alike_for_unknown_emails_and_mails_only_real_accounts(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    app.run_worker().await;
    let before = app.mailbox().len();

    let known = app
        .post(
            "/api/v1/auth/password-reset",
            &json!({"email": "ADA@example.com"}),
            None,
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/password-reset",
            &json!({"email": "nobody@example.com"}),
            None,
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(comparable(&known), comparable(&unknown));
    // Both queued a message: the API did the same work either way.
    assert_eq!(app.run_worker().await, 2);
    let mails = app.mailbox();
    assert_eq!(mails.len(), before + 1, "{mails:?}");
    let mail = mails.last().unwrap();
    assert_eq!(mail.to, "ada@example.com");
    assert!(
        mail.text
            .contains("https://app.example.com/reset-password?token=")
    );

    // Malformed addresses get a 422 (that reveals nothing about accounts).
    app.post(
        "/api/v1/auth/password-reset",
        &json!({"email": "nope"}),
        None,
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reset_token_works_once_and_revokes_every_session(db: PgPool) {
    let app = TestApp::new(db).await;
    let laptop = app.user("ada@example.com").await;
    let phone: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    app.post(
        "/api/v1/auth/password-reset",
        &json!({"email": "ada@example.com"}),
        None,
    )
    .await;
    let token = app.emailed_token("ada@example.com", "reset-password").await;

    // A weak password is refused without spending the token.
    let weak = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "password"}),
            None,
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak["errors"][0]["field"], "new_password");
    let contains_email = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "ada is the best ever"}),
            None,
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(contains_email["errors"][0]["code"], "contains_email");

    let confirm = json!({"token": token, "new_password": NEW_PASSWORD});
    let (first, second) = tokio::join!(
        app.post("/api/v1/auth/password-reset/confirm", &confirm, None),
        app.post("/api/v1/auth/password-reset/confirm", &confirm, None),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST]);
    app.post("/api/v1/auth/password-reset/confirm", &confirm, None)
        .await
        .problem(StatusCode::BAD_REQUEST);

    for session in [&laptop, &phone] {
        app.me(&session.access_token)
            .await
            .problem(StatusCode::UNAUTHORIZED);
        app.refresh(&session.refresh_token)
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    app.login("ada@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let fresh: Tokens = app.login("ada@example.com", NEW_PASSWORD).await.json();
    // The link proved control of the address.
    assert_eq!(
        app.me(&fresh.access_token).await.json::<Value>()["email_verified"],
        true
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn expired_superseded_and_forged_reset_tokens_are_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    let confirm = |token: String| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/auth/password-reset/confirm",
                &json!({"token": token, "new_password": NEW_PASSWORD}),
                None,
            )
            .await
        }
    };
    let reset = json!({"email": "ada@example.com"});
    let request = || app.post("/api/v1/auth/password-reset", &reset, None);

    request().await;
    let old = app.emailed_token("ada@example.com", "reset-password").await;
    request().await;
    let newer = app.emailed_token("ada@example.com", "reset-password").await;
    assert_ne!(old, newer);
    confirm(old).await.problem(StatusCode::BAD_REQUEST);
    // A (live) verification token is not a reset token.
    let verify = app.emailed_token("ada@example.com", "verify-email").await;
    confirm(verify).await.problem(StatusCode::BAD_REQUEST);

    sqlx::query("UPDATE user_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    confirm(newer).await.problem(StatusCode::BAD_REQUEST);
    confirm("x".repeat(43))
        .await
        .problem(StatusCode::BAD_REQUEST);
    confirm(String::new())
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn email_verification_and_resend(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = app.user("ada@example.com").await;
    assert_eq!(
        app.me(&ada.access_token).await.json::<Value>()["email_verified"],
        false
    );

    let first = app.emailed_token("ada@example.com", "verify-email").await;
    let resend = app
        .post(
            "/api/v1/auth/verify-email/resend",
            &json!({}),
            Some(&ada.access_token),
        )
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED);
    let second = app.emailed_token("ada@example.com", "verify-email").await;
    // The resend superseded the first link.
    app.post("/api/v1/auth/verify-email", &json!({"token": first}), None)
        .await
        .problem(StatusCode::BAD_REQUEST);
    let verified = app
        .post("/api/v1/auth/verify-email", &json!({"token": second}), None)
        .await;
    assert_eq!(
        verified.status,
        StatusCode::NO_CONTENT,
        "{}",
        verified.text()
    );
    app.post("/api/v1/auth/verify-email", &json!({"token": second}), None)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(
        app.me(&ada.access_token).await.json::<Value>()["email_verified"],
        true
    );

    // Once verified, a resend sends nothing.
    let mails = app.mailbox().len();
    app.post(
        "/api/v1/auth/verify-email/resend",
        &json!({}),
        Some(&ada.access_token),
    )
    .await;
    app.run_worker().await;
    assert_eq!(app.mailbox().len(), mails);
    app.post("/api/v1/auth/verify-email/resend", &json!({}), None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("refresh_token="))
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn browsers_refresh_and_log_out_with_the_cookie(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    let login = app.login("ada@example.com", PASSWORD).await;
    let set_cookie = login.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let tokens: Tokens = login.json();
    assert_eq!(cookie_value(&set_cookie), tokens.refresh_token);

    // Refresh with only the cookie, no body at all.
    let cookie = format!("theme=dark; refresh_token={}", tokens.refresh_token);
    let refreshed = app
        .request(
            Function::Auth,
            Method::POST,
            "/api/v1/auth/refresh",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text());
    let next = cookie_value(refreshed.header("set-cookie").unwrap());
    assert_eq!(next.len(), 43, "a new refresh token in the cookie");
    // Scripts never see a cookie-borne refresh token: the body carries only the access
    // token, so an XSS calling refresh cannot steal the session.
    let body: Value = refreshed.json();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(app.me(body["access_token"].as_str().unwrap()).await.status == StatusCode::OK);
    let rotated = format!("refresh_token={next}");
    let again = app
        .request(
            Function::Auth,
            Method::POST,
            "/api/v1/auth/refresh",
            &[("cookie", &rotated)],
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let latest: Value = again.json();
    let latest_cookie = format!(
        "refresh_token={}",
        cookie_value(again.header("set-cookie").unwrap())
    );

    // Past the reuse window, the old cookie is a reused token: refused, and the session
    // revoked (its newest cookie and access token stop working too).
    app.age_rotations(11).await;
    let replay = app
        .request(
            Function::Auth,
            Method::POST,
            "/api/v1/auth/refresh",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    replay.problem(StatusCode::UNAUTHORIZED);
    app.me(latest["access_token"].as_str().unwrap())
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.request(
        Function::Auth,
        Method::POST,
        "/api/v1/auth/refresh",
        &[("cookie", &latest_cookie)],
        None,
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);

    // Log out with a fresh session's cookie only: the cookie is cleared, the session dead.
    let login: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    let cookie = format!("refresh_token={}", login.refresh_token);
    let logout = app
        .request(
            Function::Auth,
            Method::POST,
            "/api/v1/auth/logout",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text());
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    app.me(&login.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.refresh(&login.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // Neither bearer nor cookie nor body: 401. A non-JSON body: 415.
    app.request(
        Function::Auth,
        Method::POST,
        "/api/v1/auth/logout",
        &[],
        None,
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    app.request(
        Function::Auth,
        Method::POST,
        "/api/v1/auth/refresh",
        &[("content-type", "text/plain")],
        Some("token"),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.post_raw("/api/v1/auth/refresh", "{not json", None)
        .await
        .problem(StatusCode::BAD_REQUEST);
    app.post("/api/v1/auth/refresh", &json!({"refresh_token": 5}), None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn security_events_are_audited(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = app.user("ada@example.com").await;
    app.refresh(&ada.refresh_token).await;
    app.age_rotations(11).await;
    app.refresh(&ada.refresh_token).await; // reuse
    let again: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    app.post("/api/v1/auth/logout", &json!({}), Some(&again.access_token))
        .await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM audit_events ORDER BY occurred_at, id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "register",
            "login_succeeded",
            "refresh_reuse_detected",
            "login_succeeded",
            "logout"
        ]
    );
    let row: (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as("SELECT ip, user_agent, request_id FROM audit_events WHERE kind = 'logout'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(row.0.as_deref(), Some("203.0.113.7"));
    assert_eq!(row.1.as_deref(), Some("api-tests"));
    assert!(row.2.is_some());
    // Append-only.
    for statement in [
        "UPDATE audit_events SET kind = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        assert!(
            sqlx::query(statement).execute(&app.db).await.is_err(),
            "{statement}"
        );
    }
}

/// Everything the SES emulator has accepted for sending.
async fn ses_outbox() -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", api_tests::sqs::endpoint());
    let data: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[sqlx::test(migrations = "../migrations")]
async fn account_emails_go_out_through_ses(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    app.run_worker().await;
    let from = format!("no-reply-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut state = api_tests::lambda::worker_state(&app.db);
    state.mailer = notify_worker::mail::Mailer::new(&notify_worker::mail::MailTransport::Ses {
        from: from.clone(),
    })
    .unwrap();
    let body = json!({"email": "ada@example.com"});
    let reset = || app.post("/api/v1/auth/password-reset", &body, None);

    // The sender is not verified yet: SES refuses, the record is reported for a retry,
    // and no usable token is left behind.
    reset().await;
    let event = app
        .queue
        .receive_event(std::time::Duration::from_secs(1))
        .await;
    let response = api_tests::lambda::invoke_worker_with(&state, event).await;
    assert_eq!(
        response["batchItemFailures"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    let tokens: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_tokens WHERE purpose = 'password_reset' AND used_at IS NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(tokens, 0);

    // Verified: the email goes out through SES with a working link.
    let ses = aws_sdk_sesv2::Config::builder()
        .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
        .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(api_tests::sqs::endpoint())
        .http_client(api_tests::sdk_http_client())
        .build();
    aws_sdk_sesv2::Client::from_conf(ses)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .unwrap();
    reset().await;
    let event = app
        .queue
        .receive_event(std::time::Duration::from_secs(1))
        .await;
    let response = api_tests::lambda::invoke_worker_with(&state, event).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let sent: Vec<Value> = ses_outbox()
        .await
        .into_iter()
        .filter(|m| m["source"] == from.as_str())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["destinations"]["ToAddresses"],
        json!(["ada@example.com"])
    );
    let body = sent[0]["body"].as_str().unwrap();
    let token = body
        .split("/reset-password?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let confirm = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": NEW_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(confirm.status, StatusCode::NO_CONTENT, "{}", confirm.text());
}

#[sqlx::test(migrations = "../migrations")]
async fn an_emailed_link_works_even_when_recording_the_send_fails(db: PgPool) {
    let app = TestApp::new(db).await;
    let registered = app.register("ada@example.com", PASSWORD, "Ada").await;
    assert_eq!(registered.status, StatusCode::ACCEPTED);
    // Recording a message as handled fails when it commits, after the email went out.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE CONSTRAINT TRIGGER refuse_handled AFTER INSERT ON processed_messages
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let event = app
        .queue
        .receive_event(std::time::Duration::from_secs(1))
        .await;
    let response = api_tests::lambda::invoke_worker(&app.db, event.clone()).await;
    // Both records (welcome, verification) are reported for a retry...
    assert_eq!(
        response["batchItemFailures"].as_array().unwrap().len(),
        2,
        "{response}"
    );
    // ...but the email is out, and its link already works.
    let mails = app.mailbox();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let text = &mails[0].text;
    let token = &text[text.find("token=").unwrap() + "token=".len()..];
    let token = token.split_whitespace().next().unwrap();
    let verified = app
        .post("/api/v1/auth/verify-email", &json!({"token": token}), None)
        .await;
    assert_eq!(
        verified.status,
        StatusCode::NO_CONTENT,
        "{}",
        verified.text()
    );

    // The retry finds the address verified: no second email.
    sqlx::raw_sql("DROP TRIGGER refuse_handled ON processed_messages")
        .execute(&app.db)
        .await
        .unwrap();
    let response = api_tests::lambda::invoke_worker(&app.db, event).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(app.mailbox().len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_second_delivery_waits_while_the_first_is_sending(db: PgPool) {
    let app = TestApp::new(db).await;
    app.register("ada@example.com", PASSWORD, "Ada").await;
    let event = app
        .queue
        .receive_event(std::time::Duration::from_secs(1))
        .await;
    // A delivery that committed its token and is still sending (or died sending).
    let verify = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["body"].as_str().unwrap().contains("verify_email"))
        .unwrap()
        .clone();
    let message_id = serde_json::from_str::<Value>(verify["body"].as_str().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, email, expires_at, message_id)
         SELECT sha256('in flight'), id, 'email_verification', email, now() + interval '30 minutes', $1::uuid
         FROM users",
    )
    .bind(&message_id)
    .execute(&app.db)
    .await
    .unwrap();
    let batch = json!({"Records": [verify]});
    let response = api_tests::lambda::invoke_worker(&app.db, batch.clone()).await;
    assert_eq!(
        response["batchItemFailures"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    assert!(
        app.mailbox().is_empty(),
        "no second link while one is sending"
    );

    // Past the lease (that delivery died): the redelivery sends a fresh link.
    sqlx::query("UPDATE user_tokens SET created_at = now() - interval '2 minutes'")
        .execute(&app.db)
        .await
        .unwrap();
    let response = api_tests::lambda::invoke_worker(&app.db, batch).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(app.mailbox().len(), 1);
}
