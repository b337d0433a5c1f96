//! The list query's plans on 100,000 tasks spread over 1,000 users: every main path is
//! served by an index, none by a sequential scan of `tasks`. Plans are printed (run with
//! `--nocapture` to read them); only their shape is asserted, never their timing.

use shared::identity::UserId;
use sqlx::{PgPool, Row};
use tasks::listing::{After, ListParams, SortKey, list_query};

async fn seed(db: &PgPool) -> UserId {
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash)
         SELECT gen_random_uuid(), 'user' || n || '@example.com', 'User ' || n, 'x'
         FROM generate_series(1, 1000) AS n",
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tasks (id, owner_id, title, description, status, priority, due_at, tags, created_at)
         SELECT gen_random_uuid(), u.id,
                'task ' || n || ' ' || (ARRAY['report','groceries','call','invoice','review'])[1 + n % 5],
                CASE WHEN n % 3 = 0 THEN 'details about item ' || n END,
                (ARRAY['todo','in_progress','done']::task_status[])[1 + n % 3],
                (ARRAY['low','medium','high']::task_priority[])[1 + (n / 3) % 3],
                CASE WHEN n % 4 = 0 THEN NULL ELSE now() + (n % 200 - 100) * interval '1 day' END,
                CASE WHEN n % 2 = 0 THEN ARRAY['work'] ELSE ARRAY['home', 'tag' || (n % 10)] END,
                now() - n * interval '1 minute'
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS r FROM users) u,
              generate_series(1, 100) AS n",
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query("ANALYZE users").execute(db).await.unwrap();
    sqlx::query("ANALYZE tasks").execute(db).await.unwrap();
    let owner: uuid::Uuid = sqlx::query_scalar("SELECT owner_id FROM tasks LIMIT 1")
        .fetch_one(db)
        .await
        .unwrap();
    UserId(owner)
}

fn params(query: &str) -> ListParams {
    let map: serde_json::Map<String, serde_json::Value> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map)).unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn list_queries_use_indexes_on_100k_tasks(db: PgPool) {
    let owner = seed(&db).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 100_000);

    let later = time::OffsetDateTime::now_utc();
    let mid = uuid::Uuid::max();
    let scenarios: Vec<(&str, Option<After>)> = vec![
        ("sort=-created_at", None),
        (
            "sort=-created_at",
            Some(After {
                s: String::new(),
                f: String::new(),
                k: SortKey::CreatedAt(later),
                id: mid,
            }),
        ),
        ("sort=title", None),
        (
            "sort=title",
            Some(After {
                s: String::new(),
                f: String::new(),
                k: SortKey::Title("task 5".into()),
                id: mid,
            }),
        ),
        ("sort=priority", None),
        ("sort=-priority", None),
        ("sort=due_at", None),
        (
            "sort=due_at",
            Some(After {
                s: String::new(),
                f: String::new(),
                k: SortKey::DueAt(None),
                id: uuid::Uuid::nil(),
            }),
        ),
        ("sort=-due_at", None),
        ("status=todo,in_progress&sort=due_at", None),
        ("priority=high&sort=-created_at", None),
        ("tag=work", None),
        ("q=report", None),
        ("overdue=true&sort=due_at", None),
        (
            "due_after=2020-01-01T00:00:00Z&due_before=2100-01-01T00:00:00Z&sort=due_at",
            None,
        ),
    ];
    for (query, after) in scenarios {
        let request = params(query).parse().unwrap();
        let mut builder = list_query(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ",
            owner,
            &request,
            after.as_ref(),
        );
        let lines: Vec<String> = builder
            .build()
            .fetch_all(&db)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        let plan = lines.join("\n");
        println!(
            "-- GET /api/v1/tasks?{query}{}\n{plan}\n",
            if after.is_some() { " (next page)" } else { "" }
        );
        assert!(
            !plan.contains("Seq Scan on tasks"),
            "{query}: sequential scan\n{plan}"
        );
        assert!(plan.contains("Index"), "{query}: no index used\n{plan}");
    }
}
