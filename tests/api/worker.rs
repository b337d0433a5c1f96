//! The notifications worker: per-record failures, idempotency, retryable errors.

use std::time::Duration;

use api_tests::{TestApp, lambda::invoke_worker};
use serde_json::{Value, json};
use shared::{
    identity::UserId,
    messaging::messages::{NotificationKind, NotificationMessage},
};
use sqlx::{PgPool, postgres::PgPoolOptions};

fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795305600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795305600001"
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:notifications",
        "awsRegion": "us-east-1"
    })
}

fn message_for(user: UserId, title: &str) -> NotificationMessage {
    NotificationMessage {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        kind: NotificationKind::UploadReady,
        title: title.into(),
        body: "body".into(),
    }
}

async fn new_user(db: &PgPool) -> UserId {
    let id = UserId::new();
    sqlx::query("INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'U', 'x')")
        .bind(id.0)
        .bind(format!("{}@example.com", id.0))
        .execute(db)
        .await
        .unwrap();
    id
}

async fn count_notifications(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(db)
        .await
        .unwrap()
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn one_poison_record_fails_alone(db: PgPool) {
    let user = new_user(&db).await;
    let good_a = serde_json::to_string(&message_for(user, "a")).unwrap();
    let good_b = serde_json::to_string(&message_for(user, "b")).unwrap();
    let event = json!({ "Records": [
        record("m-1", &good_a),
        record("m-poison", "{not json"),
        record("m-2", &good_b),
        record("m-wrong-shape", r#"{"id": "not-a-uuid", "user_id": 5}"#),
    ]});
    let response = invoke_worker(&db, event).await;
    assert_eq!(failures(&response), ["m-poison", "m-wrong-shape"]);
    assert_eq!(
        count_notifications(&db).await,
        2,
        "the good records were delivered"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn redelivered_and_double_relayed_messages_create_one_notification(db: PgPool) {
    let user = new_user(&db).await;
    let body = serde_json::to_string(&message_for(user, "once")).unwrap();
    let event = json!({ "Records": [record("m-1", &body)] });
    // SQS redelivers the same message (same messageId)...
    assert!(failures(&invoke_worker(&db, event.clone()).await).is_empty());
    assert!(failures(&invoke_worker(&db, event).await).is_empty());
    // ...and a double relay from the outbox is a new SQS message with the same body.
    let twice = json!({ "Records": [record("m-2", &body), record("m-3", &body)] });
    assert!(failures(&invoke_worker(&db, twice).await).is_empty());
    assert_eq!(count_notifications(&db).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn messages_for_deleted_users_are_dropped_not_retried(db: PgPool) {
    let gone = UserId::new();
    let body = serde_json::to_string(&message_for(gone, "nobody")).unwrap();
    let response = invoke_worker(&db, json!({ "Records": [record("m-1", &body)] })).await;
    assert!(failures(&response).is_empty());
    assert_eq!(count_notifications(&db).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn database_outage_reports_every_record_for_retry(db: PgPool) {
    let user = new_user(&db).await;
    let body = serde_json::to_string(&message_for(user, "later")).unwrap();
    let event = json!({ "Records": [record("m-1", &body), record("m-2", &body)] });

    let unreachable = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")
        .unwrap();
    let response = invoke_worker(&unreachable, event.clone()).await;
    assert_eq!(failures(&response), ["m-1", "m-2"]);

    // When the database is back, the redelivery succeeds.
    assert!(failures(&invoke_worker(&db, event).await).is_empty());
    assert_eq!(count_notifications(&db).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn poison_on_a_real_queue_stays_for_redelivery(db: PgPool) {
    // Through the emulator: the worker's report decides what is deleted.
    let app = TestApp::new(db).await;
    app.queue.send_raw("this is not a notification").await;
    let event = app.queue.receive_event(Duration::from_secs(1)).await;
    let response = invoke_worker(&app.db, event.clone()).await;
    let poison_id = event["Records"][0]["messageId"].as_str().unwrap();
    assert_eq!(failures(&response), [poison_id]);
    app.queue.delete_succeeded(&response).await;
    let attributes = app
        .queue
        .client
        .get_queue_attributes()
        .queue_url(&app.queue.url)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    let in_flight = attributes
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        })
        .cloned();
    assert_eq!(
        in_flight.as_deref(),
        Some("1"),
        "the poison message was not deleted"
    );
}
