//! Card payments end to end against localstripe (a stateful Stripe fake that signs its
//! webhooks): paid orders open a PaymentIntent, the buyer pays with a test card, the
//! fake's signed webhook reaches the payments function through a real API Gateway
//! event, which re-reads the intent and confirms the order exactly once. Where the fake
//! cannot produce a case (an event out of order, a bad signature) the test signs the
//! event itself with the same scheme.

use std::time::Duration;

use api_tests::{
    Function, TestApp, Tokens,
    stripe::{self, WEBHOOK, Webhooks},
};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::orders::{count, free, one_line, paid};

async fn get_order(app: &TestApp, who: &Tokens, id: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/orders/{id}"), Some(&who.access_token))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

/// Sends a webhook delivery as Stripe would (the test's own signature unless given).
async fn deliver(app: &TestApp, body: &str, signature: Option<&str>) -> api_tests::Response {
    let call = app
        .call(Method::POST, WEBHOOK)
        .body("application/json", body);
    match signature {
        Some(signature) => call.header("stripe-signature", signature).send().await,
        None => call.send().await,
    }
}

/// Every paid order has exactly its tickets, every ticket a confirmed order, and the
/// ledger explains each order's money: charged once, refunds within the charge.
async fn invariants_hold(db: &PgPool) {
    let wrong = count(
        db,
        "SELECT count(*) FROM orders o
         WHERE (o.status = 'confirmed') <>
               ((SELECT count(*) FROM tickets t WHERE t.order_id = o.id) =
                (SELECT coalesce(sum(quantity), 0) FROM order_lines l WHERE l.order_id = o.id)
                AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id))
            OR (o.status <> 'confirmed' AND EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id))",
    )
    .await;
    assert_eq!(wrong, 0, "an order's tickets disagree with its status");
    let unpaid = count(
        db,
        "SELECT count(*) FROM orders o WHERE o.status = 'confirmed' AND o.total_minor > 0
           AND (SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries
                WHERE order_id = o.id AND kind = 'charge')
             - (SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries
                WHERE order_id = o.id AND kind = 'refund') <> o.total_minor",
    )
    .await;
    assert_eq!(
        unpaid, 0,
        "a confirmed order was not paid exactly its total"
    );
    let over_refunded = count(
        db,
        "SELECT count(*) FROM orders o
         WHERE (SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE order_id = o.id AND kind = 'refund')
             > (SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE order_id = o.id AND kind = 'charge')",
    )
    .await;
    assert_eq!(over_refunded, 0, "more was refunded than charged");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_paid_order_is_confirmed_once_by_its_payment(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Full pass", 4500, 10)])
        .await;
    let buyer = app.user("bo@example.com").await;

    let placed = app
        .order(&buyer, "pay-1", &one_line(&event, &types[0], 2))
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    let order: Value = placed.json();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_minor"], 9000);
    let payment = &order["payment"];
    assert_eq!(payment["provider"], "stripe");
    assert_eq!(payment["publishable_key"], stripe::PUBLISHABLE_KEY);
    assert_eq!(payment["status"], "requires_payment_method");
    let intent = payment["intent_id"].as_str().unwrap().to_owned();
    assert!(
        payment["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&intent)
    );
    // Stripe holds the order's amount and id.
    let (_, at_stripe) =
        stripe::api(Method::GET, &format!("/v1/payment_intents/{intent}"), &[]).await;
    assert_eq!(at_stripe["amount"], 9000);
    assert_eq!(at_stripe["currency"], "eur");
    assert_eq!(at_stripe["metadata"]["order_id"], order["id"]);

    // A retry of the request returns the same order and the same intent.
    let replay = app
        .order(&buyer, "pay-1", &one_line(&event, &types[0], 2))
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        replay.json::<Value>()["payment"]["intent_id"],
        intent.as_str()
    );
    assert_eq!(count(&db, "SELECT count(*) FROM payments").await, 1);

    // The buyer pays; Stripe's signed webhook confirms the order.
    let confirmed = stripe::pay(&intent, "pm_card_visa").await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    let delivery = webhooks.wait_for("payment_intent.succeeded", &intent).await;
    assert_eq!(delivery.status, StatusCode::OK, "{}", delivery.answer);
    assert_eq!(delivery.answer["outcome"], "confirmed");

    let id = order["id"].as_str().unwrap();
    let now = get_order(&app, &buyer, id).await;
    assert_eq!(now["status"], "confirmed");
    assert_eq!(now["paid_minor"], 9000);
    assert_eq!(now["refunded_minor"], 0);
    assert_eq!(now["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(now["payment"]["status"], "succeeded");
    assert_eq!(count(&db, "SELECT sold::bigint FROM ticket_types").await, 2);
    assert_eq!(count(&db, "SELECT held::bigint FROM ticket_types").await, 0);

    // The same delivery again changes nothing; another event about the same payment
    // (a new id, as Stripe may send) finds it settled.
    let again = deliver(&app, &delivery.body, Some(&delivery.signature)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json::<Value>()["outcome"], "duplicate");
    let other = stripe::event(
        "evt_test_other",
        "payment_intent.succeeded",
        &json!({"id": intent}),
    );
    let settled = deliver(&app, &other, Some(&stripe::signed(&db, &other))).await;
    assert_eq!(settled.json::<Value>()["outcome"], "already_settled");
    // Out of order: a stale "failed" arrives after the success; Stripe says succeeded.
    let late = stripe::event(
        "evt_test_late",
        "payment_intent.payment_failed",
        &json!({"id": intent}),
    );
    let late = deliver(&app, &late, Some(&stripe::signed(&db, &late))).await;
    assert_eq!(late.json::<Value>()["outcome"], "already_settled");

    assert_eq!(count(&db, "SELECT count(*) FROM tickets").await, 2);
    assert_eq!(count(&db, "SELECT count(*) FROM ledger_entries").await, 1);
    invariants_hold(&db).await;

    // The buyer is told, by inbox and email.
    app.run_worker().await;
    let mail = app.mailbox();
    assert!(
        mail.iter()
            .any(|m| m.to == "bo@example.com" && m.subject.contains("Order confirmed")),
        "{mail:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_webhook_refuses_what_stripe_did_not_sign(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let body = stripe::event("evt_test_1", "customer.created", &json!({"id": "cus_1"}));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let secret = stripe::webhook_secret(&db);
    let wrong = secrecy::SecretString::from("whsec_wrong".to_owned());
    let sign = |secret: &secrecy::SecretString, at: i64, body: &str| {
        shared::payments::signature::sign(secret, at, body.as_bytes())
    };

    for (why, signature) in [
        ("no signature", None),
        ("another secret", Some(sign(&wrong, now, &body))),
        ("six minutes old", Some(sign(&secret, now - 360, &body))),
        ("garbage", Some("t=abc,v1=xyz".to_owned())),
        ("another body", Some(sign(&secret, now, "{}"))),
    ] {
        let response = deliver(&app, &body, signature.as_deref()).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json"),
            "{why}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM stripe_events").await, 0);

    // One valid v1 among several (Stripe signs with each secret while one rotates).
    let good = sign(&secret, now, &body);
    let bad = sign(&wrong, now, &body);
    let v1 = |h: &str| h.split_once(",v1=").unwrap().1.to_owned();
    let both = format!("t={now},v1={},v1={}", v1(&bad), v1(&good));
    let accepted = deliver(&app, &body, Some(&both)).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    assert_eq!(accepted.json::<Value>()["outcome"], "ignored");

    // Signed but not an event.
    let junk = "[1, 2, 3]";
    let response = deliver(&app, junk, Some(&sign(&secret, now, junk))).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);

    // An intent that is not one of our orders' (another system on the account).
    let (_, foreign) = stripe::api(
        Method::POST,
        "/v1/payment_intents",
        &[
            ("amount", "500"),
            ("currency", "eur"),
            ("payment_method_types[]", "card"),
        ],
    )
    .await;
    let event = stripe::event("evt_test_foreign", "payment_intent.succeeded", &foreign);
    let response = deliver(&app, &event, Some(&stripe::signed(&db, &event))).await;
    assert_eq!(response.json::<Value>()["outcome"], "not_ours");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_declined_card_leaves_the_order_pending_with_the_reason(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 3000, 5)])
        .await;
    let buyer = app.user("bo@example.com").await;
    let order: Value = app
        .order(&buyer, "declined", &one_line(&event, &types[0], 1))
        .await
        .json();
    let intent = order["payment"]["intent_id"].as_str().unwrap().to_owned();

    let declined = stripe::pay(&intent, "pm_card_chargeCustomerFail").await;
    assert!(declined.get("error").is_some(), "{declined}");
    let delivery = webhooks
        .wait_for("payment_intent.payment_failed", &intent)
        .await;
    assert_eq!(delivery.answer["outcome"], "recorded");

    let now = get_order(&app, &buyer, order["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "pending");
    assert_eq!(now["payment"]["status"], "requires_payment_method");
    assert!(now["payment"]["last_error"].as_str().is_some(), "{now}");
    assert_eq!(now["tickets"].as_array().unwrap().len(), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM ledger_entries").await, 0);
    invariants_hold(&db).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_payment_after_the_hold_takes_what_is_left_or_is_refunded(db: PgPool) {
    let app = TestApp::new(db.clone())
        .await
        .with_order_hold(Duration::from_secs(1));
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    // 3 places in all, paid passes or free guest tickets.
    let (event, types) = app
        .event_on_sale(&ana, Some(3), &[paid("Pass", 2500, 3), free("Guest", 3)])
        .await;
    let late = app.user("late@example.com").await;
    let later = app.user("later@example.com").await;
    let rival = app.user("rival@example.com").await;

    // Two buyers hold 2 + 1 tickets, and both holds run out.
    let first: Value = app
        .order(&late, "late", &one_line(&event, &types[0], 2))
        .await
        .json();
    let second: Value = app
        .order(&later, "later", &one_line(&event, &types[0], 1))
        .await
        .json();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A third buyer takes 2 of the 3 places meanwhile (free: confirmed at once).
    let taken = app
        .order(&rival, "rival", &one_line(&event, &types[1], 2))
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.text());
    assert_eq!(taken.json::<Value>()["status"], "confirmed");

    // The late payment of 2 finds 1 left: refunded, no tickets, the buyer told.
    let first_intent = first["payment"]["intent_id"].as_str().unwrap().to_owned();
    stripe::pay(&first_intent, "pm_card_visa").await;
    let delivery = webhooks
        .wait_for("payment_intent.succeeded", &first_intent)
        .await;
    assert_eq!(
        delivery.answer["outcome"], "refunding",
        "{}",
        delivery.answer
    );
    let now = get_order(&app, &late, first["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "expired");
    assert_eq!(now["paid_minor"], 5000);
    assert_eq!(now["refunded_minor"], 5000);
    assert_eq!(now["tickets"].as_array().unwrap().len(), 0);
    let (_, refunds) = stripe::api(
        Method::GET,
        &format!("/v1/refunds?payment_intent={first_intent}"),
        &[],
    )
    .await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1, "{refunds}");
    assert_eq!(refunds["data"][0]["amount"], 5000);

    // The late payment of 1 finds its place still there.
    let second_intent = second["payment"]["intent_id"].as_str().unwrap().to_owned();
    stripe::pay(&second_intent, "pm_card_visa").await;
    let delivery = webhooks
        .wait_for("payment_intent.succeeded", &second_intent)
        .await;
    assert_eq!(
        delivery.answer["outcome"], "confirmed",
        "{}",
        delivery.answer
    );
    let now = get_order(&app, &later, second["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "confirmed");
    assert_eq!(now["tickets"].as_array().unwrap().len(), 1);

    // Never oversold: 2 guests and 1 pass.
    assert_eq!(
        count(&db, "SELECT sum(sold + held)::bigint FROM ticket_types").await,
        3
    );
    invariants_hold(&db).await;
    app.run_worker().await;
    assert!(
        app.mailbox()
            .iter()
            .any(|m| m.to == "late@example.com" && m.subject.starts_with("Refunded")),
        "the late buyer is told of the refund"
    );
}
