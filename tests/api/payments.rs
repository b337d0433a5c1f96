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
         WHERE (o.status = 'confirmed'
                AND (SELECT count(*) FROM tickets t WHERE t.order_id = o.id)
                    <> (SELECT sum(quantity) FROM order_lines l WHERE l.order_id = o.id))
            OR (o.status IN ('pending', 'expired', 'cancelled')
                AND EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id))
            OR (o.status <> 'confirmed'
                AND EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id AND t.status = 'valid'))",
    )
    .await;
    assert_eq!(wrong, 0, "an order's tickets disagree with its status");
    let unpaid = count(
        db,
        "WITH money AS (
             SELECT o.id, o.status, o.total_minor,
                    coalesce(sum(m.amount_minor) FILTER (WHERE m.kind = 'charge'), 0) AS charged,
                    coalesce(sum(m.amount_minor) FILTER (WHERE m.kind = 'refund'), 0) AS refunded
             FROM orders o LEFT JOIN ledger_entries m ON m.order_id = o.id GROUP BY o.id)
         SELECT count(*) FROM money
         WHERE (status = 'confirmed' AND charged < total_minor)
            OR (status = 'confirmed' AND charged - refunded > total_minor)
            OR (status <> 'confirmed' AND charged - refunded <> 0)",
    )
    .await;
    assert_eq!(
        unpaid, 0,
        "money kept disagrees with an order: a confirmed order keeps at most its total, others nothing"
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

    // An object Stripe does not have: recorded, answered 200 (a redelivery cannot help),
    // nothing else touched.
    for (id, kind, object) in [
        (
            "evt_test_gone_pi",
            "payment_intent.succeeded",
            "pi_doesnotexist",
        ),
        ("evt_test_gone_re", "refund.updated", "re_doesnotexist"),
    ] {
        let event = stripe::event(id, kind, &json!({"id": object}));
        let response = deliver(&app, &event, Some(&stripe::signed(&db, &event))).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.json::<Value>()["outcome"], "unknown_object");
        let again = deliver(&app, &event, Some(&stripe::signed(&db, &event))).await;
        assert_eq!(again.json::<Value>()["outcome"], "duplicate");
    }
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
async fn after_a_decline_the_buyer_starts_over_with_a_new_payment(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 3000, 5), free("Guest", 5)])
        .await;
    let buyer = app.user("bo@example.com").await;
    let order: Value = app
        .order(&buyer, "retry", &one_line(&event, &types[0], 1))
        .await
        .json();
    let id = order["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orders/{id}/payment");
    let first = order["payment"]["intent_id"].as_str().unwrap().to_owned();

    // Before anything failed, asking again returns the payment the buyer already has.
    let again = app.post(&path, &json!({}), Some(&buyer.access_token)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(
        again.json::<Value>()["payment"]["intent_id"],
        first.as_str()
    );

    webhooks
        .pay_and_wait(&first, "pm_card_chargeCustomerFail")
        .await;

    // Starting over cancels the declined intent at Stripe and opens the next attempt,
    // once however often it is asked for.
    let retried = app.post(&path, &json!({}), Some(&buyer.access_token)).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text());
    let retried: Value = retried.json();
    let second = retried["payment"]["intent_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(retried["payment"]["status"], "requires_payment_method");
    assert_eq!(retried["payment"]["last_error"], Value::Null);
    assert_eq!(retried["status"], "pending");
    let (_, old) = stripe::api(Method::GET, &format!("/v1/payment_intents/{first}"), &[]).await;
    assert_eq!(old["status"], "canceled", "{old}");
    let (_, new) = stripe::api(Method::GET, &format!("/v1/payment_intents/{second}"), &[]).await;
    assert_eq!(new["amount"], 3000);
    assert_eq!(new["metadata"]["order_id"], id.as_str());
    let repeated = app.post(&path, &json!({}), Some(&buyer.access_token)).await;
    assert_eq!(
        repeated.json::<Value>()["payment"]["intent_id"],
        second.as_str()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM payments WHERE attempt = 2").await,
        1
    );

    // Nobody else may touch it; a free order has nothing to pay.
    let eve = app.user("eve@example.com").await;
    let foreign = app.post(&path, &json!({}), Some(&eve.access_token)).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text());
    assert_eq!(
        app.post(&path, &json!({}), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let gift: Value = app
        .order(&buyer, "retry-free", &one_line(&event, &types[1], 1))
        .await
        .json();
    let free_path = format!("/api/v1/orders/{}/payment", gift["id"].as_str().unwrap());
    let refused = app
        .post(&free_path, &json!({}), Some(&buyer.access_token))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());

    // The new attempt pays; the order is confirmed once, and then is not payable again.
    let delivery = webhooks.pay_and_wait(&second, "pm_card_visa").await;
    assert_eq!(
        delivery.answer["outcome"], "confirmed",
        "{}",
        delivery.answer
    );
    let paid_order = get_order(&app, &buyer, &id).await;
    assert_eq!(paid_order["status"], "confirmed");
    assert_eq!(paid_order["paid_minor"], 3000);
    assert_eq!(paid_order["tickets"].as_array().unwrap().len(), 1);
    let after = app.post(&path, &json!({}), Some(&buyer.access_token)).await;
    assert_eq!(after.status, StatusCode::CONFLICT, "{}", after.text());
    assert_eq!(
        after.header("content-type"),
        Some("application/problem+json")
    );
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
    let delivery = webhooks.pay_and_wait(&first_intent, "pm_card_visa").await;
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
    let delivery = webhooks.pay_and_wait(&second_intent, "pm_card_visa").await;
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

/// A paid, confirmed order of `buyer` for `quantity` passes of `ticket_type`, its
/// payment settled through the webhook; returns the order's id and intent.
async fn paid_order(
    app: &TestApp,
    webhooks: &Webhooks,
    buyer: &Tokens,
    key: &str,
    event: &str,
    ticket_type: &str,
    quantity: i64,
) -> (String, String) {
    let order: Value = app
        .order(buyer, key, &one_line(event, ticket_type, quantity))
        .await
        .json();
    let intent = order["payment"]["intent_id"].as_str().unwrap().to_owned();
    let delivery = webhooks.pay_and_wait(&intent, "pm_card_visa").await;
    assert_eq!(
        delivery.answer["outcome"], "confirmed",
        "{}",
        delivery.answer
    );
    (order["id"].as_str().unwrap().to_owned(), intent)
}

async fn refund(
    app: &TestApp,
    who: &Tokens,
    order: &str,
    key: &str,
    body: &Value,
) -> api_tests::Response {
    app.call(Method::POST, &format!("/api/v1/orders/{order}/refunds"))
        .bearer(&who.access_token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
}

#[sqlx::test(migrations = "../migrations")]
async fn organizers_refund_in_part_or_in_full_and_a_full_refund_voids_the_tickets(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 3000, 4)])
        .await;
    let buyer = app.user("bo@example.com").await;
    let (order, intent) = paid_order(&app, &webhooks, &buyer, "o1", &event, &types[0], 2).await;

    // Nobody but the event's organizer (or an admin) may; the buyer and another
    // organizer see no such order.
    let other = app.organizer("olga@example.com").await;
    for who in [&buyer, &other] {
        let refused = refund(&app, who, &order, "r0", &json!({"reason": "mine"})).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text());
    }
    for (i, (body, status)) in [
        (
            json!({"amount_minor": 0, "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"amount_minor": 6001, "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"amount_minor": 100, "reason": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"amount_minor": "lots", "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let refused = refund(&app, &ana, &order, &format!("bad-{i}"), &body).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.text());
    }
    assert_eq!(count(&db, "SELECT count(*) FROM refunds").await, 0);

    // A partial refund: money back, the order and its tickets stay.
    let partial = refund(
        &app,
        &ana,
        &order,
        "r1",
        &json!({"amount_minor": 1000, "reason": "Late start"}),
    )
    .await;
    assert_eq!(partial.status, StatusCode::CREATED, "{}", partial.text());
    let partial: Value = partial.json();
    assert_eq!(partial["status"], "succeeded");
    assert_eq!(partial["full"], false);
    // The same click again is the same refund.
    let again = refund(
        &app,
        &ana,
        &order,
        "r1",
        &json!({"amount_minor": 1000, "reason": "Late start"}),
    )
    .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let again: Value = again.json();
    assert_eq!(again["id"], partial["id"]);
    // As it is now, not as it was first stored (`requested`, before Stripe was called).
    assert_eq!(again["status"], "succeeded");
    let now = get_order(&app, &buyer, &order).await;
    assert_eq!(now["status"], "confirmed");
    assert_eq!(now["refunded_minor"], 1000);

    // The rest: the tickets are void and back on sale.
    let full = refund(
        &app,
        &ana,
        &order,
        "r2",
        &json!({"reason": "Cancelled by the buyer"}),
    )
    .await;
    assert_eq!(full.status, StatusCode::CREATED, "{}", full.text());
    let full: Value = full.json();
    assert_eq!(full["amount_minor"], 5000);
    assert_eq!(full["full"], true);
    let now = get_order(&app, &buyer, &order).await;
    assert_eq!(now["status"], "refunded");
    assert_eq!(now["refunded_minor"], 6000);
    assert!(
        now["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "void"),
        "{now}"
    );
    assert_eq!(count(&db, "SELECT sold::bigint FROM ticket_types").await, 0);
    let nothing = refund(&app, &ana, &order, "r3", &json!({"reason": "again"})).await;
    assert_eq!(nothing.status, StatusCode::CONFLICT);

    // Stripe holds both refunds, once each; the books agree.
    let (_, at_stripe) = stripe::api(
        Method::GET,
        &format!("/v1/refunds?payment_intent={intent}"),
        &[],
    )
    .await;
    assert_eq!(
        at_stripe["data"].as_array().unwrap().len(),
        2,
        "{at_stripe}"
    );
    let sales: Value = app
        .get(
            &format!("/api/v1/events/{event}/sales"),
            Some(&ana.access_token),
        )
        .await
        .json();
    assert_eq!(sales["gross_minor"], 6000);
    assert_eq!(sales["refunded_minor"], 6000);
    assert_eq!(sales["net_minor"], 0);
    invariants_hold(&db).await;
    app.run_worker().await;
    let told = app
        .mailbox()
        .iter()
        .filter(|m| m.to == "bo@example.com" && m.subject.starts_with("Refunded"))
        .count();
    assert_eq!(told, 2, "the buyer is told of each refund");
}

#[sqlx::test(migrations = "../migrations")]
async fn cancelling_an_event_refunds_every_paid_order_once(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 2000, 10)])
        .await;
    let mut intents = Vec::new();
    for i in 0..3 {
        let buyer = app.user(&format!("b{i}@example.com")).await;
        let (_, intent) = paid_order(&app, &webhooks, &buyer, "o", &event, &types[0], 1).await;
        intents.push(intent);
    }
    // One was already refunded in part: only the rest goes back.
    let first_order: String =
        sqlx::query_scalar("SELECT order_id::text FROM payments WHERE intent_id = $1")
            .bind(&intents[0])
            .fetch_one(&db)
            .await
            .unwrap();
    let partial = refund(
        &app,
        &ana,
        &first_order,
        "p",
        &json!({"amount_minor": 500, "reason": "x"}),
    )
    .await;
    assert_eq!(partial.status, StatusCode::CREATED);

    let cancelled = app
        .post(
            &format!("/api/v1/events/{event}/cancel"),
            &json!({}),
            Some(&ana.access_token),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text());
    assert_eq!(
        count(&db, "SELECT count(*) FROM orders WHERE status = 'refunded'").await,
        3
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM refunds WHERE status = 'requested'"
        )
        .await,
        3
    );

    // The reconciliation run sends them; a second run (or one after a crash) sends none
    // again.
    let report = app.reconcile(Duration::from_secs(300)).await;
    assert_eq!(report["refunds"], 3, "{report}");
    let report = app.reconcile(Duration::from_secs(300)).await;
    assert_eq!(report["refunds"], 0, "{report}");
    for (i, intent) in intents.iter().enumerate() {
        let (_, at_stripe) = stripe::api(
            Method::GET,
            &format!("/v1/refunds?payment_intent={intent}"),
            &[],
        )
        .await;
        let amounts: Vec<i64> = at_stripe["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["amount"].as_i64().unwrap())
            .collect();
        // The first: 500 by hand, then the 1500 left.
        let expected = if i == 0 { vec![500, 1500] } else { vec![2000] };
        let mut amounts = amounts;
        amounts.sort_unstable();
        assert_eq!(amounts, expected, "{intent}");
    }
    assert_eq!(
        count(&db, "SELECT coalesce(sum(amount_minor), 0)::bigint FROM ledger_entries WHERE kind = 'refund'").await,
        6000
    );
    invariants_hold(&db).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_reconciliation_run_applies_a_payment_whose_webhook_was_lost(db: PgPool) {
    // No webhook endpoint: every delivery is lost.
    let app = TestApp::new(db.clone())
        .await
        .with_order_hold(Duration::from_secs(2));
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 2000, 10)])
        .await;
    let buyer = app.user("bo@example.com").await;
    let paid_order: Value = app
        .order(&buyer, "paid", &one_line(&event, &types[0], 1))
        .await
        .json();
    let abandoned: Value = app
        .order(&buyer, "gone", &one_line(&event, &types[0], 1))
        .await
        .json();
    let intent = paid_order["payment"]["intent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe::pay(&intent, "pm_card_visa").await;

    // Too recent to chase yet: nothing happens.
    let report = app.reconcile(Duration::from_secs(300)).await;
    assert_eq!(report["settled"], 0, "{report}");
    let report = app.reconcile(Duration::ZERO).await;
    assert!(report["settled"].as_u64().unwrap() >= 1, "{report}");
    let now = get_order(&app, &buyer, paid_order["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "confirmed");
    assert_eq!(now["tickets"].as_array().unwrap().len(), 1);

    // The abandoned order's hold runs out: its payment is cancelled at Stripe, so it
    // can no longer be paid.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = app.reconcile(Duration::from_secs(300)).await;
    assert_eq!(report["cancelled"], 1, "{report}");
    let gone = abandoned["payment"]["intent_id"].as_str().unwrap();
    let (_, at_stripe) =
        stripe::api(Method::GET, &format!("/v1/payment_intents/{gone}"), &[]).await;
    assert_eq!(at_stripe["status"], "canceled");
    invariants_hold(&db).await;
}

/// Buyers order and pay at once, some late (after their hold ran out), some with a
/// declined card, some never: nothing is oversold, every paid order has its tickets,
/// and every payment that bought nothing is refunded in full.
#[sqlx::test(migrations = "../migrations")]
async fn a_storm_of_paying_buyers_never_oversells_nor_keeps_money_for_nothing(db: PgPool) {
    const ATTEMPTS: usize = 60;
    let app = TestApp::new(db.clone())
        .await
        .with_order_hold(Duration::from_millis(1500));
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 1500, 20)])
        .await;
    let mut buyers = Vec::new();
    for i in 0..10 {
        buyers.push(app.user(&format!("storm{i}@example.com")).await);
    }
    let attempt = |i: usize| {
        let (app, event, ticket_type, buyer) = (&app, &event, &types[0], &buyers[i % 10]);
        async move {
            let placed = app
                .order(
                    buyer,
                    &format!("s{i}"),
                    &one_line(event, ticket_type, (i % 2 + 1) as i64),
                )
                .await;
            assert!(
                placed.status == StatusCode::CREATED || placed.status == StatusCode::CONFLICT,
                "{}: {}",
                placed.status,
                placed.text()
            );
            if placed.status != StatusCode::CREATED {
                return None;
            }
            let order: Value = placed.json();
            let intent = order["payment"]["intent_id"].as_str().unwrap().to_owned();
            if i.is_multiple_of(7) {
                return None; // abandoned
            }
            // Some pay at once, some after their hold ran out.
            tokio::time::sleep(Duration::from_millis((i % 4) as u64 * 700)).await;
            let card = if i.is_multiple_of(5) {
                "pm_card_chargeCustomerFail"
            } else {
                "pm_card_visa"
            };
            stripe::pay(&intent, card).await;
            Some((intent, card == "pm_card_visa"))
        }
    };
    let paid_intents: Vec<(String, bool)> = futures::future::join_all((0..ATTEMPTS).map(attempt))
        .await
        .into_iter()
        .flatten()
        .collect();
    for (intent, succeeded) in &paid_intents {
        let kind = if *succeeded {
            "payment_intent.succeeded"
        } else {
            "payment_intent.payment_failed"
        };
        let delivery = webhooks.wait_for(kind, intent).await;
        assert_eq!(delivery.status, StatusCode::OK, "{}", delivery.answer);
    }
    // Whatever the webhooks left (the dead holds' payments) the reconciliation finishes.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    app.reconcile(Duration::ZERO).await;

    let sold = count(&db, "SELECT sold::bigint FROM ticket_types").await;
    assert!(sold <= 20, "{sold} sold of 20");
    assert!(sold > 0);
    let tickets = count(&db, "SELECT count(*) FROM tickets WHERE status = 'valid'").await;
    assert_eq!(tickets, sold);
    // Every successful payment either bought its order or came back in full.
    for (intent, succeeded) in paid_intents.iter().filter(|(_, s)| *s) {
        let outcome: (String, i64, i64) = sqlx::query_as(
            "SELECT o.status::text,
                    coalesce((SELECT sum(amount_minor) FROM ledger_entries WHERE order_id = o.id AND kind = 'charge'), 0)::bigint,
                    coalesce((SELECT sum(amount_minor) FROM ledger_entries WHERE order_id = o.id AND kind = 'refund'), 0)::bigint
             FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.intent_id = $1",
        )
        .bind(intent)
        .fetch_one(&db)
        .await
        .unwrap();
        let (status, charged, refunded) = outcome;
        assert!(*succeeded && charged > 0, "{intent}: charged {charged}");
        match status.as_str() {
            "confirmed" => assert_eq!(refunded, 0, "{intent}"),
            _ => assert_eq!(
                refunded, charged,
                "{intent} ({status}) kept money for nothing"
            ),
        }
    }
    assert!(
        count(&db, "SELECT count(*) FROM refunds WHERE reason = 'paid_after_hold'").await
            + count(&db, "SELECT count(*) FROM orders WHERE status = 'confirmed' AND confirmed_at > hold_expires_at").await
            > 0,
        "some paid after their hold ran out"
    );
    invariants_hold(&db).await;
}

