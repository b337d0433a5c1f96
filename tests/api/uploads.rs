//! Direct-to-S3 uploads: presigned PUTs that S3 itself enforces, the processor's
//! checks, downloads, deletion, isolation and the sweep of abandoned uploads.

use std::time::Duration;

use api_tests::{
    Response, TestApp,
    lambda::{invoke_processor, s3_put_event, schedule_event, sqs_batch},
    s3::{self, SigningS3, moto_client, moto_target, storage},
};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

async fn start(app: &TestApp, email: &str, body: Value) -> (String, Response) {
    let token = app.user(email).await.access_token;
    let r = app.post("/api/v1/uploads", &body, Some(&token)).await;
    (token, r)
}

fn png_request(size: usize) -> Value {
    json!({"filename": "me.png", "content_type": "image/png", "size": size, "purpose": "avatar"})
}

/// PUTs `body` to a ticket's URL with the ticket's headers, overriding some.
async fn put(
    ticket: &Value,
    body: Vec<u8>,
    content_type: Option<&str>,
    url: Option<&str>,
) -> reqwest::StatusCode {
    let url = url.unwrap_or_else(|| ticket["upload_url"].as_str().unwrap());
    let mut request = reqwest::Client::new().put(url).body(body);
    for (name, value) in ticket["headers"].as_object().unwrap() {
        // reqwest sets content-length from the body, as a browser does.
        if name == "content-length" {
            continue;
        }
        let value = if name == "content-type" {
            content_type.unwrap_or(value.as_str().unwrap())
        } else {
            value.as_str().unwrap()
        };
        request = request.header(name, value);
    }
    request.send().await.unwrap().status()
}

