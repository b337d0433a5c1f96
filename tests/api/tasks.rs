//! The tasks API: CRUD, validation, isolation, ETags, filters, sorting, pagination.

use std::collections::{BTreeSet, HashSet};

use api_tests::{Function, Response, TestApp};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

struct Client<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Client<'a> {
    async fn new(app: &'a TestApp, email: &str) -> Self {
        Self {
            app,
            token: app.user(email).await.access_token,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut call = self.app.call(method, path).bearer(&self.token);
        for (name, value) in headers {
            call = call.header(name, value);
        }
        if let Some(body) = body {
            call = call.json(body);
        }
        call.send().await
    }

    async fn create(&self, body: Value) -> Value {
        let r = self
            .call(Method::POST, "/api/v1/tasks", &[], Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()
    }

    async fn get(&self, id: &str) -> Response {
        self.call(Method::GET, &format!("/api/v1/tasks/{id}"), &[], None)
            .await
    }

    async fn patch(&self, id: &str, body: Value, if_match: Option<&str>) -> Response {
        let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
        self.call(
            Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            &headers,
            Some(&body),
        )
        .await
    }

    async fn delete(&self, id: &str, if_match: Option<&str>) -> Response {
        let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
        self.call(
            Method::DELETE,
            &format!("/api/v1/tasks/{id}"),
            &headers,
            None,
        )
        .await
    }

    async fn list(&self, query: &str) -> Response {
        self.call(Method::GET, &format!("/api/v1/tasks{query}"), &[], None)
            .await
    }

    async fn titles(&self, query: &str) -> Vec<String> {
        let r = self.list(query).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
        r.json::<Value>()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn id(task: &Value) -> String {
    task["id"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn create_read_update_delete(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = Client::new(&app, "ada@example.com").await;

    let r = ada
        .call(
            Method::POST,
            "/api/v1/tasks",
            &[],
            Some(&json!({"title": "  Write report ", "tags": ["work", "work", " q3 "], "due_at": "2026-12-01T17:00:00+01:00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let task: Value = r.json();
    let task_id = id(&task);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/tasks/{task_id}").as_str())
    );
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(task["title"], "Write report");
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "medium");
    assert_eq!(task["tags"], json!(["work", "q3"]));
    assert_eq!(task["description"], Value::Null);
    assert_eq!(task["due_at"], "2026-12-01T16:00:00Z");

    let fetched = ada.get(&task_id).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.header("etag"), Some("\"1\""));
    assert_eq!(fetched.json::<Value>(), task);

    // Merge patch: absent fields kept, null clears optional ones.
    let patched = ada
        .patch(
            &task_id,
            json!({"status": "in_progress", "due_at": null, "description": "Q3 numbers"}),
            None,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert_eq!(patched.header("etag"), Some("\"2\""));
    let after: Value = patched.json();
    assert_eq!(after["status"], "in_progress");
    assert_eq!(after["due_at"], Value::Null);
    assert_eq!(after["description"], "Q3 numbers");
    assert_eq!(after["title"], "Write report");
    assert_eq!(after["tags"], json!(["work", "q3"]));

    let deleted = ada.delete(&task_id, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    ada.get(&task_id).await.problem(StatusCode::NOT_FOUND);
    ada.delete(&task_id, None)
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_invalid_field_is_a_422(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = Client::new(&app, "ada@example.com").await;
    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (
            json!({"title": "t", "description": "x".repeat(10_001)}),
            "description",
        ),
        (
            json!({"title": "t", "tags": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "tags",
        ),
        (json!({"title": "t", "tags": [""]}), "tags/0"),
        (
            json!({"title": "t", "tags": ["ok", "x".repeat(33)]}),
            "tags/1",
        ),
    ];
    for (body, field) in cases {
        let r = ada
            .call(Method::POST, "/api/v1/tasks", &[], Some(&body))
            .await;
        let problem = r.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // Wrong types, unknown values and unknown fields are 422 too.
    for body in [
        json!({}),
        json!({"title": 5}),
        json!({"title": "t", "status": "later"}),
        json!({"title": "t", "priority": "urgent"}),
        json!({"title": "t", "due_at": "tomorrow"}),
        json!({"title": "t", "tags": "work"}),
        json!({"title": "t", "owner_id": "00000000-0000-0000-0000-000000000000"}),
    ] {
        ada.call(Method::POST, "/api/v1/tasks", &[], Some(&body))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let task = ada.create(json!({"title": "t"})).await;
    for body in [
        json!({"title": null}),
        json!({"status": null}),
        json!({"priority": null}),
        json!({"title": ""}),
        json!({"id": "x"}),
    ] {
        ada.patch(&id(&task), body, None)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Malformed JSON is a 400.
    let r = app
        .request(
            Function::Tasks,
            Method::POST,
            "/api/v1/tasks",
            &[
                ("authorization", &format!("Bearer {}", ada.token)),
                ("content-type", "application/json"),
            ],
            Some("{\"title\":"),
        )
        .await;
    r.problem(StatusCode::BAD_REQUEST);
    // Nothing was written by any refused request.
    assert_eq!(ada.titles("").await, ["t"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn other_users_tasks_are_404_for_every_verb(db: PgPool) {
    let app = TestApp::new(db).await;
    let alice = Client::new(&app, "alice@example.com").await;
    let bob = Client::new(&app, "bob@example.com").await;
    let task = alice.create(json!({"title": "Alice's secret"})).await;
    let task_id = id(&task);

    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = bob.get(&unknown).await.problem(StatusCode::NOT_FOUND);
    let foreign = bob.get(&task_id).await.problem(StatusCode::NOT_FOUND);
    assert_eq!(
        foreign["detail"], missing["detail"],
        "someone else's task looks missing"
    );
    bob.patch(&task_id, json!({"title": "pwned"}), None)
        .await
        .problem(StatusCode::NOT_FOUND);
    bob.patch(&task_id, json!({"title": "pwned"}), Some("*"))
        .await
        .problem(StatusCode::NOT_FOUND);
    bob.delete(&task_id, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(bob.titles("").await.is_empty());
    assert!(bob.titles("?q=secret").await.is_empty());

    let still = alice.get(&task_id).await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.json::<Value>()["title"], "Alice's secret");
    assert_eq!(still.json::<Value>()["version"], 1);

    // Without a token: 401 everywhere.
    for (method, path) in [
        (Method::GET, "/api/v1/tasks".to_owned()),
        (Method::POST, "/api/v1/tasks".to_owned()),
        (Method::GET, format!("/api/v1/tasks/{task_id}")),
        (Method::PATCH, format!("/api/v1/tasks/{task_id}")),
        (Method::DELETE, format!("/api/v1/tasks/{task_id}")),
    ] {
        app.request(
            Function::Tasks,
            method,
            &path,
            &[("content-type", "application/json")],
            Some("{}"),
        )
        .await
        .problem(StatusCode::UNAUTHORIZED);
    }
    // A path id that is not a UUID: 404.
    alice.get("not-a-uuid").await.problem(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn etags_guard_concurrent_changes(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = Client::new(&app, "ada@example.com").await;
    let task = ada.create(json!({"title": "v1"})).await;
    let task_id = id(&task);

    // Two clients read version 1; the first write wins, the second gets 412.
    let first = ada
        .patch(&task_id, json!({"title": "first"}), Some("\"1\""))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("etag"), Some("\"2\""));
    ada.patch(&task_id, json!({"title": "second"}), Some("\"1\""))
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(ada.get(&task_id).await.json::<Value>()["title"], "first");

    // Weak tags and garbage never match If-Match; a list with the current one does.
    for stale in ["W/\"2\"", "garbage", "\"\"", "\"3\""] {
        ada.patch(&task_id, json!({"title": "x"}), Some(stale))
            .await
            .problem(StatusCode::PRECONDITION_FAILED);
    }
    let listed = ada
        .patch(&task_id, json!({"title": "third"}), Some("\"1\", \"2\""))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let any = ada
        .patch(&task_id, json!({"priority": "high"}), Some("*"))
        .await;
    assert_eq!(any.status, StatusCode::OK);
    assert_eq!(any.header("etag"), Some("\"4\""));

    // If-None-Match on GET.
    let not_modified = ada
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{task_id}"),
            &[("if-none-match", "\"4\"")],
            None,
        )
        .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    let modified = ada
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{task_id}"),
            &[("if-none-match", "\"3\"")],
            None,
        )
        .await;
    assert_eq!(modified.status, StatusCode::OK);

    // Delete with a stale tag is refused; with the current one it works.
    ada.delete(&task_id, Some("\"3\""))
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        ada.delete(&task_id, Some("\"4\"")).await.status,
        StatusCode::NO_CONTENT
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn filters_combine(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = Client::new(&app, "ada@example.com").await;
    let past = "2020-01-01T00:00:00Z";
    let future = "2099-01-01T00:00:00Z";
    for (title, status, priority, due, tags, description) in [
        (
            "alpha report",
            "todo",
            "high",
            Some(past),
            vec!["work"],
            "quarterly numbers",
        ),
        (
            "beta groceries",
            "done",
            "low",
            Some(past),
            vec!["home"],
            "milk and eggs",
        ),
        (
            "gamma report",
            "in_progress",
            "medium",
            Some(future),
            vec!["work", "q3"],
            "draft",
        ),
        ("delta call", "todo", "high", None, vec![], "call the bank"),
        (
            "epsilon report",
            "todo",
            "low",
            Some(future),
            vec!["work"],
            "numbers again",
        ),
    ] {
        ada.create(json!({"title": title, "status": status, "priority": priority, "due_at": due, "tags": tags, "description": description}))
            .await;
    }
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();

    assert_eq!(
        set(ada.titles("?status=todo").await),
        names(&["alpha report", "delta call", "epsilon report"])
    );
    assert_eq!(set(ada.titles("?status=todo,done").await).len(), 4);
    assert_eq!(
        set(ada.titles("?status=todo&priority=high").await),
        names(&["alpha report", "delta call"])
    );
    assert_eq!(
        set(ada.titles("?tag=work&priority=low,medium").await),
        names(&["gamma report", "epsilon report"])
    );
    assert_eq!(
        set(ada.titles("?overdue=true").await),
        names(&["alpha report"])
    );
    assert_eq!(set(ada.titles("?overdue=false").await).len(), 4);
    assert_eq!(
        set(ada.titles("?due_before=2030-01-01T00:00:00Z").await),
        names(&["alpha report", "beta groceries"])
    );
    assert_eq!(
        set(ada.titles("?due_after=2030-01-01T00:00:00Z&tag=q3").await),
        names(&["gamma report"])
    );
    assert_eq!(
        set(ada.titles("?q=report").await),
        names(&["alpha report", "gamma report", "epsilon report"])
    );
    assert_eq!(
        set(ada.titles("?q=numbers&status=todo&tag=work").await),
        names(&["alpha report", "epsilon report"])
    );
    assert_eq!(
        set(ada.titles("?q=numbers%20-quarterly").await),
        names(&["epsilon report"])
    );
    assert!(ada.titles("?tag=nope").await.is_empty());

    // Sorting.
    assert_eq!(
        ada.titles("?sort=title").await,
        [
            "alpha report",
            "beta groceries",
            "delta call",
            "epsilon report",
            "gamma report"
        ]
    );
    let by_priority = ada.titles("?sort=-priority").await;
    assert_eq!(
        set(by_priority[..2].to_vec()),
        names(&["alpha report", "delta call"])
    );
    assert_eq!(
        set(by_priority[3..].to_vec()),
        names(&["beta groceries", "epsilon report"])
    );
    let by_due = ada.titles("?sort=due_at").await;
    assert_eq!(
        by_due.last().map(String::as_str),
        Some("delta call"),
        "no due date sorts last ascending"
    );
    assert_eq!(
        ada.titles("?sort=-due_at")
            .await
            .first()
            .map(String::as_str),
        Some("delta call")
    );
    assert_eq!(
        ada.titles("").await.first().map(String::as_str),
        Some("epsilon report"),
        "newest first by default"
    );

    // Bad parameters are 422 with the field named.
    for (query, field) in [
        ("?status=later", "status"),
        ("?priority=urgent", "priority"),
        ("?due_before=yesterday", "due_before"),
        ("?overdue=maybe", "overdue"),
        ("?sort=owner_id", "sort"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
    ] {
        let problem = ada
            .list(query)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn input_that_looks_like_sql_is_inert(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = Client::new(&app, "ada@example.com").await;
    let bob = Client::new(&app, "bob@example.com").await;
    bob.create(json!({"title": "bob's"})).await;
    let evil = "'; DROP TABLE tasks; --";
    let task = ada
        .create(json!({"title": evil, "tags": ["' OR '1'='1"], "description": "\") OR 1=1 --"}))
        .await;
    assert_eq!(task["title"], evil);
    // Searches are searches (only ada's own task can match); a sort is one of the
    // known keys or refused.
    for query in [
        "?q=%27%20OR%201%3D1%20--",
        "?tag=%27%20OR%20%271%27%3D%271",
        "?q=%27%3B%20DROP%20TABLE%20tasks%3B%20--",
    ] {
        let r = ada.list(query).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
        for item in r.json::<Value>()["items"].as_array().unwrap() {
            assert_eq!(item["id"], task["id"], "only ada's own task can match");
        }
    }
    let problem = ada
        .list("?sort=title%3B%20DROP%20TABLE%20tasks")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "sort", "{problem}");
    assert_eq!(ada.titles("?tag=%27%20OR%20%271%27%3D%271").await, [evil]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 2, "the table is intact");
}

#[sqlx::test(migrations = "../migrations")]
async fn edited_or_foreign_cursors_are_400(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = Client::new(&app, "ada@example.com").await;
    for i in 0..3 {
        ada.create(json!({"title": format!("t{i}")})).await;
    }
    let page: Value = ada.list("?limit=1&sort=title").await.json();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        ada.list(&format!("?limit=1&sort=title&cursor={cursor}"))
            .await
            .status,
        StatusCode::OK
    );

    // Edit one character of the payload.
    let (payload, signature) = cursor.split_once('.').unwrap();
    let mut chars: Vec<char> = payload.chars().collect();
    chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
    let edited = format!("{}.{signature}", chars.into_iter().collect::<String>());
    for bad in [edited.as_str(), "garbage", "e30.e30", payload] {
        ada.list(&format!("?limit=1&sort=title&cursor={bad}"))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    // A valid cursor used with another sort or another filter.
    ada.list(&format!("?limit=1&sort=-title&cursor={cursor}"))
        .await
        .problem(StatusCode::BAD_REQUEST);
    ada.list(&format!("?limit=1&sort=title&status=done&cursor={cursor}"))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

/// Walks every page of `query`, inserting and deleting tasks between pages.
async fn walk_with_churn(ada: &Client<'_>, query: &str, churn: &mut Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let page = ada.list(&q).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page: Value = page.json();
        seen.extend(page["items"].as_array().unwrap().iter().map(id));
        // Meanwhile, others change the list: new tasks that sort anywhere...
        for j in 0..2 {
            let prefix = ["a", "m", "z"][(round + j) % 3];
            let priority = ["low", "high"][j % 2];
            let due = if j == 0 {
                Value::Null
            } else {
                json!("2030-06-01T00:00:00Z")
            };
            let t = ada
                .create(json!({"title": format!("{prefix} churn {round}-{j}"), "priority": priority, "due_at": due}))
                .await;
            churn.push(id(&t));
        }
        // ...and deletions of tasks that were themselves added during the walk.
        if let Some(victim) = churn.first().cloned() {
            assert_eq!(
                ada.delete(&victim, None).await.status,
                StatusCode::NO_CONTENT
            );
            churn.remove(0);
        }
        round += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen
}

#[sqlx::test(migrations = "../migrations")]
async fn page_walks_under_concurrent_changes_neither_repeat_nor_skip(db: PgPool) {
    // Hundreds of writes in seconds by one user: far over the deployed per-user budget
    // (brute_force.rs tests that one), which is not what this test is about.
    let app = TestApp::new(db)
        .await
        .with_write_limit(shared::identity::throttle::Limit::per(10_000, 60));
    let ada = Client::new(&app, "ada@example.com").await;
    let mut stable = HashSet::new();
    for i in 0..23 {
        let priority = ["low", "medium", "high"][i % 3];
        let due = if i % 4 == 0 {
            Value::Null
        } else {
            json!(format!("2030-01-{:02}T00:00:00Z", 1 + i % 5))
        };
        let t = ada
            .create(
                json!({"title": format!("task {:02}", i % 7), "priority": priority, "due_at": due}),
            )
            .await;
        stable.insert(id(&t));
    }
    for sort in [
        "created_at",
        "-created_at",
        "title",
        "-title",
        "priority",
        "-priority",
        "due_at",
        "-due_at",
    ] {
        let mut churn = Vec::new();
        let seen = walk_with_churn(&ada, &format!("?limit=4&sort={sort}"), &mut churn).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: an item was served twice");
        let missing: Vec<_> = stable.iter().filter(|t| !unique.contains(t)).collect();
        assert!(missing.is_empty(), "{sort}: skipped {missing:?}");
        // Leave the list as it was for the next sort.
        for t in churn {
            ada.delete(&t, None).await;
        }
    }
}
