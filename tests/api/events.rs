//! Every sample event in `events/` runs through its function's real Lambda code path,
//! with the answer a deployed function would give.

use std::path::{Path, PathBuf};

use api_tests::{
    Function, PASSWORD, TestApp,
    lambda::{invoke_http, invoke_relay, invoke_worker},
};
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn all_samples() -> Vec<String> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(events_dir()).unwrap() {
        let dir = dir.unwrap();
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let name = file.unwrap().file_name().into_string().unwrap();
            found.push(format!(
                "{}/{}",
                dir.file_name().into_string().unwrap(),
                name
            ));
        }
    }
    found.sort();
    found
}

fn load(sample: &str) -> String {
    std::fs::read_to_string(events_dir().join(sample)).unwrap()
}

/// The task id the task samples use; replaced by the id the create sample gets.
const SAMPLE_TASK_ID: &str = "0190f5d2-7c1a-7000-8000-0000000000aa";
/// Likewise for the upload samples.
const SAMPLE_UPLOAD_ID: &str = "0190f5d2-7c1a-7000-8000-0000000000bb";

/// Likewise for the event samples.
const SAMPLE_EVENT_ID: &str = "0190f5d2-7c1a-7000-8000-0000000000cc";
/// The ticket type, order, ticket and ticket code the order samples name; replaced by
/// what the add-ticket-type and order samples create.
const SAMPLE_TICKET_TYPE_ID: &str = "0190f5d2-7c1a-7000-8000-0000000000dd";
const SAMPLE_ORDER_ID: &str = "0190f5d2-7c1a-7000-8000-0000000000ee";
const SAMPLE_TICKET_ID: &str = "0190f5d2-7c1a-7000-8000-0000000000ff";
const SAMPLE_TICKET_CODE: &str = "SAMPLETICKETCODEAAAAAAAAAA";

