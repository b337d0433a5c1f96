//! The events API: organizers' drafts, edits with If-Match, and public reads.

use api_tests::{TestApp, Tokens};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

fn salsa_night() -> Value {
    json!({
        "title": "Salsa Night: Madrid",
        "description": "Social dancing.\nBeginners' class at 20:00.",
        "category": "Salsa",
        "venue": {"name": "Salón", "address": "Calle Mayor 1", "city": "Madrid", "country": "es"},
        "starts_at": "2027-03-06T20:00:00+01:00",
        "ends_at": "2027-03-07T02:00:00+01:00",
        "timezone": "Europe/Madrid",
        "capacity": 120
    })
}

async fn create(app: &TestApp, who: &Tokens, body: &Value) -> api_tests::Response {
    app.post("/api/v1/events", body, Some(&who.access_token))
        .await
}

#[sqlx::test(migrations = "../migrations")]
async fn organizers_create_drafts_that_only_they_see(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let created = create(&app, &ana, &salsa_night()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.header("etag"), Some("\"1\""));
    let event: Value = created.json();
    let location = created.header("location").unwrap().to_owned();
    assert_eq!(
        location,
        format!("/api/v1/events/{}", event["id"].as_str().unwrap())
    );
    assert_eq!(event["slug"], "salsa-night-madrid");
    assert_eq!(event["status"], "draft");
    assert_eq!(event["category"], "salsa");
    assert_eq!(event["venue"]["country"], "ES");
    assert_eq!(event["starts_at"], "2027-03-06T19:00:00Z");
    assert_eq!(event["capacity"], 120);

    // The organizer reads it by id and by slug; a draft is never kept by a shared cache.
    for key in [event["id"].as_str().unwrap(), "salsa-night-madrid"] {
        let shown = app
            .get(&format!("/api/v1/events/{key}"), Some(&ana.access_token))
            .await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
        assert_eq!(shown.json::<Value>()["id"], event["id"]);
        assert_eq!(shown.header("cache-control"), Some("private, no-cache"));
    }
    // Anyone else (anonymous, another user, another organizer): as if it did not exist.
    let bob = app.user("bob@example.com").await;
    let cleo = app.organizer("cleo@example.com").await;
    app.get(&location, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    for other in [&bob, &cleo] {
        app.get(&location, Some(&other.access_token))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
    // An admin sees it.
    let admin = app.admin("root@example.com").await;
    assert_eq!(
        app.get(&location, Some(&admin.access_token)).await.status,
        StatusCode::OK
    );

    // The same title again gets the next free slug; "mine" is never a slug.
    let again: Value = create(&app, &ana, &salsa_night()).await.json();
    assert_eq!(again["slug"], "salsa-night-madrid-2");
    let mut mine = salsa_night();
    mine["title"] = json!("Mine");
    let mine: Value = create(&app, &ana, &mine).await.json();
    assert_eq!(mine["slug"], "event-mine");

    // Ordinary users cannot organize.
    create(&app, &bob, &salsa_night())
        .await
        .problem(StatusCode::FORBIDDEN);
    app.post("/api/v1/events", &salsa_night(), None)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // The organizer's list: their own three, newest first, in pages; cleo's is empty.
    let page: Value = app
        .get("/api/v1/events/mine?limit=2", Some(&ana.access_token))
        .await
        .json();
    let slugs: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["event-mine", "salsa-night-madrid-2"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/api/v1/events/mine?limit=2&cursor={cursor}"),
            Some(&ana.access_token),
        )
        .await
        .json();
    assert_eq!(rest["items"][0]["slug"], "salsa-night-madrid");
    assert!(rest["next_cursor"].is_null());
    let empty: Value = app
        .get("/api/v1/events/mine", Some(&cleo.access_token))
        .await
        .json();
    assert_eq!(empty["items"], json!([]));
}

#[sqlx::test(migrations = "../migrations")]
async fn edits_need_the_current_version_and_stay_valid(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let event: Value = create(&app, &ana, &salsa_night()).await.json();
    let path = format!("/api/v1/events/{}", event["id"].as_str().unwrap());
    let patch = |body: Value, if_match: Option<&'static str>| {
        let mut call = app
            .call(Method::PATCH, &path)
            .bearer(&ana.access_token)
            .json(&body);
        if let Some(tag) = if_match {
            call = call.header("if-match", tag);
        }
        call.send()
    };

    let changed = patch(
        json!({"title": "Salsa Night XL", "capacity": null}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.header("etag"), Some("\"2\""));
    let changed: Value = changed.json();
    assert_eq!(changed["title"], "Salsa Night XL");
    assert!(changed["capacity"].is_null());
    assert_eq!(changed["slug"], "salsa-night-madrid", "the address stays");

    // A stale tag changes nothing.
    let stale = patch(json!({"title": "Lost update"}), Some("\"1\""))
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    assert!(
        stale["detail"].as_str().unwrap().contains("event"),
        "{stale}"
    );
    // Invalid fields, each named; nothing written.
    let invalid = patch(
        json!({"ends_at": "2027-03-06T18:00:00Z", "timezone": "Mars/Olympus", "venue": {"name": "", "address": "x", "city": "Madrid", "country": "Spain"}}),
        None,
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = invalid["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["venue/name", "venue/country", "ends_at"],
        "{invalid}"
    );
    let zone = patch(json!({"timezone": "Mars/Olympus"}), None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(zone["errors"][0]["field"], "timezone");
    patch(json!({"status": "published"}), None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let now: Value = app.get(&path, Some(&ana.access_token)).await.json();
    assert_eq!(
        (now["version"].as_i64(), now["title"].as_str()),
        (Some(2), Some("Salsa Night XL"))
    );

    // Another organizer's event is a 404, whatever the key.
    let cleo = app.organizer("cleo@example.com").await;
    app.call(Method::PATCH, &path)
        .bearer(&cleo.access_token)
        .json(&json!({"title": "Mine now"}))
        .send()
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_cover_must_be_the_organizers_own_ready_event_image(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let cleo = app.organizer("cleo@example.com").await;
    // Upload rows as the processor leaves them (the upload path has its own tests).
    let upload = |owner: String, purpose: &'static str, status: &'static str| {
        let db = app.db.clone();
        async move {
            let id = uuid::Uuid::now_v7();
            sqlx::query(
                "INSERT INTO uploads (id, owner_id, purpose, object_key, filename, content_type,
                                      size, status, url_expires_at)
                 VALUES ($1, $2::uuid, $3::upload_purpose, $4, 'c.png', 'image/png', 10,
                         $5::upload_status, now())",
            )
            .bind(id)
            .bind(owner)
            .bind(purpose)
            .bind(format!("k/{id}"))
            .bind(status)
            .execute(&db)
            .await
            .unwrap();
            id
        }
    };
    let ana_id = app.id_of(&ana.access_token).await;
    let cleo_id = app.id_of(&cleo.access_token).await;
    let good = upload(ana_id.clone(), "event_image", "ready").await;
    let refused = [
        upload(ana_id.clone(), "event_image", "pending").await,
        upload(ana_id, "avatar", "ready").await,
        upload(cleo_id, "event_image", "ready").await,
        uuid::Uuid::now_v7(),
    ];
    for id in refused {
        let mut body = salsa_night();
        body["cover_upload_id"] = json!(id);
        let problem = create(&app, &ana, &body)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            problem["errors"][0]["field"], "cover_upload_id",
            "{problem}"
        );
    }
    let mut body = salsa_night();
    body["cover_upload_id"] = json!(good);
    let created = create(&app, &ana, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json::<Value>()["cover_upload_id"], json!(good));
}

#[sqlx::test(migrations = "../migrations")]
async fn published_events_are_public_and_cacheable(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let event: Value = create(&app, &ana, &salsa_night()).await.json();
    // Publishing comes with ticket types; here the row is published directly.
    sqlx::query("UPDATE events SET status = 'published', published_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let path = "/api/v1/events/salsa-night-madrid";
    let shown = app.get(path, None).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    assert_eq!(shown.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(shown.header("vary"), Some("authorization"));
    let etag = shown.header("etag").unwrap().to_owned();
    assert_eq!(shown.json::<Value>()["id"], event["id"]);
    // A client holding the current tag gets 304 with no body; a stale one the event.
    let unchanged = app
        .call(Method::GET, path)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.text(), "");
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
    let stale = app
        .call(Method::GET, path)
        .header("if-none-match", "\"0\"")
        .send()
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    // Unknown ids and slugs, and keys that can be neither, are 404s.
    for key in [
        uuid::Uuid::now_v7().to_string(),
        "no-such-event".into(),
        "Not A Slug".replace(' ', "%20"),
        "a".repeat(91),
    ] {
        app.get(&format!("/api/v1/events/{key}"), None)
            .await
            .problem(StatusCode::NOT_FOUND);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn drafts_go_with_their_organizer_but_published_events_stay(db: PgPool) {
    let app = TestApp::new(db).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    // A draft nobody else saw goes with the account.
    let bea = app.organizer("bea@example.com").await;
    create(&app, &bea, &salsa_night()).await;
    let deleted = app
        .call(Method::DELETE, "/api/v1/users/me")
        .bearer(&bea.access_token)
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert_eq!(count().await, 0);

    // A published event keeps its organizer's account.
    let ana = app.organizer("ana@example.com").await;
    create(&app, &ana, &salsa_night()).await;
    sqlx::query("UPDATE events SET status = 'published', published_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let refused = app
        .call(Method::DELETE, "/api/v1/users/me")
        .bearer(&ana.access_token)
        .send()
        .await
        .problem(StatusCode::CONFLICT);
    assert!(
        refused["detail"].as_str().unwrap().contains("events"),
        "{refused}"
    );
    assert_eq!(app.me(&ana.access_token).await.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_catalogue_lists_published_events_to_come(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let cleo = app.organizer("cleo@example.com").await;
    let event = |title: &str, category: &str, city: &str, starts: &str, ends: &str| {
        let mut body = salsa_night();
        body["title"] = json!(title);
        body["category"] = json!(category);
        body["venue"]["city"] = json!(city);
        body["starts_at"] = json!(starts);
        body["ends_at"] = json!(ends);
        body
    };
    let made = [
        (
            &ana,
            event(
                "Salsa Night",
                "salsa",
                "Madrid",
                "2030-03-06T20:00:00Z",
                "2030-03-07T02:00:00Z",
            ),
        ),
        (
            &ana,
            event(
                "Bachata Sunday",
                "bachata",
                "Madrid",
                "2030-03-01T18:00:00Z",
                "2030-03-01T23:00:00Z",
            ),
        ),
        (
            &cleo,
            event(
                "Tango Milonga",
                "tango",
                "Buenos Aires",
                "2030-04-01T21:00:00Z",
                "2030-04-02T01:00:00Z",
            ),
        ),
        (
            &cleo,
            event(
                "West Coast Weekend",
                "west-coast-swing",
                "madrid",
                "2030-05-01T10:00:00Z",
                "2030-05-03T18:00:00Z",
            ),
        ),
        (
            &ana,
            event(
                "Draft Salsa",
                "salsa",
                "Madrid",
                "2030-03-02T20:00:00Z",
                "2030-03-02T23:00:00Z",
            ),
        ),
        (
            &ana,
            event(
                "Past Salsa",
                "salsa",
                "Madrid",
                "2030-01-01T20:00:00Z",
                "2030-01-01T23:00:00Z",
            ),
        ),
        (
            &cleo,
            event(
                "Cancelled Salsa",
                "salsa",
                "Madrid",
                "2030-03-03T20:00:00Z",
                "2030-03-03T23:00:00Z",
            ),
        ),
    ];
    for (who, body) in &made {
        assert_eq!(create(&app, who, body).await.status, StatusCode::CREATED);
    }
    // Publishing comes with ticket types; here the rows are set as publishing leaves them.
    sqlx::raw_sql(
        "UPDATE events SET status = 'published' WHERE title NOT IN ('Draft Salsa', 'Cancelled Salsa');
         UPDATE events SET status = 'cancelled' WHERE title = 'Cancelled Salsa';
         UPDATE events SET starts_at = now() - interval '3 hours', ends_at = now() - interval '1 hour'
           WHERE title = 'Past Salsa';",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let titles = |query: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/events{query}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
            r.json::<Value>()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["title"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // Published, not ended, soonest first; drafts, cancelled and past events are not there.
    assert_eq!(
        titles("").await,
        [
            "Bachata Sunday",
            "Salsa Night",
            "Tango Milonga",
            "West Coast Weekend"
        ]
    );
    assert_eq!(titles("?q=salsa").await, ["Salsa Night"]);
    assert_eq!(
        titles("?q=%22west%20coast%22").await,
        ["West Coast Weekend"]
    );
    assert_eq!(
        titles("?q=salsa%20OR%20tango").await,
        ["Salsa Night", "Tango Milonga"]
    );
    assert_eq!(
        titles("?city=MADRID").await,
        ["Bachata Sunday", "Salsa Night", "West Coast Weekend"]
    );
    assert_eq!(titles("?category=Tango").await, ["Tango Milonga"]);
    assert_eq!(
        titles("?from=2030-03-05T00:00:00Z&to=2030-04-30T00:00:00Z").await,
        ["Salsa Night", "Tango Milonga"]
    );
    let cleo_id = app.id_of(&cleo.access_token).await;
    let by_cleo = app
        .get(&format!("/api/v1/events?organizer={cleo_id}"), None)
        .await
        .json::<Value>();
    assert_eq!(by_cleo["items"].as_array().unwrap().len(), 2);
    assert_eq!(titles("?q=nothing-like-this").await, Vec::<String>::new());

    // Pages of one, walked by cursor, neither repeat nor skip.
    let mut seen = Vec::new();
    let mut url = "/api/v1/events?limit=1".to_owned();
    loop {
        let page: Value = app.get(&url, None).await.json();
        seen.push(page["items"][0]["title"].as_str().unwrap().to_owned());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/api/v1/events?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, titles("").await);

    // Cacheable: a public Cache-Control and an ETag of the content (304 when current).
    let listed = app.get("/api/v1/events", None).await;
    assert_eq!(listed.header("cache-control"), Some("public, max-age=30"));
    assert_eq!(listed.header("content-type"), Some("application/json"));
    let etag = listed.header("etag").unwrap().to_owned();
    let again = app
        .call(Method::GET, "/api/v1/events")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    sqlx::query("UPDATE events SET title = 'Salsa Night!' WHERE title = 'Salsa Night'")
        .execute(&app.db)
        .await
        .unwrap();
    let changed = app
        .call(Method::GET, "/api/v1/events")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(
        changed.status,
        StatusCode::OK,
        "a changed listing has a new tag"
    );
    assert_ne!(changed.header("etag"), Some(etag.as_str()));

    // Parameters that do not parse are named; an edited cursor is a 400.
    for (query, field) in [
        ("?from=yesterday", "from"),
        ("?to=2030-13-01T00:00:00Z", "to"),
        ("?organizer=ana", "organizer"),
        ("?limit=0", "limit"),
    ] {
        let problem = app
            .get(&format!("/api/v1/events{query}"), None)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        let detail = problem["detail"].as_str().unwrap_or_default();
        let named = problem["errors"][0]["field"] == field || detail.contains(field);
        assert!(named, "{query}: {problem}");
    }
    app.get("/api/v1/events?cursor=bm90LWEtY3Vyc29y", None)
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrations = "../migrations")]
async fn ticket_types_then_publishing_puts_an_event_on_sale(db: PgPool) {
    let app = TestApp::new(db).await;
    let ana = app.organizer("ana@example.com").await;
    let event: Value = create(&app, &ana, &salsa_night()).await.json();
    let id = event["id"].as_str().unwrap();
    let add = |body: Value| {
        let path = format!("/api/v1/events/{id}/ticket-types");
        let app = &app;
        let token = ana.access_token.clone();
        async move { app.post(&path, &body, Some(&token)).await }
    };
    let publish = |token: String| {
        let path = format!("/api/v1/events/{id}/publish");
        let app = &app;
        async move { app.post(&path, &json!({}), Some(&token)).await }
    };

    // Nothing to sell yet: not publishable.
    let refused = publish(ana.access_token.clone())
        .await
        .problem(StatusCode::CONFLICT);
    assert!(
        refused["detail"].as_str().unwrap().contains("ticket type"),
        "{refused}"
    );

    let full =
        add(json!({"name": "Full pass", "price_minor": 2500, "currency": "eur", "quantity": 100}))
            .await;
    assert_eq!(full.status, StatusCode::CREATED, "{}", full.text());
    let full: Value = full.json();
    assert_eq!(
        (full["currency"].as_str(), full["remaining"].as_i64()),
        (Some("EUR"), Some(100))
    );
    assert_eq!(full["sales_state"], "on_sale");
    assert_eq!(
        (
            full["min_per_order"].as_i64(),
            full["max_per_order"].as_i64()
        ),
        (Some(1), Some(10))
    );
    let later = add(
        json!({"name": "Late bird", "price_minor": 3000, "currency": "EUR", "quantity": 50,
                          "sales_start": "2027-03-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(later.json::<Value>()["sales_state"], "upcoming");
    let crew = add(
        json!({"name": "Crew", "price_minor": 0, "currency": "EUR", "quantity": 5, "hidden": true}),
    )
    .await;
    assert_eq!(crew.status, StatusCode::CREATED);

    // One currency per event; bad fields named; nothing added.
    let other =
        add(json!({"name": "Dollars", "price_minor": 100, "currency": "USD", "quantity": 1}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other["errors"][0]["code"], "currency_mismatch", "{other}");
    let bad = add(json!({"name": " ", "price_minor": -1, "currency": "EURO", "quantity": -5,
                        "min_per_order": 5, "max_per_order": 2,
                        "sales_start": "2027-02-01T00:00:00Z", "sales_end": "2027-01-01T00:00:00Z"}))
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "price_minor",
            "currency",
            "quantity",
            "sales_end",
            "max_per_order"
        ]
    );
    // Another organizer cannot add to it.
    let cleo = app.organizer("cleo@example.com").await;
    app.post(
        &format!("/api/v1/events/{id}/ticket-types"),
        &json!({"name": "Mine", "price_minor": 1, "currency": "EUR", "quantity": 1}),
        Some(&cleo.access_token),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    publish(cleo.access_token.clone())
        .await
        .problem(StatusCode::NOT_FOUND);

    // Published: in the catalogue, and its public page lists what is on sale (not the
    // hidden crew tickets, which its organizer still sees).
    let published = publish(ana.access_token.clone()).await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text());
    assert_eq!(published.json::<Value>()["status"], "published");
    assert_eq!(
        publish(ana.access_token.clone()).await.status,
        StatusCode::OK,
        "again: harmless"
    );
    let page: Value = app
        .get("/api/v1/events/salsa-night-madrid", None)
        .await
        .json();
    let names: Vec<&str> = page["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Full pass", "Late bird"]);
    assert_eq!(page["title"], "Salsa Night: Madrid");
    let own: Value = app
        .get("/api/v1/events/salsa-night-madrid", Some(&ana.access_token))
        .await
        .json();
    assert_eq!(own["ticket_types"].as_array().unwrap().len(), 3);
    let listed: Value = app.get("/api/v1/events", None).await.json();
    assert_eq!(listed["items"][0]["id"], event["id"]);

    // An event that has started cannot be published.
    let mut past = salsa_night();
    past["title"] = json!("Yesterday");
    past["starts_at"] = json!("2020-01-01T20:00:00Z");
    past["ends_at"] = json!("2020-01-01T23:00:00Z");
    let past: Value = create(&app, &ana, &past).await.json();
    let past_id = past["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/events/{past_id}/ticket-types"),
        &json!({"name": "Pass", "price_minor": 0, "currency": "EUR", "quantity": 1}),
        Some(&ana.access_token),
    )
    .await;
    app.post(
        &format!("/api/v1/events/{past_id}/publish"),
        &json!({}),
        Some(&ana.access_token),
    )
    .await
    .problem(StatusCode::CONFLICT);
}
