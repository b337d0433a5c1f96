//! The retention function: each rule deletes what is past its period and keeps what is
//! not (one row each side of every line), in batches, within its budget.

use std::time::Duration;

use api_tests::lambda::schedule_event;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use retention::{BATCH, Policy, Report, State};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

async fn exec(db: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(db).await.unwrap();
}

async fn ids(db: &PgPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(db).await.unwrap()
}

/// Runs the function's handler with a scheduled event, as EventBridge invokes it.
async fn invoke(db: &PgPool, policy: Policy) -> Value {
    let state = State {
        db: db.clone(),
        policy,
    };
    let event: EventBridgeEvent = serde_json::from_value(schedule_event()).unwrap();
    let report = retention::handle(&state, LambdaEvent::new(event, Default::default()))
        .await
        .expect("the run succeeds");
    serde_json::to_value(report).unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn each_rule_deletes_what_is_past_its_period_and_keeps_the_rest(db: PgPool) {
    // One user, owning everything below. Rows named `old_*` are past their period,
    // `keep_*` are not (or are still in use).
    exec(
        &db,
        "INSERT INTO users (id, email, name, password_hash)
         VALUES ('00000000-0000-7000-8000-000000000001', 'ana@example.com', 'Ana', 'x');

         INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, absolute_expires_at) VALUES
           ('00000000-0000-7000-8000-0000000000a1', '00000000-0000-7000-8000-000000000001', now() - interval '60 days', now() - interval '31 days', NULL, now() - interval '30 days'),
           ('00000000-0000-7000-8000-0000000000a2', '00000000-0000-7000-8000-000000000001', now() - interval '40 days', now() - interval '25 days', now() - interval '31 days', now() - interval '10 days'),
           ('00000000-0000-7000-8000-0000000000b1', '00000000-0000-7000-8000-000000000001', now() - interval '40 days', now() - interval '29 days', NULL, now() - interval '10 days'),
           ('00000000-0000-7000-8000-0000000000b2', '00000000-0000-7000-8000-000000000001', now() - interval '2 days', now() + interval '5 days', now() - interval '1 day', now() + interval '28 days'),
           ('00000000-0000-7000-8000-0000000000b3', '00000000-0000-7000-8000-000000000001', now() - interval '20 days', now() + interval '5 days', NULL, now() + interval '10 days');

         -- In the live session b3: one token used long ago, one used yesterday, the current one.
         INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at, used_at) VALUES
           (sha256('old_used'), '00000000-0000-7000-8000-0000000000b3', now() - interval '35 days', now() - interval '28 days', now() - interval '31 days'),
           (sha256('keep_used'), '00000000-0000-7000-8000-0000000000b3', now() - interval '2 days', now() + interval '5 days', now() - interval '1 day'),
           (sha256('keep_current'), '00000000-0000-7000-8000-0000000000b3', now(), now() + interval '7 days', NULL),
           (sha256('old_in_old_session'), '00000000-0000-7000-8000-0000000000a1', now() - interval '60 days', now() - interval '31 days', NULL);

         INSERT INTO outbox (id, queue, payload, created_at, sent_at) VALUES
           ('00000000-0000-7000-8000-0000000000c1', 'notifications', '{}', now() - interval '9 days', now() - interval '8 days'),
           ('00000000-0000-7000-8000-0000000000c2', 'notifications', '{}', now() - interval '6 days', now() - interval '6 days'),
           ('00000000-0000-7000-8000-0000000000c3', 'notifications', '{}', now() - interval '30 days', NULL);

         INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
           ('old', '00000000-0000-7000-8000-0000000000d1', now() - interval '16 days'),
           ('keep', '00000000-0000-7000-8000-0000000000d2', now() - interval '14 days');

         INSERT INTO user_tokens (token_hash, user_id, purpose, email, created_at, expires_at, used_at) VALUES
           (sha256('old_used'), '00000000-0000-7000-8000-000000000001', 'password_reset', 'ana@example.com', now() - interval '3 days', now() - interval '2 days', now() - interval '2 days'),
           (sha256('old_expired'), '00000000-0000-7000-8000-000000000001', 'email_verification', 'ana@example.com', now() - interval '3 days', now() - interval '2 days', NULL),
           (sha256('keep_used'), '00000000-0000-7000-8000-000000000001', 'password_reset', 'ana@example.com', now() - interval '1 hour', now() + interval '1 hour', now() - interval '10 minutes'),
           (sha256('keep_live'), '00000000-0000-7000-8000-000000000001', 'email_verification', 'ana@example.com', now(), now() + interval '30 minutes', NULL);

         INSERT INTO uploads (id, owner_id, purpose, object_key, filename, content_type, size, status, created_at, url_expires_at) VALUES
           ('00000000-0000-7000-8000-0000000000e1', '00000000-0000-7000-8000-000000000001', 'avatar', 'avatar/a/old-rejected', 'a.png', 'image/png', 1, 'rejected', now() - interval '31 days', now() - interval '31 days'),
           ('00000000-0000-7000-8000-0000000000e2', '00000000-0000-7000-8000-000000000001', 'avatar', 'avatar/a/old-expired', 'b.png', 'image/png', 1, 'expired', now() - interval '31 days', now() - interval '31 days'),
           ('00000000-0000-7000-8000-0000000000e3', '00000000-0000-7000-8000-000000000001', 'avatar', 'avatar/a/keep-ready', 'c.png', 'image/png', 1, 'ready', now() - interval '400 days', now() - interval '400 days'),
           ('00000000-0000-7000-8000-0000000000e4', '00000000-0000-7000-8000-000000000001', 'avatar', 'avatar/a/keep-rejected', 'd.png', 'image/png', 1, 'rejected', now() - interval '29 days', now() - interval '29 days');

         INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status_code, response, created_at) VALUES
           ('00000000-0000-7000-8000-000000000001', 'create_order', 'old', '\\x00', 201, '{}', now() - interval '25 hours'),
           ('00000000-0000-7000-8000-000000000001', 'create_order', 'keep', '\\x00', 201, '{}', now() - interval '23 hours');

         INSERT INTO stripe_events (id, type, received_at) VALUES
           ('evt_old', 'payment_intent.succeeded', now() - interval '31 days'),
           ('evt_keep', 'payment_intent.succeeded', now() - interval '29 days');

         INSERT INTO realtime_tickets (ticket_hash, user_id, session_id, expires_at) VALUES
           (sha256('old_ticket'), '00000000-0000-7000-8000-000000000001', NULL, now() - interval '2 hours'),
           (sha256('keep_ticket'), '00000000-0000-7000-8000-000000000001', NULL, now() - interval '10 minutes');

         INSERT INTO realtime_connections (connection_id, user_id, session_id, expires_at) VALUES
           ('old', '00000000-0000-7000-8000-000000000001', NULL, now() - interval '1 minute'),
           ('keep', '00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-0000000000b3', now() + interval '1 hour');

         -- The audit log's months from three years ago (migrations start at this month),
         -- with an event in the oldest and one ten days ago.
         SELECT audit_events_maintain(now() - interval '3 years', interval '100 years');
         INSERT INTO audit_events (id, occurred_at, kind) VALUES
           ('00000000-0000-7000-8000-0000000000f1', now() - interval '3 years', 'login_failed'),
           ('00000000-0000-7000-8000-0000000000f2', now() - interval '10 days', 'login_succeeded');",
    )
    .await;

    let report = invoke(&db, Policy::default()).await;
    assert_eq!(report["unfinished"], false, "{report}");

    assert_eq!(
        ids(&db, "SELECT right(id::text, 2) FROM sessions ORDER BY id").await,
        ["b1", "b2", "b3"],
        "sessions ended over 30 days ago go; recently ended or live stay"
    );
    assert_eq!(
        ids(
            &db,
            "SELECT encode(token_hash, 'hex') FROM refresh_tokens ORDER BY 1"
        )
        .await
        .len(),
        2,
        "the long-used token and the old session's went; yesterday's and the current stay"
    );
    let kept_tokens: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash IN (sha256('keep_used'), sha256('keep_current'))",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(kept_tokens, 2);
    assert_eq!(
        ids(&db, "SELECT right(id::text, 2) FROM outbox ORDER BY id").await,
        ["c2", "c3"],
        "sent over 7 days ago goes; recently sent and never sent stay"
    );
    assert_eq!(
        ids(&db, "SELECT consumer FROM processed_messages").await,
        ["keep"]
    );
    let live_account_tokens: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_tokens WHERE token_hash IN (sha256('keep_used'), sha256('keep_live'))",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let all_account_tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM user_tokens")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!((live_account_tokens, all_account_tokens), (2, 2));
    assert_eq!(
        ids(&db, "SELECT right(id::text, 2) FROM uploads ORDER BY id").await,
        ["e3", "e4"],
        "expired or rejected over 30 days ago go; ready uploads and recent rejections stay"
    );
    assert_eq!(ids(&db, "SELECT key FROM idempotency_keys").await, ["keep"]);
    assert_eq!(ids(&db, "SELECT id FROM stripe_events").await, ["evt_keep"]);
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM realtime_tickets WHERE ticket_hash = sha256('keep_ticket')"
        )
        .fetch_one(&db)
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        ids(&db, "SELECT connection_id FROM realtime_connections").await,
        ["keep"]
    );
    assert_eq!(
        ids(&db, "SELECT kind FROM audit_events").await,
        ["login_succeeded"],
        "the months past 400 days went whole; the recent one stays"
    );
    let months: Vec<String> = ids(
        &db,
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'audit_events'::regclass AND c.relname <> 'audit_events_default'
         ORDER BY 1",
    )
    .await;
    let oldest_kept: String = sqlx::query_scalar(
        "SELECT 'audit_events_' || to_char(date_trunc('month', (now() - interval '400 days') AT TIME ZONE 'UTC'), 'YYYY_MM')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(months.first(), Some(&oldest_kept), "{months:?}");
    let ahead: String = sqlx::query_scalar(
        "SELECT 'audit_events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months', 'YYYY_MM')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        months.last(),
        Some(&ahead),
        "the next three months exist ahead"
    );
    let dropped = report["audit_partitions"].as_u64().unwrap();
    assert!(
        (20..=24).contains(&dropped),
        "about 3 years less 400 days of months: {dropped}"
    );
    // Still append-only between drops.
    for statement in ["DELETE FROM audit_events", "TRUNCATE audit_events"] {
        assert!(
            sqlx::query(statement).execute(&db).await.is_err(),
            "{statement}"
        );
    }

    let expected = Report {
        sessions: 2,
        refresh_tokens: 1,
        outbox: 1,
        processed_messages: 1,
        account_tokens: 2,
        uploads: 2,
        idempotency_keys: 1,
        stripe_events: 1,
        realtime_tickets: 1,
        realtime_connections: 1,
        audit_partitions: dropped,
        unfinished: false,
    };
    assert_eq!(report, serde_json::to_value(expected).unwrap());

    // A second run finds nothing more.
    let again = invoke(&db, Policy::default()).await;
    assert_eq!(again, serde_json::to_value(Report::default()).unwrap());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_backlog_goes_in_batches_and_a_spent_budget_leaves_the_rest_for_the_next_run(db: PgPool) {
    let backlog = 2 * BATCH + 500;
    sqlx::query(
        "INSERT INTO outbox (id, queue, payload, created_at, sent_at)
         SELECT gen_random_uuid(), 'notifications', '{}', now() - interval '9 days', now() - interval '8 days'
         FROM generate_series(1, $1)",
    )
    .bind(backlog)
    .execute(&db)
    .await
    .unwrap();

    // No time at all: nothing deleted, and the report says so.
    let spent = retention::run(&db, &Policy::default(), Duration::ZERO)
        .await
        .unwrap();
    assert!(spent.unfinished);
    assert_eq!(spent.outbox, 0);

    let report = retention::run(&db, &Policy::default(), retention::BUDGET)
        .await
        .unwrap();
    assert_eq!(report.outbox, u64::try_from(backlog).unwrap());
    assert!(!report.unfinished);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // Longer periods keep more: a 10-day outbox period keeps 8-day-old rows.
    sqlx::query(
        "INSERT INTO outbox (id, queue, payload, sent_at) VALUES ($1, 'notifications', '{}', now() - interval '8 days')",
    )
    .bind(Uuid::now_v7())
    .execute(&db)
    .await
    .unwrap();
    let patient = Policy {
        outbox: Duration::from_secs(10 * 86_400),
        ..Policy::default()
    };
    assert_eq!(
        retention::run(&db, &patient, retention::BUDGET)
            .await
            .unwrap()
            .outbox,
        0
    );
}