/// The HTTP samples and the status each must produce.
const HTTP_SAMPLES: &[(&str, Function, StatusCode)] = &[
    ("auth/register.json", Function::Auth, StatusCode::ACCEPTED),
    (
        "auth/register-malformed.json",
        Function::Auth,
        StatusCode::BAD_REQUEST,
    ),
    ("auth/login.json", Function::Auth, StatusCode::OK),
    ("auth/me.json", Function::Auth, StatusCode::OK),
    ("auth/refresh.json", Function::Auth, StatusCode::OK),
    (
        "auth/verify-email-resend.json",
        Function::Auth,
        StatusCode::ACCEPTED,
    ),
    // The sample's token was never emailed: refused like a used or expired one.
    (
        "auth/verify-email.json",
        Function::Auth,
        StatusCode::BAD_REQUEST,
    ),
    (
        "auth/password-reset.json",
        Function::Auth,
        StatusCode::ACCEPTED,
    ),
    (
        "auth/password-reset-confirm.json",
        Function::Auth,
        StatusCode::BAD_REQUEST,
    ),
    (
        "notifications/list.json",
        Function::Notifications,
        StatusCode::OK,
    ),
    (
        "notifications/realtime-ticket.json",
        Function::Notifications,
        StatusCode::CREATED,
    ),
    // The sample's id belongs to nobody here.
    (
        "notifications/mark-read.json",
        Function::Notifications,
        StatusCode::NOT_FOUND,
    ),
    ("platform/health.json", Function::Platform, StatusCode::OK),
    ("platform/openapi.json", Function::Platform, StatusCode::OK),
    (
        "platform/docs.json",
        Function::Platform,
        StatusCode::SEE_OTHER,
    ),
    ("tasks/create.json", Function::Tasks, StatusCode::CREATED),
    ("tasks/list.json", Function::Tasks, StatusCode::OK),
    ("tasks/get.json", Function::Tasks, StatusCode::OK),
    // The sample's If-Match is version 1, the version the create sample made.
    ("tasks/update.json", Function::Tasks, StatusCode::OK),
    // If-Match "2": the version the update sample made.
    ("tasks/delete.json", Function::Tasks, StatusCode::NO_CONTENT),
    (
        "uploads/create.json",
        Function::Uploads,
        StatusCode::CREATED,
    ),
    ("uploads/show.json", Function::Uploads, StatusCode::OK),
    // Nothing was uploaded: the file is not ready.
    (
        "uploads/download.json",
        Function::Uploads,
        StatusCode::CONFLICT,
    ),
    (
        "uploads/delete.json",
        Function::Uploads,
        StatusCode::NO_CONTENT,
    ),
    // The sample user is made an organizer first (see below).
    (
        "events-api/create.json",
        Function::Events,
        StatusCode::CREATED,
    ),
    ("events-api/get.json", Function::Events, StatusCode::OK),
    // If-Match "1": the version the create sample made.
    ("events-api/update.json", Function::Events, StatusCode::OK),
    (
        "events-api/add-ticket-type.json",
        Function::Events,
        StatusCode::CREATED,
    ),
    ("events-api/publish.json", Function::Events, StatusCode::OK),
    ("events-api/mine.json", Function::Events, StatusCode::OK),
    // Published: anyone reads it, with its ticket types.
    (
        "events-api/get-by-slug-public.json",
        Function::Events,
        StatusCode::OK,
    ),
    // Anyone may browse; the event is listed.
    (
        "events-api/catalogue.json",
        Function::Events,
        StatusCode::OK,
    ),
    (
        "events-api/create-discount-code.json",
        Function::Events,
        StatusCode::CREATED,
    ),
    // The sample user buys two of the free passes: confirmed with two tickets.
    ("orders/create.json", Function::Orders, StatusCode::CREATED),
    ("orders/list.json", Function::Orders, StatusCode::OK),
    ("orders/get.json", Function::Orders, StatusCode::OK),
    // Confirmed: only a refund by the organizer undoes it.
    ("orders/cancel.json", Function::Orders, StatusCode::CONFLICT),
    ("orders/tickets.json", Function::Orders, StatusCode::OK),
    ("orders/ticket-qr.json", Function::Orders, StatusCode::OK),
    // The organizer (the same sample user) scans the first ticket at the door.
    (
        "events-api/check-in.json",
        Function::Events,
        StatusCode::CREATED,
    ),
    (
        "events-api/attendees-csv.json",
        Function::Events,
        StatusCode::OK,
    ),
    ("events-api/sales.json", Function::Events, StatusCode::OK),
    ("users/me.json", Function::Users, StatusCode::OK),
    ("users/update-me.json", Function::Users, StatusCode::OK),
    // The sample user is no admin: the admin routes refuse it.
    ("users/list.json", Function::Users, StatusCode::FORBIDDEN),
    ("users/get.json", Function::Users, StatusCode::FORBIDDEN),
    ("users/update.json", Function::Users, StatusCode::FORBIDDEN),
    ("users/delete.json", Function::Users, StatusCode::FORBIDDEN),
    (
        "users/audit-events.json",
        Function::Users,
        StatusCode::FORBIDDEN,
    ),
    // Keeps this session, ends every other one.
    (
        "users/change-password.json",
        Function::Users,
        StatusCode::NO_CONTENT,
    ),
    // Cancelled: the tickets are void, the holder (the sample user) told.
    ("events-api/cancel.json", Function::Events, StatusCode::OK),
    // A Stripe delivery signed with scripts/dev's secret long ago: refused as stale
    // (re-sign it to replay it; README, Payments).
    (
        "payments/stripe-webhook.json",
        Function::Payments,
        StatusCode::BAD_REQUEST,
    ),
    // It ends the session the others use.
    ("auth/logout.json", Function::Auth, StatusCode::NO_CONTENT),
    // Last: logs in again (with the changed password) and tries to delete the sample user,
    // who organizes a published event by now: refused, the account and the event stay.
    (
        "users/delete-me.json",
        Function::Users,
        StatusCode::CONFLICT,
    ),
];

const OTHER_SAMPLES: &[&str] = &[
    "upload-processor/object-created.json",
    "upload-processor/sweep.json",
    "notify-worker/batch.json",
    "notify-worker/single.json",
    "outbox-relay/schedule.json",
    "migrate/invoke.json",
    "realtime/connect.json",
    "realtime/default.json",
    "realtime/disconnect.json",
    "retention/schedule.json",
];

#[test]
fn every_sample_is_exercised() {
    let mut covered: Vec<String> = HTTP_SAMPLES
        .iter()
        .map(|(s, ..)| (*s).to_owned())
        .chain(OTHER_SAMPLES.iter().map(|s| (*s).to_owned()))
        .collect();
    covered.sort();
    assert_eq!(all_samples(), covered, "add new samples to events.rs");
}