async fn key_of(db: &PgPool, id: &str) -> String {
    sqlx::query_scalar("SELECT object_key FROM uploads WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// An app whose uploads function signs for the SigV4-verifying S3.
async fn signing_app(db: PgPool) -> (SigningS3, TestApp) {
    let s3 = SigningS3::start().await;
    let app = TestApp::new(db)
        .await
        .with_storage(s3.target(), storage("uploads", Duration::from_secs(600)));
    (s3, app)
}

async fn object_exists(s3: &SigningS3, key: &str) -> bool {
    s3.client()
        .head_object()
        .bucket("uploads")
        .key(key)
        .send()
        .await
        .is_ok()
}

async fn delete_upload(app: &TestApp, token: &str, id: &str) -> Response {
    app.delete(&format!("/api/v1/uploads/{id}"), Some(token))
        .await
}

#[sqlx::test(migrations = "../migrations")]
async fn presign_put_process_download_round_trip(db: PgPool) {
    let (s3, app) = signing_app(db).await;
    let (token, r) = start(&app, "ada@example.com", png_request(PNG.len())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let ticket: Value = r.json();
    assert_eq!(ticket["method"], "PUT");
    assert_eq!(ticket["headers"]["content-type"], "image/png");
    assert_eq!(ticket["headers"]["content-length"], PNG.len().to_string());
    assert_eq!(ticket["headers"]["if-none-match"], "*");
    let url = ticket["upload_url"].as_str().unwrap();
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{url}"
    );
    let id = ticket["id"].as_str().unwrap().to_owned();
    let key = key_of(&app.db, &id).await;
    assert!(
        key.starts_with("avatar/") && !key.contains("me.png"),
        "{key}"
    );

    assert_eq!(
        put(&ticket, PNG.to_vec(), None, None).await,
        reqwest::StatusCode::OK
    );
    let pending: Value = app
        .get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(pending["status"], "pending");
    app.get(&format!("/api/v1/uploads/{id}/download"), Some(&token))
        .await
        .problem(StatusCode::CONFLICT);

    // S3 notifies; the processor checks the real object.
    let processor = app.processor(s3.target(), "uploads");
    let report = invoke_processor(
        &processor,
        sqs_batch(&[s3_put_event("uploads", &key, PNG.len() as u64)]),
    )
    .await;
    assert_eq!(report["batchItemFailures"], json!([]));
    let ready: Value = app
        .get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(ready["status"], "ready", "{ready}");

    // Download: a redirect to a presigned GET that returns the same bytes.
    let download = app
        .get(&format!("/api/v1/uploads/{id}/download"), Some(&token))
        .await;
    assert_eq!(download.status, StatusCode::FOUND, "{}", download.text());
    let location = download.header("location").unwrap();
    let fetched = reqwest::get(location).await.unwrap();
    assert_eq!(fetched.status(), reqwest::StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), PNG);

    // The avatar is shown on the profile, and the owner is told.
    let me: Value = app.me(&token).await.json();
    assert_eq!(me["avatar_url"], format!("/api/v1/uploads/{id}/download"));
    app.run_worker().await;
    let inbox: Value = app.get("/api/v1/notifications", Some(&token)).await.json();
    let kinds: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"upload_ready"), "{kinds:?}");

    // A duplicate event changes nothing.
    let again = invoke_processor(
        &processor,
        sqs_batch(&[s3_put_event("uploads", &key, PNG.len() as u64)]),
    )
    .await;
    assert_eq!(again["batchItemFailures"], json!([]));
    assert_eq!(app.run_worker().await, 0, "no second notification");

    // Delete: the object and the record go; the avatar is cleared.
    let deleted = delete_upload(&app, &token, &id).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(!object_exists(&s3, &key).await, "object deleted");
    assert_eq!(
        app.me(&token).await.json::<Value>()["avatar_url"],
        Value::Null
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn s3_refuses_tampered_expired_and_mismatched_uploads(db: PgPool) {
    let (s3, app) = signing_app(db).await;
    let (token, r) = start(&app, "ada@example.com", png_request(PNG.len())).await;
    let ticket: Value = r.json();
    let url = ticket["upload_url"].as_str().unwrap().to_owned();

    // A different content type, or a larger (or smaller) body: signature mismatch.
    assert_eq!(
        put(&ticket, PNG.to_vec(), Some("image/jpeg"), None).await,
        reqwest::StatusCode::FORBIDDEN
    );
    let mut larger = PNG.to_vec();
    larger.push(0);
    assert_eq!(
        put(&ticket, larger, None, None).await,
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(&ticket, PNG[..10].to_vec(), None, None).await,
        reqwest::StatusCode::FORBIDDEN
    );

    // A tampered signature, or the same signature on another key.
    let (base, signature) = url.split_once("X-Amz-Signature=").unwrap();
    let flipped: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'a' { 'b' } else { 'a' }
            } else {
                c
            }
        })
        .collect();
    let tampered = format!("{base}X-Amz-Signature={flipped}");
    assert_eq!(
        put(&ticket, PNG.to_vec(), None, Some(&tampered)).await,
        reqwest::StatusCode::FORBIDDEN
    );
    let other_user = uuid::Uuid::now_v7();
    let key = key_of(&app.db, ticket["id"].as_str().unwrap()).await;
    let owner = key.split('/').nth(1).unwrap();
    let moved = url.replacen(owner, &other_user.to_string(), 1);
    assert_eq!(
        put(&ticket, PNG.to_vec(), None, Some(&moved)).await,
        reqwest::StatusCode::FORBIDDEN
    );

    // Nothing was stored by any refused request; the genuine one still works.
    assert!(!object_exists(&s3, &key).await);
    assert_eq!(
        put(&ticket, PNG.to_vec(), None, None).await,
        reqwest::StatusCode::OK
    );

    // An expired URL.
    let short = TestApp::new(app.db.clone())
        .await
        .with_storage(s3.target(), storage("uploads", Duration::from_secs(1)));
    let r = short
        .post("/api/v1/uploads", &png_request(PNG.len()), Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let expiring: Value = r.json();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        put(&expiring, PNG.to_vec(), None, None).await,
        reqwest::StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn content_that_lies_about_its_type_is_rejected_and_deleted(db: PgPool) {
    let (s3, app) = signing_app(db).await;
    let text = b"this is not a png, just text....".to_vec();
    let (token, r) = start(&app, "ada@example.com", png_request(text.len())).await;
    let ticket: Value = r.json();
    // S3 cannot tell: type and length match what was signed.
    assert_eq!(
        put(&ticket, text.clone(), None, None).await,
        reqwest::StatusCode::OK
    );
    let id = ticket["id"].as_str().unwrap();
    let key = key_of(&app.db, id).await;
    let processor = app.processor(s3.target(), "uploads");
    invoke_processor(
        &processor,
        sqs_batch(&[s3_put_event("uploads", &key, text.len() as u64)]),
    )
    .await;

    let upload: Value = app
        .get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(upload["status"], "rejected");
    assert!(
        upload["rejection_reason"]
            .as_str()
            .unwrap()
            .contains("image/png"),
        "{upload}"
    );
    assert!(!object_exists(&s3, &key).await, "rejected object deleted");
    app.get(&format!("/api/v1/uploads/{id}/download"), Some(&token))
        .await
        .problem(StatusCode::GONE);
    assert_eq!(
        app.me(&token).await.json::<Value>()["avatar_url"],
        Value::Null
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rejected_key_never_keeps_what_is_put_on_it_later(db: PgPool) {
    let (s3, app) = signing_app(db).await;
    let text = b"this is not a png, just text....".to_vec();
    let (token, r) = start(&app, "ada@example.com", png_request(text.len())).await;
    let ticket: Value = r.json();
    let id = ticket["id"].as_str().unwrap();
    let key = key_of(&app.db, id).await;
    let processor = app.processor(s3.target(), "uploads");
    let event = sqs_batch(&[s3_put_event("uploads", &key, text.len() as u64)]);
    assert_eq!(
        put(&ticket, text.clone(), None, None).await,
        reqwest::StatusCode::OK
    );
    invoke_processor(&processor, event.clone()).await;
    assert!(!object_exists(&s3, &key).await, "rejected object deleted");

    // The URL is still valid and the emptied key passes `If-None-Match: *`.
    assert_eq!(
        put(&ticket, text, None, None).await,
        reqwest::StatusCode::OK
    );
    assert!(object_exists(&s3, &key).await);
    let report = invoke_processor(&processor, event).await;
    assert_eq!(report["batchItemFailures"], json!([]));
    assert!(
        !object_exists(&s3, &key).await,
        "an object on a rejected key is removed, never kept unchecked"
    );
    let upload: Value = app
        .get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(upload["status"], "rejected");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_file_arriving_after_its_upload_was_deleted_is_removed(db: PgPool) {
    let (s3, app) = signing_app(db).await;
    let (token, r) = start(&app, "ada@example.com", png_request(PNG.len())).await;
    let ticket: Value = r.json();
    let id = ticket["id"].as_str().unwrap();
    let key = key_of(&app.db, id).await;
    let deleted = delete_upload(&app, &token, id).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // The URL still works until it expires...
    assert_eq!(
        put(&ticket, PNG.to_vec(), None, None).await,
        reqwest::StatusCode::OK
    );
    // ...but the processor removes what arrives for a deleted upload.
    let processor = app.processor(s3.target(), "uploads");
    let report = invoke_processor(
        &processor,
        sqs_batch(&[s3_put_event("uploads", &key, PNG.len() as u64)]),
    )
    .await;
    assert_eq!(report["batchItemFailures"], json!([]));
    assert!(!object_exists(&s3, &key).await, "orphan removed");
}

#[sqlx::test(migrations = "../migrations")]
async fn events_for_keys_we_did_not_issue_are_ignored(db: PgPool) {
    let (s3, app) = signing_app(db).await;
    let processor = app.processor(s3.target(), "uploads");
    // One upload of ours, its file in place but its event not yet in.
    let (token, r) = start(&app, "ada@example.com", png_request(PNG.len())).await;
    let ticket: Value = r.json();
    let id = ticket["id"].as_str().unwrap();
    let key = key_of(&app.db, id).await;
    assert_eq!(
        put(&ticket, PNG.to_vec(), None, None).await,
        reqwest::StatusCode::OK
    );
    // Objects nobody issued a ticket for, in our bucket.
    let foreign = [
        "some dir/naïve file+1.png",
        "avatar/not-a-user/not-an-id",
        "../../etc/passwd",
    ];
    for k in foreign {
        s3.client()
            .put_object()
            .bucket("uploads")
            .key(k)
            .body(PNG.to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let mut bodies: Vec<Value> = foreign
        .iter()
        .map(|k| s3_put_event("uploads", k, PNG.len() as u64))
        .collect();
    // Our key, but in a bucket that is not ours; and S3's test event.
    bodies.push(s3_put_event("another-bucket", &key, PNG.len() as u64));
    bodies.push(json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"}));
    let report = invoke_processor(&processor, sqs_batch(&bodies)).await;
    assert_eq!(report["batchItemFailures"], json!([]));

    // Nothing was touched: the foreign objects stay, ours is still waiting for its event.
    for k in foreign {
        assert!(object_exists(&s3, k).await, "{k} left alone");
    }
    let status = || async {
        let upload: Value = app
            .get(&format!("/api/v1/uploads/{id}"), Some(&token))
            .await
            .json();
        upload["status"].clone()
    };
    assert_eq!(status().await, "pending");
    // Its own event (same key, our bucket) is what makes it ready.
    let own = sqs_batch(&[s3_put_event("uploads", &key, PNG.len() as u64)]);
    assert_eq!(
        invoke_processor(&processor, own).await["batchItemFailures"],
        json!([])
    );
    assert_eq!(status().await, "ready");

    // Poison: not an S3 event at all.
    let poison = invoke_processor(&processor, sqs_batch(&[json!("not json at all {")])).await;
    assert_eq!(poison["batchItemFailures"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn real_bucket_notifications_drive_the_processor(db: PgPool) {
    // moto delivers ObjectCreated notifications to SQS, encoded as S3 encodes them.
    let app = TestApp::new(db).await;
    let s3 = moto_client();
    let bucket = format!("uploads-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let events = api_tests::sqs::Queue::create().await;
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{}", events.name);
    let notification = aws_sdk_s3::types::NotificationConfiguration::builder()
        .queue_configurations(
            aws_sdk_s3::types::QueueConfiguration::builder()
                .queue_arn(&queue_arn)
                .events(aws_sdk_s3::types::Event::S3ObjectCreated)
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(notification)
        .send()
        .await
        .unwrap();
    let app = app.with_storage(moto_target(), storage(&bucket, Duration::from_secs(600)));
    let (token, r) = start(&app, "ada@example.com", png_request(PNG.len())).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json::<Value>()["id"].as_str().unwrap().to_owned();
    let key = key_of(&app.db, &id).await;
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type("image/png")
        .body(PNG.to_vec().into())
        .send()
        .await
        .unwrap();
    // And an object whose key has spaces and non-ASCII characters.
    let odd = "attachment/some dir/naïve résumé+1.pdf";
    s3.put_object()
        .bucket(&bucket)
        .key(odd)
        .body(b"%PDF-1.7".to_vec().into())
        .send()
        .await
        .unwrap();

    let mut batch = json!({"Records": []});
    for _ in 0..10 {
        let received = events.receive_event(Duration::from_secs(1)).await;
        for r in received["Records"].as_array().unwrap() {
            batch["Records"].as_array_mut().unwrap().push(r.clone());
        }
        if batch["Records"].as_array().unwrap().len() >= 2 {
            break;
        }
    }
    let records = batch["Records"].as_array().unwrap().clone();
    let raw_keys: Vec<String> = records
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
        .filter_map(|b| {
            b["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let decoded: Vec<String> = raw_keys
        .iter()
        .filter_map(|k| shared::uploads::decode_event_key(k))
        .collect();
    assert!(
        decoded.contains(&odd.to_owned()),
        "{raw_keys:?} -> {decoded:?}"
    );

    let processor = app.processor(moto_target(), &bucket);
    let report = invoke_processor(&processor, batch.clone()).await;
    assert_eq!(report["batchItemFailures"], json!([]), "{batch}");
    let upload: Value = app
        .get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(upload["status"], "ready", "{upload}");
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_requests_and_other_users(db: PgPool) {
    let app = TestApp::new(db).await;
    let (alice, r) = start(&app, "alice@example.com", png_request(10)).await;
    let id = r.json::<Value>()["id"].as_str().unwrap().to_owned();
    let bob = app.user("bob@example.com").await.access_token;

    for (body, field) in [
        (
            json!({"filename": "a.pdf", "content_type": "application/pdf", "size": 10, "purpose": "avatar"}),
            "content_type",
        ),
        (
            json!({"filename": "a.png", "content_type": "image/png", "size": 5 * 1024 * 1024 + 1, "purpose": "avatar"}),
            "size",
        ),
        (
            json!({"filename": "a.zip", "content_type": "application/zip", "size": 25 * 1024 * 1024 + 1, "purpose": "attachment"}),
            "size",
        ),
        (
            json!({"filename": "a.exe", "content_type": "application/x-msdownload", "size": 10, "purpose": "attachment"}),
            "content_type",
        ),
        (
            json!({"filename": "", "content_type": "image/png", "size": 10, "purpose": "avatar"}),
            "filename",
        ),
        (
            json!({"filename": "a.png", "content_type": "image/png", "size": 0, "purpose": "avatar"}),
            "size",
        ),
    ] {
        let problem = app
            .post("/api/v1/uploads", &body, Some(&alice))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    for body in [
        json!({"filename": "a.png", "content_type": "image/png", "size": 10, "purpose": "wallpaper"}),
        json!({"filename": "a.png", "content_type": "image/png", "size": "10", "purpose": "avatar"}),
        json!({"filename": "a.png", "content_type": "image/png", "size": 10, "purpose": "avatar", "key": "mine"}),
    ] {
        app.post("/api/v1/uploads", &body, Some(&alice))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.post("/api/v1/uploads", &png_request(10), None)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // Bob sees none of Alice's upload.
    app.get(&format!("/api/v1/uploads/{id}"), Some(&bob))
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get(&format!("/api/v1/uploads/{id}/download"), Some(&bob))
        .await
        .problem(StatusCode::NOT_FOUND);
    delete_upload(&app, &bob, &id)
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/api/v1/uploads/{id}"), Some(&alice))
            .await
            .status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sweep_expires_abandoned_uploads(db: PgPool) {
    let app = TestApp::new(db).await;
    let (token, r) = start(&app, "ada@example.com", png_request(10)).await;
    let abandoned = r.json::<Value>()["id"].as_str().unwrap().to_owned();
    let fresh = app
        .post("/api/v1/uploads", &png_request(10), Some(&token))
        .await
        .json::<Value>()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Time travel: the first URL expired two hours ago.
    sqlx::query(
        "UPDATE uploads SET url_expires_at = now() - interval '2 hours' WHERE id = $1::uuid",
    )
    .bind(&abandoned)
    .execute(&app.db)
    .await
    .unwrap();
    let s3 = moto_client();
    s3.create_bucket().bucket("uploads").send().await.ok();
    let processor = app.processor(moto_target(), "uploads");
    let report = invoke_processor(&processor, schedule_event()).await;
    assert_eq!(report["expired"], 1);
    let status = |id: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.get(&format!("/api/v1/uploads/{id}"), Some(&token))
                .await
                .json::<Value>()["status"]
                .clone()
        }
    };
    assert_eq!(status(abandoned).await, "expired");
    assert_eq!(status(fresh).await, "pending");
    assert_eq!(
        invoke_processor(&processor, schedule_event()).await["expired"],
        0
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn objects_of_deleted_accounts_and_replaced_avatars_go_once_s3_confirms(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let s3 = moto_client();
    s3.create_bucket().bucket("uploads").send().await.ok();
    let ada = app.user("ada@example.com").await;
    let ada_id: uuid::Uuid = app.id_of(&ada.access_token).await.parse().unwrap();
    // Ada's avatar and an attachment, both in the bucket; then a new avatar arrives.
    let object = |purpose: &str| format!("{purpose}/{ada_id}/{}", uuid::Uuid::now_v7());
    let (old_avatar, attachment, new_avatar) =
        (object("avatar"), object("attachment"), object("avatar"));
    for key in [&old_avatar, &attachment, &new_avatar] {
        s3.put_object()
            .bucket("uploads")
            .key(key.as_str())
            .content_type("image/png")
            .body(PNG.to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let insert = |key: String, purpose: &'static str, status: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, uuid::Uuid>(
                "INSERT INTO uploads (id, owner_id, purpose, object_key, filename, content_type, size, status, url_expires_at)
                 VALUES ($1, $2, $3::upload_purpose, $4, 'x.png', 'image/png', $5, $6::upload_status, now() + interval '10 minutes')
                 RETURNING id",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(ada_id)
            .bind(purpose)
            .bind(key)
            .bind(PNG.len() as i64)
            .bind(status)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let old_id = insert(old_avatar.clone(), "avatar", "ready").await;
    insert(attachment.clone(), "attachment", "ready").await;
    let new_id = insert(new_avatar.clone(), "avatar", "pending").await;
    sqlx::query("UPDATE users SET avatar_upload_id = $1 WHERE id = $2")
        .bind(old_id)
        .bind(ada_id)
        .execute(&db)
        .await
        .unwrap();
    let queued = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT object_key FROM object_deletions ORDER BY object_key",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };

    // The new avatar is checked and becomes hers: the old one's object is queued, its row gone.
    let processor = app.processor(moto_target(), "uploads");
    let event = s3_put_event("uploads", &new_avatar, PNG.len() as u64);
    let answer = invoke_processor(&processor, sqs_batch(&[event])).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(queued().await, std::slice::from_ref(&old_avatar));
    let old_row: i64 = sqlx::query_scalar("SELECT count(*) FROM uploads WHERE id = $1")
        .bind(old_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(old_row, 0);
    let avatar: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT avatar_upload_id FROM users WHERE id = $1")
            .bind(ada_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(avatar, Some(new_id));

    // Ada deletes her account: her remaining objects are queued in the same transaction.
    let deleted = app
        .call(Method::DELETE, "/api/v1/users/me")
        .bearer(&ada.access_token)
        .json(&json!({"current_password": api_tests::PASSWORD}))
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let mut expected = vec![old_avatar.clone(), attachment.clone(), new_avatar.clone()];
    expected.sort();
    assert_eq!(queued().await, expected);

    // S3 unreachable: nothing is lost, each is retried later.
    let unreachable = s3::S3Target {
        endpoint: "http://127.0.0.1:9".into(),
        access_key: "test",
        secret_key: "test",
    };
    let down = app.processor(unreachable, "uploads");
    let report = invoke_processor(&down, schedule_event()).await;
    assert_eq!(
        (
            report["objects_deleted"].as_u64(),
            report["deletions_failed"].as_u64()
        ),
        (Some(0), Some(3))
    );
    assert_eq!(queued().await, expected, "still queued");
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM object_deletions WHERE next_attempt_at > now()")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(attempts, [1, 1, 1], "each waits for its next attempt");

    // Due again, with S3 back: deleted, and the queue is empty.
    sqlx::query("UPDATE object_deletions SET next_attempt_at = now()")
        .execute(&db)
        .await
        .unwrap();
    let report = invoke_processor(&processor, schedule_event()).await;
    assert_eq!(report["objects_deleted"], 3, "{report}");
    assert!(queued().await.is_empty());
    for key in &expected {
        let gone = s3
            .head_object()
            .bucket("uploads")
            .key(key.as_str())
            .send()
            .await;
        assert!(gone.is_err(), "{key} is still in the bucket");
    }
}
