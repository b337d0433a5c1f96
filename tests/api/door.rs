//! The organizer's side of ticketing: check-in at the door, the attendee list (JSON and
//! CSV), the sales summary, ticket type changes, discount codes, and cancelling or
//! moving an event with its ticket holders told.

use api_tests::{TestApp, Tokens};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

fn ticket_type(name: &str, price: i64, quantity: i64) -> Value {
    json!({"name": name, "price_minor": price, "currency": "EUR", "quantity": quantity})
}

/// An organizer, their event on sale (a free and a paid type), and a buyer who holds two
/// free tickets (one named with a formula) and a pending paid order.
struct Sold {
    app: TestApp,
    ana: Tokens,
    bob: Tokens,
    event: String,
    types: Vec<String>,
    codes: Vec<String>,
    pending: String,
}

async fn sold(db: PgPool) -> Sold {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(
            &ana,
            None,
            &[ticket_type("Social", 0, 10), ticket_type("Class", 1500, 10)],
        )
        .await;
    let bob = app.user("bob@example.com").await;
    let free = app
        .order(
            &bob,
            "free",
            &json!({"event_id": event, "attendees": ["Bob", "=cmd|' /C calc'!A0"],
                    "lines": [{"ticket_type_id": types[0], "quantity": 2}]}),
        )
        .await;
    assert_eq!(free.status, StatusCode::CREATED, "{}", free.text());
    let codes = free.json::<Value>()["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap().to_owned())
        .collect();
    let pending = app
        .order(
            &bob,
            "paid",
            &json!({"event_id": event, "lines": [{"ticket_type_id": types[1], "quantity": 3}]}),
        )
        .await
        .json::<Value>()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Sold {
        app,
        ana,
        bob,
        event,
        types,
        codes,
        pending,
    }
}

async fn scan(
    app: &TestApp,
    who: &Tokens,
    event: &str,
    code: &str,
    nonce: &str,
) -> api_tests::Response {
    app.post(
        &format!("/api/v1/events/{event}/check-ins"),
        &json!({"code": code, "nonce": nonce}),
        Some(&who.access_token),
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn the_door_admits_each_ticket_once_and_a_retry_gets_the_same_answer(db: PgPool) {
    let Sold {
        app,
        ana,
        bob,
        event,
        codes,
        ..
    } = sold(db).await;
    let first = scan(&app, &ana, &event, &codes[0].to_ascii_lowercase(), "scan-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let admitted: Value = first.json();
    assert_eq!(admitted["attendee_name"], "Bob");
    assert_eq!(admitted["ticket_type_name"], "Social");
    // Flaky Wi-Fi: the same scan again gets the same answer.
    let retry = scan(&app, &ana, &event, &codes[0], "scan-1").await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.json::<Value>(), admitted);
    // Another scan of the same code: refused, saying when it was first scanned.
    let again = scan(&app, &ana, &event, &codes[0], "scan-2").await;
    let detail = again.problem(StatusCode::CONFLICT)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.starts_with("already checked in at "), "{detail}");
    assert!(
        detail.contains(&admitted["checked_in_at"].as_str().unwrap()[..19]),
        "{detail}"
    );

    // Unknown and malformed codes, a bad nonce.
    scan(&app, &ana, &event, "AAAAAAAAAAAAAAAAAAAAAAAAAA", "s")
        .await
        .problem(StatusCode::NOT_FOUND);
    scan(&app, &ana, &event, "not a code", "s")
        .await
        .problem(StatusCode::NOT_FOUND);
    scan(&app, &ana, &event, &codes[1], "")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    // A ticket of another event of the same organizer.
    let (other, _) = app
        .event_on_sale(&ana, None, &[ticket_type("Other", 0, 5)])
        .await;
    let wrong = scan(&app, &ana, &other, &codes[1], "s-3").await;
    assert_eq!(
        wrong.problem(StatusCode::CONFLICT)["detail"],
        "this ticket is for another event"
    );
    // A void ticket.
    sqlx::query("UPDATE tickets SET status = 'void', voided_at = now() WHERE code = $1")
        .bind(&codes[1])
        .execute(&app.db)
        .await
        .unwrap();
    let void = scan(&app, &ana, &event, &codes[1], "s-4").await;
    assert_eq!(
        void.problem(StatusCode::CONFLICT)["detail"],
        "this ticket is void"
    );
    // Only the event's organizer (or an admin) scans: others get 404 or 403.
    let cleo = app.organizer("cleo@example.com").await;
    scan(&app, &cleo, &event, &codes[0], "x")
        .await
        .problem(StatusCode::NOT_FOUND);
    scan(&app, &bob, &event, &codes[0], "x")
        .await
        .problem(StatusCode::FORBIDDEN);
    let admin = app.admin("root@example.com").await;
    let by_admin = scan(&app, &admin, &event, &codes[0], "x").await;
    by_admin.problem(StatusCode::CONFLICT);

    // The buyer's ticket shows when it was admitted.
    let ticket = admitted["ticket_id"].as_str().unwrap();
    let shown: Value = app
        .get(
            &format!("/api/v1/tickets/{ticket}"),
            Some(&bob.access_token),
        )
        .await
        .json();
    assert_eq!(shown["checked_in_at"], admitted["checked_in_at"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn organizers_list_attendees_and_sales(db: PgPool) {
    let Sold {
        app,
        ana,
        event,
        types,
        codes,
        ..
    } = sold(db).await;
    scan(&app, &ana, &event, &codes[0], "n").await;
    let path = format!("/api/v1/events/{event}/attendees?limit=1");
    let page: Value = app.get(&path, Some(&ana.access_token)).await.json();
    assert_eq!(page["items"][0]["attendee_name"], "Bob");
    assert_eq!(page["items"][0]["buyer_email"], "bob@example.com");
    assert!(page["items"][0]["checked_in_at"].is_string());
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get(&format!("{path}&cursor={cursor}"), Some(&ana.access_token))
        .await
        .json();
    assert_eq!(next["items"][0]["attendee_name"], "=cmd|' /C calc'!A0");
    assert_eq!(next["next_cursor"], Value::Null);

    let csv = app
        .call(Method::GET, &format!("/api/v1/events/{event}/attendees"))
        .bearer(&ana.access_token)
        .header("accept", "text/csv")
        .send()
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ticket_id,attendee_name,"));
    // The typed formula is text in a spreadsheet.
    assert!(lines[2].contains(",'=cmd|' /C calc'!A0,"), "{}", lines[2]);

    let sales: Value = app
        .get(
            &format!("/api/v1/events/{event}/sales"),
            Some(&ana.access_token),
        )
        .await
        .json();
    assert_eq!(sales["currency"], "EUR");
    assert_eq!(
        sales["ticket_types"][0]["ticket_type_id"],
        types[0].as_str()
    );
    assert_eq!(sales["ticket_types"][0]["sold"], 2);
    assert_eq!(sales["ticket_types"][0]["checked_in"], 1);
    assert_eq!(sales["ticket_types"][0]["remaining"], 8);
    assert_eq!(sales["ticket_types"][1]["sold"], 0);
    assert_eq!(sales["ticket_types"][1]["held"], 3);
    assert_eq!(sales["ticket_types"][1]["remaining"], 7);
    assert_eq!(sales["gross_minor"], 0);
    assert_eq!(sales["checked_in"], 1);

    // Another organizer sees none of it.
    let cleo = app.organizer("cleo@example.com").await;
    for tail in ["attendees", "sales", "discount-codes"] {
        app.get(
            &format!("/api/v1/events/{event}/{tail}"),
            Some(&cleo.access_token),
        )
        .await
        .problem(StatusCode::NOT_FOUND);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn ticket_types_change_within_what_is_taken_and_with_orders_are_only_hidden(db: PgPool) {
    let Sold {
        app,
        ana,
        event,
        types,
        ..
    } = sold(db).await;
    let path = |t: &str| format!("/api/v1/events/{event}/ticket-types/{t}");
    // 2 sold of Social: not below that.
    let below = app
        .patch(
            &path(&types[0]),
            &json!({"quantity": 1}),
            Some(&ana.access_token),
        )
        .await;
    assert_eq!(
        below.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["code"],
        "below_taken"
    );
    // 3 held of Class count too.
    app.patch(
        &path(&types[1]),
        &json!({"quantity": 2}),
        Some(&ana.access_token),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let changed = app
        .patch(
            &path(&types[1]),
            &json!({"quantity": 3, "price_minor": 2000, "sales_end": null}),
            Some(&ana.access_token),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let changed: Value = changed.json();
    assert_eq!(changed["quantity"], 3);
    assert_eq!(changed["remaining"], 0);
    assert_eq!(changed["sales_state"], "sold_out");
    // Invalid merges are refused whole.
    app.patch(
        &path(&types[1]),
        &json!({"min_per_order": 5, "max_per_order": 2}),
        Some(&ana.access_token),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    app.patch(
        &path(&types[1]),
        &json!({"currency": "USD"}),
        Some(&ana.access_token),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);

    // With orders: hidden, never deleted.
    app.delete(&path(&types[0]), Some(&ana.access_token))
        .await
        .problem(StatusCode::CONFLICT);
    let hidden = app
        .patch(
            &path(&types[0]),
            &json!({"hidden": true}),
            Some(&ana.access_token),
        )
        .await;
    assert_eq!(hidden.json::<Value>()["hidden"], true);
    let public: Value = app
        .get(&format!("/api/v1/events/{event}"), None)
        .await
        .json();
    assert_eq!(public["ticket_types"].as_array().unwrap().len(), 1);
    // Without orders: deleted.
    let spare = app
        .post(
            &format!("/api/v1/events/{event}/ticket-types"),
            &ticket_type("Spare", 0, 5),
            Some(&ana.access_token),
        )
        .await
        .json::<Value>()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete(&path(&spare), Some(&ana.access_token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.delete(&path(&spare), Some(&ana.access_token))
        .await
        .problem(StatusCode::NOT_FOUND);
    // Another organizer's event: 404 whatever the type.
    let cleo = app.organizer("cleo@example.com").await;
    app.patch(
        &path(&types[1]),
        &json!({"hidden": true}),
        Some(&cleo.access_token),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn organizers_create_discount_codes_that_buyers_use(db: PgPool) {
    let Sold {
        app,
        ana,
        bob,
        event,
        types,
        ..
    } = sold(db).await;
    let path = format!("/api/v1/events/{event}/discount-codes");
    let created = app
        .post(
            &path,
            &json!({"code": "friends", "percent_off": 50, "max_uses": 2, "ticket_type_ids": [types[1]]}),
            Some(&ana.access_token),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json::<Value>()["code"], "FRIENDS");
    app.post(
        &path,
        &json!({"code": "FRIENDS", "percent_off": 10}),
        Some(&ana.access_token),
    )
    .await
    .problem(StatusCode::CONFLICT);
    for bad in [
        json!({"code": "x", "percent_off": 10}),
        json!({"code": "BOTH", "percent_off": 10, "amount_off_minor": 100}),
        json!({"code": "NONE"}),
        json!({"code": "PCT", "percent_off": 101}),
        json!({"code": "OTHER", "percent_off": 10, "ticket_type_ids": ["0190f5a8-8d4b-7c1e-9a2b-3c4d5e6f7a8b"]}),
    ] {
        app.post(&path, &bad, Some(&ana.access_token))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let order = app
        .order(
            &bob,
            "friends",
            &json!({"event_id": event, "discount_code": "Friends",
                    "lines": [{"ticket_type_id": types[1], "quantity": 2}]}),
        )
        .await;
    assert_eq!(order.json::<Value>()["total_minor"], 1500);
    let listed: Value = app.get(&path, Some(&ana.access_token)).await.json();
    assert_eq!(listed[0]["uses"], 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn cancelling_an_event_voids_tickets_releases_holds_and_tells_holders(db: PgPool) {
    let Sold {
        app,
        ana,
        bob,
        event,
        types,
        codes,
        pending,
    } = sold(db).await;
    // Moving it first: the holder is told of the new time.
    let moved = app
        .call(Method::PATCH, &format!("/api/v1/events/{event}"))
        .bearer(&ana.access_token)
        .json(&json!({"starts_at": "2030-05-02T20:00:00Z", "ends_at": "2030-05-03T02:00:00Z"}))
        .send()
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    let cancel = format!("/api/v1/events/{event}/cancel");
    let cancelled = app.post(&cancel, &json!({}), Some(&ana.access_token)).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text());
    assert_eq!(cancelled.json::<Value>()["status"], "cancelled");
    // Again: harmless. By another organizer: 404.
    assert_eq!(
        app.post(&cancel, &json!({}), Some(&ana.access_token))
            .await
            .status,
        StatusCode::OK
    );
    let cleo = app.organizer("cleo@example.com").await;
    app.post(&cancel, &json!({}), Some(&cleo.access_token))
        .await
        .problem(StatusCode::NOT_FOUND);

    let tickets: Value = app
        .get("/api/v1/tickets", Some(&bob.access_token))
        .await
        .json();
    for t in tickets["items"].as_array().unwrap() {
        assert_eq!(t["status"], "void");
        assert_eq!(t["event"]["status"], "cancelled");
    }
    let held: Value = app
        .get(
            &format!("/api/v1/orders/{pending}"),
            Some(&bob.access_token),
        )
        .await
        .json();
    assert_eq!(held["status"], "cancelled");
    // Nothing more is sold, scanned or changed.
    app.order(
        &bob,
        "late",
        &json!({"event_id": event, "lines": [{"ticket_type_id": types[0], "quantity": 1}]}),
    )
    .await
    .problem(StatusCode::CONFLICT);
    scan(&app, &ana, &event, &codes[0], "n")
        .await
        .problem(StatusCode::CONFLICT);

    // The holder is told in the inbox and by email: confirmed, moved, cancelled.
    app.run_worker().await;
    let inbox: Value = app
        .get("/api/v1/notifications", Some(&bob.access_token))
        .await
        .json();
    let kinds: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "event_cancelled",
            "event_changed",
            "order_confirmed",
            "welcome"
        ]
    );
    let mails: Vec<String> = app
        .mailbox()
        .into_iter()
        .filter(|m| m.to == "bob@example.com")
        .map(|m| m.subject)
        .collect();
    for subject in [
        "Order confirmed: Bachata Weekend",
        "Changed: Bachata Weekend",
        "Cancelled: Bachata Weekend",
    ] {
        assert!(
            mails.iter().any(|m| m == subject),
            "{subject} not in {mails:?}"
        );
    }
}
