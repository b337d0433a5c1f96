//! The outbox: nothing is lost when the queue is unreachable.

use api_tests::{
    PASSWORD, TestApp,
    lambda::{invoke_relay, schedule_event},
    sqs::{Queue, unreachable_publisher},
};
use http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

async fn pending(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn registration_survives_an_unreachable_queue_and_the_sweep_delivers_later(db: PgPool) {
    let queue = Queue::create().await;
    let app = TestApp::with_publisher(db, queue, unreachable_publisher());

    // The queue is down: registration still succeeds, and the message waits in the outbox.
    let registered = app.register("ada@example.com", PASSWORD, "Ada").await;
    assert_eq!(
        registered.status,
        StatusCode::ACCEPTED,
        "{}",
        registered.text()
    );
    // The welcome notification and the verification email.
    assert_eq!(pending(&app.db).await, 2);
    assert_eq!(app.run_worker().await, 0, "nothing reached the queue");

    // A sweep while the queue is still down keeps it pending.
    let report = invoke_relay(&app.db, &unreachable_publisher(), schedule_event()).await;
    assert_eq!(report["sent"], 0);
    assert_eq!(report["failed"], 2);
    assert_eq!(pending(&app.db).await, 2);

    // The queue is back: the next scheduled sweep relays it, the worker delivers it.
    let report = invoke_relay(&app.db, &app.queue.publisher(), schedule_event()).await;
    assert_eq!(report["sent"], 2, "{report}");
    assert_eq!(pending(&app.db).await, 0);
    assert_eq!(app.run_worker().await, 2);
    assert_eq!(app.mailbox().len(), 1, "the verification email went out");

    let tokens: api_tests::Tokens = app.login("ada@example.com", PASSWORD).await.json();
    let inbox: Value = app
        .get("/api/v1/notifications", Some(&tokens.access_token))
        .await
        .json();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1, "{inbox}");
    assert_eq!(inbox["items"][0]["kind"], "welcome");

    // Sweeping again sends nothing twice.
    let report = invoke_relay(&app.db, &app.queue.publisher(), schedule_event()).await;
    assert_eq!(report["sent"], 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn registration_finishes_in_time_when_the_queue_stalls(db: PgPool) {
    let queue = Queue::create().await;
    let (stalled, _holder) = api_tests::sqs::hanging_publisher().await;
    let app = TestApp::with_publisher(db, queue, stalled);
    // The function's timeout (template.yaml) is 10 s. A relay that waited on the stalled
    // queue would still be waiting when this gives up; the bounded one leaves the
    // messages to the sweep and answers.
    let registered = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        app.register("ada@example.com", PASSWORD, "Ada"),
    )
    .await
    .expect("registration answered before the function's timeout");
    assert_eq!(
        registered.status,
        StatusCode::ACCEPTED,
        "{}",
        registered.text()
    );
    assert_eq!(
        pending(&app.db).await,
        2,
        "both messages wait for the sweep"
    );
    let report = invoke_relay(&app.db, &app.queue.publisher(), schedule_event()).await;
    assert_eq!(report["sent"], 2, "{report}");
    assert_eq!(app.run_worker().await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn relayed_messages_are_not_swept_again(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    assert_eq!(pending(&app.db).await, 0, "relayed right after commit");
    // Everything is due for the sweep (as it is 30 s later): sent rows are still skipped...
    let age = "UPDATE outbox SET next_attempt_at = now() - interval '1 minute'";
    sqlx::query(age).execute(&app.db).await.unwrap();
    let report = invoke_relay(&app.db, &app.queue.publisher(), schedule_event()).await;
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(app.run_worker().await, 2);
    // ...while an unsent one is not (the check above could fail).
    sqlx::query("UPDATE outbox SET sent_at = NULL WHERE id = (SELECT id FROM outbox LIMIT 1)")
        .execute(&app.db)
        .await
        .unwrap();
    let report = invoke_relay(&app.db, &app.queue.publisher(), schedule_event()).await;
    assert_eq!(report["sent"], 1, "{report}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_registration_that_fails_midway_leaves_nothing(db: PgPool) {
    let app = TestApp::new(db).await;
    // The second outbox write fails: by then the account, its audit event and the first
    // message are written, and all of it must roll back with the transaction.
    sqlx::raw_sql(
        "CREATE FUNCTION fail_second_message() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT 1 FROM outbox) THEN RAISE EXCEPTION 'injected failure'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER fail_second_message BEFORE INSERT ON outbox
           FOR EACH ROW EXECUTE FUNCTION fail_second_message();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.register("ada@example.com", PASSWORD, "Ada")
        .await
        .problem(StatusCode::INTERNAL_SERVER_ERROR);
    for table in ["users", "outbox", "audit_events"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(rows, 0, "{table} kept a row of the failed registration");
    }
    assert_eq!(app.run_worker().await, 0);

    // Nothing half-done holds the address: registering again works whole.
    sqlx::raw_sql("DROP TRIGGER fail_second_message ON outbox")
        .execute(&app.db)
        .await
        .unwrap();
    app.user("ada@example.com").await;
    assert_eq!(pending(&app.db).await, 0, "both messages relayed");
    assert_eq!(app.run_worker().await, 2);
}