/// localstripe sends no refund events; Stripe does (`refund.created`, `refund.updated`),
/// so the test signs them itself: the refund is read back from Stripe and recorded once.
#[sqlx::test(migrations = "../migrations")]
async fn refund_events_are_read_back_from_stripe_and_recorded_once(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let webhooks = Webhooks::start(&db, app.router(Function::Payments)).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 3000, 4)])
        .await;
    let buyer = app.user("bo@example.com").await;
    let (order, _) = paid_order(&app, &webhooks, &buyer, "o1", &event, &types[0], 1).await;
    let made = refund(
        &app,
        &ana,
        &order,
        "r1",
        &json!({"amount_minor": 1200, "reason": "x"}),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    let stripe_id: String = sqlx::query_scalar("SELECT stripe_refund_id FROM refunds")
        .fetch_one(&db)
        .await
        .unwrap();

    for (id, kind) in [
        ("evt_test_r1", "refund.created"),
        ("evt_test_r2", "refund.updated"),
    ] {
        let body = stripe::event(id, kind, &json!({"id": stripe_id, "object": "refund"}));
        let answer = deliver(&app, &body, Some(&stripe::signed(&db, &body))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json::<Value>()["outcome"], "recorded");
    }
    // A refund that is not ours (no refund id in its metadata) changes nothing.
    let (_, foreign) = stripe::api(
        Method::POST,
        "/v1/refunds",
        &[
            (
                "payment_intent",
                sqlx::query_scalar::<_, String>("SELECT intent_id FROM payments")
                    .fetch_one(&db)
                    .await
                    .unwrap()
                    .as_str(),
            ),
            ("amount", "100"),
        ],
    )
    .await;
    let body = stripe::event("evt_test_r3", "refund.created", &foreign);
    let answer = deliver(&app, &body, Some(&stripe::signed(&db, &body))).await;
    assert_eq!(answer.json::<Value>()["outcome"], "not_ours");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM ledger_entries WHERE kind = 'refund'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_test_r%'"
        )
        .await,
        3
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn only_a_paid_order_can_be_refunded(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[paid("Pass", 3000, 4), free("Guest", 4)])
        .await;
    let buyer = app.user("bo@example.com").await;
    let unpaid: Value = app
        .order(&buyer, "unpaid", &one_line(&event, &types[0], 1))
        .await
        .json();
    let free_order: Value = app
        .order(&buyer, "free", &one_line(&event, &types[1], 1))
        .await
        .json();
    assert_eq!(free_order["status"], "confirmed");
    for (key, order) in [("a", &unpaid), ("b", &free_order)] {
        let id = order["id"].as_str().unwrap();
        let refused = refund(&app, &ana, id, key, &json!({"reason": "x"})).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    }
    // An order id that does not exist, and one that is not a uuid.
    let missing = refund(
        &app,
        &ana,
        &uuid::Uuid::now_v7().to_string(),
        "c",
        &json!({"reason": "x"}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let garbage = refund(&app, &ana, "not-an-id", "d", &json!({"reason": "x"})).await;
    assert!(garbage.status.is_client_error(), "{}", garbage.status);
    assert_eq!(count(&db, "SELECT count(*) FROM refunds").await, 0);
}