#[sqlx::test(migrations = "../migrations")]
async fn http_samples_get_the_expected_answers(db: PgPool) {
    let app = TestApp::new(db).await;
    let mut tokens: Option<api_tests::Tokens> = None;
    let mut task_id: Option<String> = None;
    let mut upload_id: Option<String> = None;
    let mut event_id: Option<String> = None;
    // What the order samples name: the ticket type, the order, its first ticket and code.
    let mut ordered: Vec<(&str, String)> = Vec::new();
    for (sample, function, expected) in HTTP_SAMPLES {
        if *sample == "users/delete-me.json" {
            let login = app.login("ada@example.com", "a brand new passphrase").await;
            tokens = Some(login.json());
        }
        let mut text = load(sample);
        if let Some(t) = &tokens {
            text = text
                .replace("REPLACE_WITH_ACCESS_TOKEN", &t.access_token)
                .replace("REPLACE_WITH_REFRESH_TOKEN", &t.refresh_token);
        }
        if let Some(id) = &task_id {
            text = text.replace(SAMPLE_TASK_ID, id);
        }
        if let Some(id) = &upload_id {
            text = text.replace(SAMPLE_UPLOAD_ID, id);
        }
        if let Some(id) = &event_id {
            text = text.replace(SAMPLE_EVENT_ID, id);
        }
        for (placeholder, value) in &ordered {
            text = text.replace(placeholder, value);
        }
        if *sample == "events-api/create.json" {
            // Organizers are made by admins; the role is read live, so the token holds.
            sqlx::query("UPDATE users SET role = 'organizer' WHERE email = 'ada@example.com'")
                .execute(&app.db)
                .await
                .unwrap();
        }
        let event: Value = serde_json::from_str(&text).unwrap();
        // The sample is what API Gateway would send: routed by the template's families.
        let path = event["rawPath"].as_str().unwrap().to_owned();
        let path = path.as_str();
        assert_eq!(Function::for_path(path), Some(*function), "{sample}");
        let family = api_tests::routes::template_routes()
            .iter()
            .filter(|r| r.matches(path))
            .max_by_key(|r| r.path.len())
            .unwrap();
        let route_key = format!("ANY {}", family.path);
        assert_eq!(event["routeKey"], route_key.as_str(), "{sample}");
        assert_eq!(
            event["requestContext"]["routeKey"],
            route_key.as_str(),
            "{sample}"
        );
        let response = invoke_http(app.router(*function), event).await;
        assert_eq!(response.status, *expected, "{sample}: {}", response.text());
        assert!(response.header("x-request-id").is_some(), "{sample}");
        match *sample {
            // The samples log in as the user the register sample creates.
            "auth/register.json" => {
                let body: Value = serde_json::from_str(&text).unwrap();
                let request: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
                assert_eq!(
                    request["password"], PASSWORD,
                    "samples use the shared test password"
                );
            }
            "auth/login.json" | "auth/refresh.json" => tokens = Some(response.json()),
            "uploads/create.json" => {
                let ticket: Value = response.json();
                upload_id = Some(ticket["id"].as_str().unwrap().to_owned());
            }
            "events-api/create.json" => {
                let event: Value = response.json();
                assert_eq!(event["status"], "draft");
                event_id = Some(event["id"].as_str().unwrap().to_owned());
            }
            "events-api/add-ticket-type.json" => {
                let created: Value = response.json();
                let id = created["id"].as_str().unwrap().to_owned();
                ordered.push((SAMPLE_TICKET_TYPE_ID, id));
            }
            "orders/create.json" => {
                let order: Value = response.json();
                assert_eq!(order["status"], "confirmed");
                let ticket = &order["tickets"][0];
                assert_eq!(ticket["attendee_name"], "Ada Lovelace");
                ordered.push((SAMPLE_ORDER_ID, order["id"].as_str().unwrap().to_owned()));
                ordered.push((SAMPLE_TICKET_ID, ticket["id"].as_str().unwrap().to_owned()));
                ordered.push((
                    SAMPLE_TICKET_CODE,
                    ticket["code"].as_str().unwrap().to_owned(),
                ));
            }
            "orders/ticket-qr.json" => {
                assert_eq!(response.header("content-type"), Some("image/svg+xml"));
            }
            "events-api/check-in.json" => {
                let admitted: Value = response.json();
                assert_eq!(admitted["attendee_name"], "Ada Lovelace");
            }
            "events-api/attendees-csv.json" => {
                assert_eq!(response.text().lines().count(), 3, "{}", response.text());
            }
            "events-api/sales.json" => {
                let sales: Value = response.json();
                assert_eq!(
                    (&sales["sold"], &sales["checked_in"]),
                    (&2.into(), &1.into())
                );
            }
            "events-api/cancel.json" => {
                let void: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM tickets WHERE status = 'void'")
                        .fetch_one(&app.db)
                        .await
                        .unwrap();
                assert_eq!(void, 2, "{sample}");
            }
            "events-api/catalogue.json" => {
                let page: Value = response.json();
                assert_eq!(page["items"][0]["title"], "Salsa Night XL");
            }
            "events-api/get-by-slug-public.json" => {
                let event: Value = response.json();
                assert_eq!(event["status"], "published");
                assert_eq!(event["ticket_types"][0]["name"], "Full pass");
            }
            "events-api/mine.json" => {
                let page: Value = response.json();
                assert_eq!(page["items"][0]["title"], "Salsa Night XL");
            }
            "tasks/create.json" => {
                let task: Value = response.json();
                task_id = Some(task["id"].as_str().unwrap().to_owned());
            }
            "auth/register-malformed.json" => {
                response.problem(StatusCode::BAD_REQUEST);
            }
            // Changes show in the answer, and deletions are real.
            "tasks/update.json" | "users/update-me.json" | "events-api/update.json" => {
                let sent: Value = serde_json::from_str(&text).unwrap();
                let body: Value = serde_json::from_str(sent["body"].as_str().unwrap()).unwrap();
                let changed: Value = response.json();
                for (field, value) in body.as_object().unwrap() {
                    assert_eq!(&changed[field], value, "{sample}: {field}");
                }
            }
            "tasks/delete.json" | "uploads/delete.json" => {
                let token = &tokens.as_ref().unwrap().access_token;
                app.get(path, Some(token))
                    .await
                    .problem(StatusCode::NOT_FOUND);
            }
            "auth/logout.json" => {
                let token = &tokens.as_ref().unwrap().access_token;
                app.me(token).await.problem(StatusCode::UNAUTHORIZED);
            }
            "users/delete-me.json" => {
                let left: (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM events)",
                )
                .fetch_one(&app.db)
                .await
                .unwrap();
                assert_eq!(left, (1, 1), "{sample}");
            }
            _ => {}
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn worker_samples_report_only_the_malformed_record(db: PgPool) {
    // The users the samples' notifications are for.
    sqlx::raw_sql(
        "INSERT INTO users (id, email, name, password_hash) VALUES
           ('0190f5d1-3e4b-7000-8000-00000000000a', 'ada@example.com', 'Ada', 'x'),
           ('0190f5d1-3e4b-7000-8000-00000000000b', 'grace@example.com', 'Grace', 'x')",
    )
    .execute(&db)
    .await
    .unwrap();
    let inbox = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT u.email || ':' || n.kind FROM notifications n JOIN users u ON u.id = n.user_id
             ORDER BY u.email",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let batch: Value = serde_json::from_str(&load("notify-worker/batch.json")).unwrap();
    let malformed: Vec<&str> = batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| serde_json::from_str::<Value>(r["body"].as_str().unwrap()).is_err())
        .map(|r| r["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(malformed.len(), 1, "the sample has one malformed record");
    let response = invoke_worker(&db, batch.clone()).await;
    assert_eq!(
        response["batchItemFailures"][0]["itemIdentifier"],
        malformed[0]
    );
    assert_eq!(response["batchItemFailures"].as_array().unwrap().len(), 1);
    let delivered = ["ada@example.com:welcome", "grace@example.com:welcome"];
    assert_eq!(inbox().await, delivered);

    // The single sample is the batch's first message again: handled once, not twice.
    let single: Value = serde_json::from_str(&load("notify-worker/single.json")).unwrap();
    let response = invoke_worker(&db, single).await;
    assert_eq!(response["batchItemFailures"], Value::Array(vec![]));
    assert_eq!(inbox().await, delivered);
}

/// Runs a WebSocket sample through the realtime function's handler, as lambda_runtime
/// would (the event JSON into its type, the response back to JSON).
async fn invoke_realtime(db: &PgPool, event: &str) -> Value {
    let event: ApiGatewayWebsocketProxyRequest =
        serde_json::from_str(event).expect("a valid API Gateway WebSocket event");
    let state = realtime::State { db: db.clone() };
    let mut context = lambda_runtime::Context::default();
    context.request_id = "sample".into();
    let response = realtime::handle(&state, lambda_runtime::LambdaEvent::new(event, context))
        .await
        .expect("the realtime function answers every event");
    serde_json::to_value(response).unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn realtime_samples_connect_ping_and_disconnect(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let connections = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM realtime_connections")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    // As stored: its placeholder is no ticket.
    let connect = load("realtime/connect.json");
    let refused = invoke_realtime(&db, &connect).await;
    assert_eq!(refused["statusCode"], 401, "{refused}");
    assert_eq!(connections().await, 0);

    // With a ticket just issued: connected, once.
    let ada = app.user("ada@example.com").await;
    let ticket: Value = app
        .post(
            "/api/v1/realtime/tickets",
            &serde_json::json!({}),
            Some(&ada.access_token),
        )
        .await
        .json();
    let connect = connect.replace(
        "REPLACE_WITH_TICKET_FROM_POST_api_v1_realtime_tickets",
        ticket["ticket"].as_str().unwrap(),
    );
    assert_eq!(invoke_realtime(&db, &connect).await["statusCode"], 200);
    assert_eq!(connections().await, 1);
    assert_eq!(
        invoke_realtime(&db, &connect).await["statusCode"],
        401,
        "a ticket works once"
    );

    let pong = invoke_realtime(&db, &load("realtime/default.json")).await;
    assert_eq!(pong["statusCode"], 200);
    assert_eq!(pong["body"], r#"{"type":"pong"}"#);

    assert_eq!(
        invoke_realtime(&db, &load("realtime/disconnect.json")).await["statusCode"],
        200
    );
    assert_eq!(connections().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn retention_sample_runs_every_rule(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    app.user("ada@example.com").await;
    // Ada's welcome went out eight days ago.
    sqlx::query("UPDATE outbox SET sent_at = now() - interval '8 days'")
        .execute(&db)
        .await
        .unwrap();
    let event = serde_json::from_str(&load("retention/schedule.json")).unwrap();
    let state = retention::State {
        db: db.clone(),
        policy: retention::Policy::default(),
    };
    let report = retention::handle(
        &state,
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .unwrap();
    assert!(report.outbox >= 1, "{report:?}");
    assert!(!report.unfinished);
}

#[sqlx::test(migrations = "../migrations")]
async fn relay_sample_runs_a_sweep(db: PgPool) {
    let app = TestApp::new(db).await;
    // A registration whose messages could not be relayed at once, now due for the sweep.
    app.user("ada@example.com").await;
    sqlx::query("UPDATE outbox SET sent_at = NULL, next_attempt_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let event: Value = serde_json::from_str(&load("outbox-relay/schedule.json")).unwrap();
    let report = invoke_relay(&app.db, &app.queue.publisher(), event.clone()).await;
    assert_eq!(report["sent"], 2, "{report}");
    assert_eq!(report["failed"], 0);
    let report = invoke_relay(&app.db, &app.queue.publisher(), event).await;
    assert_eq!(report["sent"], 0, "{report}");
}

#[sqlx::test(migrations = false)]
async fn migrate_applies_everything_once(db: PgPool) {
    let sample: Value = serde_json::from_str(&load("migrate/invoke.json")).unwrap();
    let invoke = || async {
        let event =
            lambda_runtime::LambdaEvent::new(sample.clone(), lambda_runtime::Context::default());
        migrate::handle(&db, None, event).await.unwrap()
    };
    let first = invoke().await;
    let expected = migrate::MIGRATOR.iter().count();
    assert_eq!(first.applied.len(), expected);
    assert!(expected >= 2);
    let second = invoke().await;
    assert!(second.applied.is_empty());
    assert_eq!(first.current, second.current);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn upload_processor_samples(db: PgPool) {
    let app = TestApp::new(db).await;
    let processor = app.processor(api_tests::s3::moto_target(), "uploads");
    let batch: Value = serde_json::from_str(&load("upload-processor/object-created.json")).unwrap();
    let last = batch["Records"].as_array().unwrap().last().unwrap()["messageId"].clone();
    // The test event and the keys nobody issued are skipped; only the poison record fails.
    let report = api_tests::lambda::invoke_processor(&processor, batch).await;
    assert_eq!(
        report["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": last}])
    );
    // An upload whose URL ran out with nothing uploaded: the sweep expires it.
    let ada = app.user("ada@example.com").await;
    let ticket: Value = app
        .post(
            "/api/v1/uploads",
            &serde_json::json!({"purpose": "avatar", "filename": "me.png",
                                "content_type": "image/png", "size": 1000}),
            Some(&ada.access_token),
        )
        .await
        .json();
    sqlx::query("UPDATE uploads SET url_expires_at = now() - interval '1 hour'")
        .execute(&app.db)
        .await
        .unwrap();
    let sweep: Value = serde_json::from_str(&load("upload-processor/sweep.json")).unwrap();
    let report = api_tests::lambda::invoke_processor(&processor, sweep.clone()).await;
    assert_eq!(report["expired"], 1, "{report}");
    let upload: Value = app
        .get(
            &format!("/api/v1/uploads/{}", ticket["id"].as_str().unwrap()),
            Some(&ada.access_token),
        )
        .await
        .json();
    assert_eq!(upload["status"], "expired", "{upload}");
    let report = api_tests::lambda::invoke_processor(&processor, sweep).await;
    assert_eq!(report["expired"], 0, "{report}");
}
