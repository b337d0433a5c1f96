//! Orders and tickets: free orders confirmed with tickets, paid ones held, idempotency
//! keys, holds that expire, every limit, discount codes, and the buyer's view.

use std::time::Duration;

use api_tests::{TestApp, Tokens, pooler::Pooler};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

pub(crate) fn free(name: &str, quantity: i64) -> Value {
    json!({"name": name, "price_minor": 0, "currency": "EUR", "quantity": quantity})
}

pub(crate) fn paid(name: &str, price: i64, quantity: i64) -> Value {
    json!({"name": name, "price_minor": price, "currency": "EUR", "quantity": quantity})
}

pub(crate) fn one_line(event: &str, ticket_type: &str, quantity: i64) -> Value {
    json!({"event_id": event, "lines": [{"ticket_type_id": ticket_type, "quantity": quantity}]})
}

pub(crate) async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

async fn get(app: &TestApp, who: &Tokens, path: &str) -> api_tests::Response {
    app.get(path, Some(&who.access_token)).await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_free_order_is_confirmed_with_named_tickets_only_its_buyer_sees(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app.event_on_sale(&ana, None, &[free("Social", 50)]).await;
    let page = format!("/api/v1/events/{event}");
    let before = app
        .get(&page, None)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let bob = app.user("bob@example.com").await;
    let mut body = one_line(&event, &types[0], 2);
    body["attendees"] = json!(["Bob", "  Zoë "]);
    let placed = app.order(&bob, "k-1", &body).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    assert_eq!(placed.header("cache-control"), Some("no-store"));
    let order: Value = placed.json();
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        placed.header("location").unwrap(),
        format!("/api/v1/orders/{id}")
    );
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total_minor"], 0);
    assert_eq!(order["lines"][0]["name"], "Social");
    let tickets = order["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[0]["attendee_name"], "Bob");
    assert_eq!(tickets[1]["attendee_name"], "Zoë");
    for t in tickets {
        let code = t["code"].as_str().unwrap();
        assert_eq!(code.len(), 26);
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
    }
    assert_ne!(tickets[0]["code"], tickets[1]["code"]);

    // The buyer's views: the order, the tickets with their event, a ticket's QR code.
    assert_eq!(
        get(&app, &bob, &format!("/api/v1/orders/{id}"))
            .await
            .json::<Value>(),
        order
    );
    let listed: Value = get(&app, &bob, "/api/v1/orders").await.json();
    assert_eq!(listed["items"][0]["id"], order["id"]);
    let mine: Value = get(&app, &bob, "/api/v1/tickets").await.json();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    assert_eq!(mine["items"][0]["event"]["title"], "Bachata Weekend");
    let ticket = tickets[0]["id"].as_str().unwrap();
    let one: Value = get(&app, &bob, &format!("/api/v1/tickets/{ticket}"))
        .await
        .json();
    assert_eq!(one["code"], tickets[0]["code"]);
    let qr = get(&app, &bob, &format!("/api/v1/tickets/{ticket}/qr")).await;
    assert_eq!(qr.status, StatusCode::OK);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert!(qr.text().contains("<svg"));

    // Nobody else sees any of it, and the organizer's role gives no buyer's view.
    let eve = app.user("eve@example.com").await;
    for who in [&eve, &ana] {
        for path in [
            format!("/api/v1/orders/{id}"),
            format!("/api/v1/tickets/{ticket}"),
            format!("/api/v1/tickets/{ticket}/qr"),
        ] {
            get(&app, who, &path).await.problem(StatusCode::NOT_FOUND);
        }
        assert_eq!(
            get(&app, who, "/api/v1/tickets").await.json::<Value>()["items"],
            json!([])
        );
    }
    app.get("/api/v1/orders", None)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // A confirmed order cannot be cancelled by its buyer (refunds are the organizer's).
    app.post(
        &format!("/api/v1/orders/{id}/cancel"),
        &json!({}),
        Some(&bob.access_token),
    )
    .await
    .problem(StatusCode::CONFLICT);

    // The buyer is told, through the outbox and the queue, in their inbox.
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM outbox WHERE payload->>'kind' = 'order_confirmed'"
        )
        .await,
        1
    );
    app.run_worker().await;
    let inbox: Value = get(&app, &bob, "/api/v1/notifications").await.json();
    assert_eq!(inbox["items"][0]["kind"], "order_confirmed");
    assert_eq!(
        inbox["items"][0]["title"],
        "Order confirmed: Bachata Weekend"
    );

    // The public page counts what was sold, and a cache revalidating its copy gets it.
    let shown = app
        .call(Method::GET, &page)
        .header("if-none-match", &before)
        .send()
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json::<Value>()["ticket_types"][0]["remaining"], 48);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app.event_on_sale(&ana, None, &[free("Social", 50)]).await;
    let bob = app.user("bob@example.com").await;
    let body = one_line(&event, &types[0], 1);

    let first = app.order(&bob, "same-key", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    // The same body, spaced differently: the same answer, nothing placed twice.
    let again = app
        .call(Method::POST, "/api/v1/orders")
        .bearer(&bob.access_token)
        .header("idempotency-key", "same-key")
        .body(
            "application/json",
            &serde_json::to_string_pretty(&body).unwrap(),
        )
        .send()
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json::<Value>(), first.json::<Value>());
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(&app.db, "SELECT count(*) FROM tickets").await, 1);

    // The same key with another body.
    let other = app
        .order(&bob, "same-key", &one_line(&event, &types[0], 2))
        .await;
    assert!(
        other.problem(StatusCode::UNPROCESSABLE_ENTITY)["detail"]
            .as_str()
            .unwrap()
            .contains("different request")
    );
    // Keys are per user: another buyer's same key is another order.
    let cleo = app.user("cleo@example.com").await;
    assert_eq!(
        app.order(&cleo, "same-key", &body).await.status,
        StatusCode::CREATED
    );
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 2);

    // No key, an empty one, a long one, one with spaces, two of them: 400, nothing placed.
    let without = app
        .call(Method::POST, "/api/v1/orders")
        .bearer(&bob.access_token)
        .json(&body)
        .send()
        .await;
    without.problem(StatusCode::BAD_REQUEST);
    for bad in ["", &"k".repeat(256), "a key"] {
        app.order(&bob, bad, &body)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    app.call(Method::POST, "/api/v1/orders")
        .bearer(&bob.access_token)
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&body)
        .send()
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_duplicate_sent_while_the_first_is_running_gets_409(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app.event_on_sale(&ana, None, &[free("Social", 50)]).await;
    let bob = app.user("bob@example.com").await;
    let body = one_line(&event, &types[0], 1);

    // Hold the event's lock, so the first request waits inside its transaction (having
    // claimed its key).
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM events WHERE id = $1::uuid FOR UPDATE")
        .bind(&event)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let first = {
        let (app, bob, body) = (&app, &bob, &body);
        async move { app.order(bob, "k", body).await }
    };
    let second = async {
        // Until the first holds its key's lock (it is then blocked on the event); this
        // test's database only, since tests share the server.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while count(
            &app.db,
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
             WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
        )
        .await
            != 1
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the first request never claimed its key"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let duplicate = app.order(&bob, "k", &body).await;
        blocker.rollback().await.unwrap();
        duplicate
    };
    let (first, duplicate) = tokio::join!(first, second);
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert!(
        duplicate.problem(StatusCode::CONFLICT)["detail"]
            .as_str()
            .unwrap()
            .contains("still being processed")
    );
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 1);
    // Once the first is done, the duplicate's retry gets its answer.
    let retried = app.order(&bob, "k", &body).await;
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(retried.json::<Value>()["id"], first.json::<Value>()["id"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_paid_order_holds_its_tickets_until_the_hold_expires_or_it_is_cancelled(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 4500, 2)])
        .await;
    let (bob, cleo) = (
        app.user("bob@example.com").await,
        app.user("cleo@example.com").await,
    );
    let body = one_line(&event, &types[0], 2);

    let placed = app.order(&bob, "b-1", &body).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    let order: Value = placed.json();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["subtotal_minor"], 9000);
    assert_eq!(order["total_minor"], 9000);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["tickets"], json!([]));
    let hold = time::OffsetDateTime::parse(
        order["hold_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = hold - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::seconds(890) && left <= time::Duration::seconds(900),
        "{left}"
    );

    // Held: nobody else gets them, and the public page says so.
    let refused = app
        .order(&cleo, "c-1", &one_line(&event, &types[0], 1))
        .await;
    assert_eq!(
        refused.problem(StatusCode::CONFLICT)["detail"],
        "Pass is sold out"
    );
    let page: Value = app
        .get(&format!("/api/v1/events/{event}"), None)
        .await
        .json();
    assert_eq!(page["ticket_types"][0]["remaining"], 0);
    assert_eq!(page["ticket_types"][0]["sales_state"], "sold_out");

    // The hold runs out: the tickets are free again at once, no sweep needed.
    sqlx::query("UPDATE orders SET hold_expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    let expired: Value = get(
        &app,
        &bob,
        &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
    )
    .await
    .json();
    assert_eq!(expired["status"], "expired");
    app.post(
        &format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap()),
        &json!({}),
        Some(&bob.access_token),
    )
    .await
    .problem(StatusCode::CONFLICT);
    let second = app
        .order(&cleo, "c-2", &one_line(&event, &types[0], 1))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text());
    let second: Value = second.json();

    // Cancelling a live hold releases it at once; cancelling again changes nothing.
    let cancel = format!("/api/v1/orders/{}/cancel", second["id"].as_str().unwrap());
    let cancelled = app
        .post(&cancel, &json!({}), Some(&cleo.access_token))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text());
    assert_eq!(cancelled.json::<Value>()["status"], "cancelled");
    assert_eq!(
        app.post(&cancel, &json!({}), Some(&cleo.access_token))
            .await
            .json::<Value>()["status"],
        "cancelled"
    );
    // Only its buyer cancels it.
    app.post(&cancel, &json!({}), Some(&bob.access_token))
        .await
        .problem(StatusCode::NOT_FOUND);
    let page: Value = app
        .get(&format!("/api/v1/events/{event}"), None)
        .await
        .json();
    assert_eq!(page["ticket_types"][0]["remaining"], 2);
    assert_eq!(
        app.order(&bob, "b-2", &body).await.status,
        StatusCode::CREATED
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_orders_get_a_clear_answer_and_change_nothing(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(
            &ana,
            Some(5),
            &[
                json!({"name": "Pass", "price_minor": 1000, "currency": "EUR", "quantity": 10, "min_per_order": 2, "max_per_order": 4}),
                json!({"name": "Crew", "price_minor": 0, "currency": "EUR", "quantity": 10, "hidden": true}),
                json!({"name": "Later", "price_minor": 0, "currency": "EUR", "quantity": 10, "sales_start": "2029-01-01T00:00:00Z"}),
                json!({"name": "Gone", "price_minor": 0, "currency": "EUR", "quantity": 10, "sales_end": "2026-01-01T00:00:00Z"}),
            ],
        )
        .await;
    let (other_event, other_types) = app.event_on_sale(&ana, None, &[free("Other", 5)]).await;
    let bob = app.user("bob@example.com").await;
    let field = |response: api_tests::Response| -> (String, String) {
        let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
        (
            problem["errors"][0]["field"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            problem["errors"][0]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let cases = [
        (
            one_line(&event, &types[0], 0),
            "lines[0].quantity",
            "out_of_range",
        ),
        (
            one_line(&event, &types[0], -3),
            "lines[0].quantity",
            "out_of_range",
        ),
        (
            one_line(&event, &types[0], 1),
            "lines[0].quantity",
            "out_of_range",
        ),
        (
            one_line(&event, &types[0], 5),
            "lines[0].quantity",
            "out_of_range",
        ),
        (
            one_line(&event, &types[1], 1),
            "lines[0].ticket_type_id",
            "unknown_ticket_type",
        ),
        (
            one_line(&event, &types[2], 1),
            "lines[0].ticket_type_id",
            "sales_not_open",
        ),
        (
            one_line(&event, &types[3], 1),
            "lines[0].ticket_type_id",
            "sales_closed",
        ),
        (
            one_line(&event, &other_types[0], 1),
            "lines[0].ticket_type_id",
            "unknown_ticket_type",
        ),
        (
            json!({"event_id": event, "lines": []}),
            "lines",
            "out_of_range",
        ),
        (
            json!({"event_id": event, "lines": [{"ticket_type_id": types[0], "quantity": 2}], "attendees": ["Only one"]}),
            "attendees",
            "count_mismatch",
        ),
        (
            json!({"event_id": event, "lines": [{"ticket_type_id": types[0], "quantity": 2}], "discount_code": "NOPE"}),
            "discount_code",
            "unknown_code",
        ),
    ];
    for (i, (body, want_field, want_code)) in cases.into_iter().enumerate() {
        let got = field(app.order(&bob, &format!("bad-{i}"), &body).await);
        assert_eq!(
            got,
            (want_field.to_owned(), want_code.to_owned()),
            "case {i}: {body}"
        );
    }
    // Wrong types and shapes of JSON, unknown fields.
    for (i, raw) in [
        r#"{"event_id": "x", "lines": []}"#,
        r#"{"event_id": null}"#,
        r#"{"lines": [{"ticket_type_id": 1, "quantity": "2"}]}"#,
        r#"[1, 2]"#,
    ]
    .into_iter()
    .enumerate()
    {
        let response = app
            .call(Method::POST, "/api/v1/orders")
            .bearer(&bob.access_token)
            .header("idempotency-key", &format!("raw-{i}"))
            .body("application/json", raw)
            .send()
            .await;
        assert!(
            response.status.is_client_error(),
            "{raw}: {}",
            response.status
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
    }
    let mut unknown_field = one_line(&event, &types[0], 2);
    unknown_field["price_minor"] = json!(0);
    app.order(&bob, "extra", &unknown_field)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);

    // Unknown event, a draft, a cancelled one.
    let nowhere = one_line("0190f5a8-8d4b-7c1e-9a2b-3c4d5e6f7a8b", &types[0], 2);
    app.order(&bob, "nowhere", &nowhere)
        .await
        .problem(StatusCode::NOT_FOUND);
    sqlx::query("UPDATE events SET status = 'draft' WHERE id = $1::uuid")
        .bind(&other_event)
        .execute(&app.db)
        .await
        .unwrap();
    app.order(&bob, "draft", &one_line(&other_event, &other_types[0], 1))
        .await
        .problem(StatusCode::NOT_FOUND);
    sqlx::query("UPDATE events SET status = 'cancelled' WHERE id = $1::uuid")
        .bind(&other_event)
        .execute(&app.db)
        .await
        .unwrap();
    app.order(
        &bob,
        "cancelled",
        &one_line(&other_event, &other_types[0], 1),
    )
    .await
    .problem(StatusCode::CONFLICT);

    // The event-wide capacity (5) binds across types: 4 + 2 does not fit.
    assert_eq!(
        app.order(&bob, "four", &one_line(&event, &types[0], 4))
            .await
            .status,
        StatusCode::CREATED
    );
    let over = app
        .order(&bob, "two-more", &one_line(&event, &types[0], 2))
        .await;
    assert_eq!(
        over.problem(StatusCode::CONFLICT)["detail"],
        "only 1 ticket remains for this event"
    );
    assert_eq!(count(&app.db, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM idempotency_keys").await,
        1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn discount_codes_take_their_share_and_their_last_use_goes_once(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(
            &ana,
            None,
            &[paid("Pass", 999, 50), paid("Party", 1500, 50)],
        )
        .await;
    // Codes come from the organizer's API (events function); here they are rows.
    sqlx::query(
        "INSERT INTO discount_codes (id, event_id, code, percent_off, amount_off_minor, max_uses, valid_until, ticket_type_ids)
         VALUES (gen_random_uuid(), $1::uuid, 'FIFTEEN', 15, NULL, 1, NULL, ARRAY[$2::uuid]),
                (gen_random_uuid(), $1::uuid, 'FIVER', NULL, 500, NULL, NULL, NULL),
                (gen_random_uuid(), $1::uuid, 'OLD', 10, NULL, NULL, now() - interval '1 day', NULL)",
    )
    .bind(&event)
    .bind(&types[0])
    .execute(&app.db)
    .await
    .unwrap();
    let (bob, cleo) = (
        app.user("bob@example.com").await,
        app.user("cleo@example.com").await,
    );
    let both = |code: &str| {
        json!({"event_id": event, "discount_code": code, "lines": [
            {"ticket_type_id": types[0], "quantity": 1},
            {"ticket_type_id": types[1], "quantity": 1},
        ]})
    };
    // 15% of the pass only (rounded down), typed in lower case.
    let order: Value = app.order(&bob, "b-1", &both(" fifteen ")).await.json();
    assert_eq!(order["subtotal_minor"], 2499);
    assert_eq!(order["discount_minor"], 149);
    assert_eq!(order["total_minor"], 2350);
    assert_eq!(order["discount_code"], "FIFTEEN");
    assert_eq!(order["lines"][0]["discount_minor"], 149);
    assert_eq!(order["lines"][1]["discount_minor"], 0);
    // Its one use is held: the next buyer is refused until the hold goes.
    let used_up = app.order(&cleo, "c-1", &both("FIFTEEN")).await;
    assert_eq!(
        used_up.problem(StatusCode::CONFLICT)["detail"],
        "this discount code has been used up"
    );
    let cancel = format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap());
    app.post(&cancel, &json!({}), Some(&bob.access_token)).await;
    assert_eq!(
        app.order(&cleo, "c-2", &both("FIFTEEN")).await.status,
        StatusCode::CREATED
    );
    // A fixed amount comes off once, from the lines in order.
    let fiver: Value = app.order(&bob, "b-2", &both("FIVER")).await.json();
    assert_eq!(fiver["discount_minor"], 500);
    assert_eq!(fiver["total_minor"], 1999);
    // Expired, not for these types.
    let old = app.order(&bob, "b-3", &both("OLD")).await;
    assert_eq!(
        old.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["code"],
        "expired"
    );
    let party_only = json!({"event_id": event, "discount_code": "FIFTEEN", "lines": [
        {"ticket_type_id": types[1], "quantity": 1}]});
    let refused = app.order(&bob, "b-4", &party_only).await;
    assert_eq!(
        refused.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["code"],
        "not_applicable"
    );
}

/// 500 order attempts at once against 100 tickets (two types of 60 under an event
/// capacity of 100), holds expiring during the storm and some buyers cancelling: nothing
/// is oversold, every answer is a 201 or a clear 409, and exactly the tickets of the
/// confirmed orders exist.
#[sqlx::test(migrations = "../migrations")]
async fn a_storm_of_orders_never_oversells(db: PgPool) {
    storm(db).await;
}

/// The same storm with every function's pool behind a transaction-mode pooler (Neon's
/// pooled endpoint): 20 client connections share 4 server connections, each transaction
/// lands on whichever server is free, so nothing may lean on session state, and sqlx's
/// prepared statements are carried over as PgBouncer 1.21+ does.
#[sqlx::test(migrations = "../migrations")]
async fn a_storm_through_a_transaction_mode_pooler_never_oversells(db: PgPool) {
    let pooler = Pooler::in_front_of(&db, 4)
        .await
        .expect("the pooler starts in front of the test database");
    storm(pooler.client_pool(&db, 20)).await;
    let stats = pooler.stats();
    // Every order is a few transactions, each given a server of its own.
    assert!(stats.assignments > 1500, "{stats:?}");
    // Statements prepared on one server were run on another.
    assert!(stats.reprepared > 0, "{stats:?}");
}

async fn storm(db: PgPool) {
    const BUYERS: usize = 25;
    const ATTEMPTS: usize = 500;
    // Short enough to run out many times during the storm.
    let app = TestApp::new(db)
        .await
        .with_order_hold(Duration::from_millis(150));
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, Some(100), &[free("Free", 60), paid("Paid", 2000, 60)])
        .await;
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        buyers.push(app.user(&format!("buyer{i}@example.com")).await);
    }

    let attempt = |i: usize| {
        let (app, event, types, buyer) = (&app, &event, &types, &buyers[i % BUYERS]);
        async move {
            // A deterministic mix: a third free, two thirds paid, 1 to 3 tickets.
            let ticket_type = &types[usize::from(!i.is_multiple_of(3))];
            let quantity = (i % 3 + 1) as i64;
            let placed = app
                .order(
                    buyer,
                    &format!("storm-{i}"),
                    &one_line(event, ticket_type, quantity),
                )
                .await;
            let order: Option<Value> =
                (placed.status == StatusCode::CREATED).then(|| placed.json());
            // Every fourth held order is cancelled by its buyer at once.
            let cancelled = match &order {
                Some(o) if o["status"] == "pending" && i.is_multiple_of(4) => {
                    let path = format!("/api/v1/orders/{}/cancel", o["id"].as_str().unwrap());
                    Some(
                        app.post(&path, &json!({}), Some(&buyer.access_token))
                            .await
                            .status,
                    )
                }
                _ => None,
            };
            (placed.status, placed.text(), order, cancelled)
        }
    };
    let results = futures::future::join_all((0..ATTEMPTS).map(attempt)).await;

    let mut confirmed_tickets = 0;
    let mut paid_held = 0;
    for (status, text, order, cancelled) in &results {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::CONFLICT,
            "{status}: {text}"
        );
        if let Some(order) = order {
            let quantity = order["lines"][0]["quantity"].as_i64().unwrap();
            match order["status"].as_str().unwrap() {
                "confirmed" => {
                    confirmed_tickets += quantity;
                    assert_eq!(order["tickets"].as_array().unwrap().len() as i64, quantity);
                }
                "pending" | "expired" => paid_held += quantity,
                other => panic!("a new order is {other}"),
            }
        }
        if let Some(cancelled) = cancelled {
            // Cancelled in time, or its hold had already run out.
            assert!(
                *cancelled == StatusCode::OK || *cancelled == StatusCode::CONFLICT,
                "cancel: {cancelled}"
            );
        }
    }
    let refused = results
        .iter()
        .filter(|r| r.0 == StatusCode::CONFLICT)
        .count();
    assert!(refused > 0, "the storm asked for more than there is");
    // Holds ran out and were sold again: more paid tickets were held over the storm
    // than exist.
    assert!(
        paid_held > 60,
        "expired holds were re-sold ({paid_held} held in all)"
    );

    // Exactly the tickets of the confirmed orders exist, none over any limit.
    let tickets = count(&app.db, "SELECT count(*) FROM tickets").await;
    assert_eq!(tickets, confirmed_tickets);
    let sold_free = count(
        &app.db,
        "SELECT coalesce(sum(l.quantity), 0)::bigint FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.status = 'confirmed'",
    )
    .await;
    assert_eq!(sold_free, tickets);
    assert!(sold_free <= 60);
    // The types' counters agree with the orders: sold with the confirmed ones, held with
    // the pending ones (lapsed ones included until the next decision releases them).
    let disagreeing = count(
        &app.db,
        "SELECT count(*) FROM ticket_types t
         WHERE t.sold <> (SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id
                          WHERE l.ticket_type_id = t.id AND o.status = 'confirmed')
            OR t.held <> (SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id
                          WHERE l.ticket_type_id = t.id AND o.status = 'pending')",
    )
    .await;
    assert_eq!(disagreeing, 0, "the sold and held counters drifted");
    assert!(
        count(
            &app.db,
            "SELECT count(*) FROM orders WHERE status = 'expired'"
        )
        .await
            > 0,
        "decisions released lapsed holds"
    );
    // At no point were more held than exist: the row of every order that ever held
    // tickets says when its hold began (the decision, under the event's lock) and ended,
    // so replay the holds in time.
    let overlaps = count(
        &app.db,
        "WITH holds AS (
             SELECT l.ticket_type_id, l.quantity, o.created_at AS since,
                    CASE WHEN o.status = 'confirmed' THEN 'infinity'::timestamptz
                         ELSE least(o.hold_expires_at, coalesce(o.cancelled_at, 'infinity')) END AS until
             FROM orders o JOIN order_lines l ON l.order_id = o.id)
         SELECT count(*) FROM holds h
         WHERE (SELECT sum(x.quantity) FROM holds x
                WHERE x.ticket_type_id = h.ticket_type_id AND x.since <= h.since AND x.until > h.since) > 60
            OR (SELECT sum(x.quantity) FROM holds x
                WHERE x.since <= h.since AND x.until > h.since) > 100",
    )
    .await;
    assert_eq!(overlaps, 0, "more tickets were taken at once than exist");

    // Once the storm's holds have run out, all that is not sold can be bought.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let page: Value = app
        .get(&format!("/api/v1/events/{event}"), None)
        .await
        .json();
    assert_eq!(page["ticket_types"][0]["remaining"], 60 - sold_free);
    assert_eq!(
        page["ticket_types"][1]["remaining"],
        60.min(100 - sold_free)
    );
}
