//! The transaction-mode pooler the storm test runs behind is itself checked here: a
//! pooler that silently pinned each client to one server would make that test prove
//! nothing.

use api_tests::pooler::Pooler;
use sqlx::{Connection, PgPool};

async fn backend(conn: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_client_holds_a_server_for_one_transaction_and_its_statements_follow_it(db: PgPool) {
    let pooler = Pooler::in_front_of(&db, 3).await.unwrap();
    let clients = pooler.client_pool(&db, 1);
    let mut conn = clients.acquire().await.unwrap();

    // Outside a transaction, one client's statements run on several servers, and its
    // prepared statement is prepared again wherever it lands.
    let mut servers = std::collections::HashSet::new();
    for _ in 0..20 {
        servers.insert(backend(&mut conn).await);
    }
    assert!(servers.len() > 1, "one client stayed on one server");
    assert!(pooler.stats().reprepared > 0, "{:?}", pooler.stats());

    // Inside one, every statement runs on the same server.
    let mut tx = conn.begin().await.unwrap();
    let first = backend(&mut tx).await;
    for _ in 0..10 {
        assert_eq!(backend(&mut tx).await, first);
    }
    tx.commit().await.unwrap();

    // An error ends its request, and the connection goes on (the pooler skipped what
    // the server skipped).
    let failed: Result<i32, _> = sqlx::query_scalar("SELECT 1 / $1")
        .bind(0)
        .fetch_one(&mut *conn)
        .await;
    assert!(failed.is_err());
    let parsed: Result<i32, _> = sqlx::query_scalar("SELECT no_such_column")
        .fetch_one(&mut *conn)
        .await;
    assert!(parsed.is_err());
    let answer: i32 = sqlx::query_scalar("SELECT 1 + $1")
        .bind(41)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(answer, 42);

    // Session state does not follow a client: a session setting stays on the server
    // it was made on.
    let mut seen = std::collections::HashSet::new();
    sqlx::query("SET application_name = 'mine'")
        .execute(&mut *conn)
        .await
        .unwrap();
    for _ in 0..10 {
        let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        seen.insert(name);
    }
    assert!(seen.len() > 1, "{seen:?}");
}
