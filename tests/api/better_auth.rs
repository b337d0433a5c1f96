//! Better Auth tokens: EdDSA JWTs checked against a JWKS served on loopback, the way
//! Better Auth's JWT plugin publishes it, and the local users they link or provision.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use api_tests::{PASSWORD, TestApp};
use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::future::join_all;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use serde_json::{Value, json};
use shared::identity::better_auth::BetterAuthConfig;
use sqlx::PgPool;

/// An Ed25519 key as Better Auth makes one.
struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    x: String,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.into(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": "EdDSA"})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }
}

/// A stand-in Better Auth: serves `/api/auth/jwks` (or 503 while `down`) and counts
/// the fetches.
struct Provider {
    base: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Provider {
    async fn start(keys: Vec<Value>) -> Self {
        type Shared = (Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>, Arc<AtomicBool>);
        async fn jwks(
            State((keys, fetches, down)): State<Shared>,
        ) -> Result<Json<Value>, StatusCode> {
            fetches.fetch_add(1, Ordering::SeqCst);
            if down.load(Ordering::SeqCst) {
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            }
            Ok(Json(json!({ "keys": *keys.lock().unwrap() })))
        }
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let app = Router::new()
            .route("/api/auth/jwks", get(jwks))
            .with_state((keys.clone(), fetches.clone(), down.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            keys,
            fetches,
            down,
        }
    }

    fn config(&self) -> BetterAuthConfig {
        BetterAuthConfig {
            jwks_url: format!("{}/api/auth/jwks", self.base),
            issuer: self.base.clone(),
            audience: self.base.clone(),
            refetch_interval: std::time::Duration::from_secs(30),
            max_key_age: std::time::Duration::from_secs(600),
            max_stale: std::time::Duration::from_secs(3600),
        }
    }

    /// Claims like Better Auth's default payload (the user object), valid for 15 minutes.
    fn claims(&self, sub: &str, email: &str) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "sub": sub, "id": sub, "email": email, "name": "Grace Hopper",
            "emailVerified": true, "iss": self.base, "aud": self.base,
            "iat": now, "exp": now + 900,
        })
    }
}

async fn count(db: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_valid_token_provisions_one_local_user_who_can_use_every_endpoint(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let provider = Provider::start(vec![key.jwk()]).await;
    let app = TestApp::with_better_auth(db, provider.config()).await;
    let token = key.sign(&provider.claims("ba-user-1", "grace@example.com"));

    let me = app.me(&token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let me: Value = me.json();
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str()),
        (Some("grace@example.com"), Some("user"))
    );
    assert_eq!(me["name"], "Grace Hopper");
    assert_eq!(me["email_verified"], true);

    let task = app
        .post(
            "/api/v1/tasks",
            &json!({"title": "from Better Auth"}),
            Some(&token),
        )
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.text());
    let tasks: Value = app.get("/api/v1/tasks", Some(&token)).await.json();
    assert_eq!(tasks["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.me(&token).await.json::<Value>()["id"], me["id"]);
    assert_eq!(count(&app.db, "users").await, 1);
    // Each function (execution environment) fetches once and caches: auth and tasks.
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        2,
        "keys are cached"
    );

    // The role is ours: an admin promotion applies to the Better Auth user at once.
    sqlx::query("UPDATE users SET role = 'admin'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/v1/users", Some(&token)).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn hostile_tokens_are_refused_and_provision_nobody(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let provider = Provider::start(vec![key.jwk()]).await;
    let app = TestApp::with_better_auth(db, provider.config()).await;
    let claims = provider.claims("ba-user-1", "grace@example.com");

    // A key outside the JWKS, under the JWKS key's kid and under its own.
    let outsider = SigningKey::generate("key-1");
    let stranger = SigningKey::generate("key-9");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        key.sign(&c)
    };
    // HS256 "signed" with the public key as the secret: the classic confusion attack.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("key-1".into());
    let confused =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(key.x.as_bytes())).unwrap();
    let public_bytes = URL_SAFE_NO_PAD.decode(&key.x).unwrap();
    let confused_raw =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&public_bytes)).unwrap();
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"key-1"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{body}.")
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let hostile = [
        ("key outside the JWKS", outsider.sign(&claims)),
        ("unknown kid", stranger.sign(&claims)),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("https://other.example.com")),
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://other.example.com")),
        ),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now - 3600);
                c["exp"] = json!(now - 1800);
            }),
        ),
        (
            "no subject",
            with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        (
            "oversized subject",
            with(&|c| c["sub"] = json!("s".repeat(256))),
        ),
        ("HS256 with the public key (text)", confused),
        ("HS256 with the public key (bytes)", confused_raw),
        ("alg none", unsigned),
        ("tampered payload", {
            let good = key.sign(&claims);
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string().replace("ba-user-1", "ba-admin"));
            parts.join(".")
        }),
    ];
    for (what, token) in &hostile {
        app.me(token).await.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(
            count(&app.db, "users").await,
            0,
            "{what} provisioned a user"
        );
    }
    // The control: the same claims, properly signed, are accepted.
    assert_eq!(app.me(&key.sign(&claims)).await.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_first_requests_provision_exactly_one_user(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let provider = Provider::start(vec![key.jwk()]).await;
    let app = TestApp::with_better_auth(db, provider.config()).await;
    let token = key.sign(&provider.claims("ba-user-1", "grace@example.com"));
    let answers = join_all((0..12).map(|_| app.me(&token))).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            r.json::<Value>()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(count(&app.db, "users").await, 1);
    assert_eq!(count(&app.db, "external_identities").await, 1);
    assert!(
        provider.fetches.load(Ordering::SeqCst) <= 1,
        "one fetch for the burst"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_new_provider_key_is_fetched_once_and_garbage_kids_cannot_force_refetches(db: PgPool) {
    // No wall-clock timing: one app whose refetch interval nothing here outlasts, one
    // whose interval has always passed.
    let first = SigningKey::generate("key-1");
    let provider = Provider::start(vec![first.jwk()]).await;
    let fetches = || provider.fetches.load(Ordering::SeqCst);
    let with_interval = |db: PgPool, secs: u64| {
        TestApp::with_better_auth(
            db,
            BetterAuthConfig {
                refetch_interval: std::time::Duration::from_secs(secs),
                ..provider.config()
            },
        )
    };
    let claims = provider.claims("ba-user-1", "grace@example.com");

    // Within the interval, tokens with kids nobody published never refetch, however many.
    let patient = with_interval(db.clone(), 3600).await;
    assert_eq!(
        patient.me(&first.sign(&claims)).await.status,
        StatusCode::OK
    );
    assert_eq!(fetches(), 1);
    let stranger = SigningKey::generate("key-unknown");
    for _ in 0..10 {
        patient
            .me(&stranger.sign(&claims))
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fetches(), 1, "garbage kids forced no refetch");

    // The provider rotates. Within the interval the new kid waits (401, no fetch)...
    let second = SigningKey::generate("key-2");
    provider.keys.lock().unwrap().push(second.jwk());
    patient
        .me(&second.sign(&claims))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(fetches(), 1);

    // ...and once a refetch is allowed, it is fetched once and then served from the
    // cache, with the old key still working while it is published.
    let eager = with_interval(db, 0).await;
    assert_eq!(eager.me(&first.sign(&claims)).await.status, StatusCode::OK);
    assert_eq!(fetches(), 2, "the second app's first fetch");
    let third = SigningKey::generate("key-3");
    provider.keys.lock().unwrap().push(third.jwk());
    assert_eq!(eager.me(&third.sign(&claims)).await.status, StatusCode::OK);
    assert_eq!(fetches(), 3, "one refetch for the new kid");
    for _ in 0..3 {
        assert_eq!(eager.me(&third.sign(&claims)).await.status, StatusCode::OK);
        assert_eq!(eager.me(&first.sign(&claims)).await.status, StatusCode::OK);
    }
    assert_eq!(fetches(), 3, "known kids come from the cache");
}

#[sqlx::test(migrations = "../migrations")]
async fn existing_accounts_link_only_when_both_sides_verified_the_email(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let provider = Provider::start(vec![key.jwk()]).await;
    let app = TestApp::with_better_auth(db, provider.config()).await;

    // Ada registered here but never verified: a Better Auth token cannot claim her.
    let ada = app.user("ada@example.com").await;
    let claim_ada = key.sign(&provider.claims("ba-ada", "ADA@example.com"));
    app.me(&claim_ada).await.problem(StatusCode::CONFLICT);

    // Once she verifies here, the same (verified) identity links to her account.
    let verify = app.emailed_token("ada@example.com", "verify-email").await;
    app.post("/api/v1/auth/verify-email", &json!({"token": verify}), None)
        .await;
    let linked: Value = app.me(&claim_ada).await.json();
    let local: Value = app.me(&ada.access_token).await.json();
    assert_eq!(linked["id"], local["id"]);
    assert_eq!(count(&app.db, "users").await, 1);

    // An identity whose provider has not verified the email neither links nor
    // provisions: it could squat or take over an address it does not own.
    app.user("bob@example.com").await;
    sqlx::query("UPDATE users SET email_verified_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    for (sub, email) in [("ba-bob", "bob@example.com"), ("ba-new", "new@example.com")] {
        let mut unverified = provider.claims(sub, email);
        unverified["emailVerified"] = json!(false);
        let refused = app
            .me(&key.sign(&unverified))
            .await
            .problem(StatusCode::FORBIDDEN);
        assert!(
            refused["detail"].as_str().unwrap().contains("verify"),
            "{refused}"
        );
    }
    assert_eq!(count(&app.db, "users").await, 2);
    // Bob's own password still works, and a password login is untouched by all this.
    assert_eq!(
        app.login("bob@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unreachable_jwks_is_a_503_not_a_500(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let config = BetterAuthConfig {
        jwks_url: "http://127.0.0.1:9/api/auth/jwks".into(),
        issuer: "http://127.0.0.1:9".into(),
        audience: "http://127.0.0.1:9".into(),
        refetch_interval: std::time::Duration::from_secs(30),
        max_key_age: std::time::Duration::from_secs(600),
        max_stale: std::time::Duration::from_secs(3600),
    };
    let app = TestApp::with_better_auth(db, config).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.sign(&json!({
        "sub": "x", "email": "x@example.com", "iss": "http://127.0.0.1:9",
        "aud": "http://127.0.0.1:9", "iat": now, "exp": now + 900,
    }));
    app.me(&token)
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    // Our own tokens are unaffected.
    let ada = app.user("ada@example.com").await;
    assert_eq!(app.me(&ada.access_token).await.status, StatusCode::OK);
}

/// Key sets a provider should never be trusted with: each holds the real key, so a
/// verifier that followed the redirect, read past the size cap or ignored the status
/// would accept the token.
#[sqlx::test(migrations = "../migrations")]
async fn a_misbehaving_jwks_endpoint_is_a_503_and_provisions_nobody(db: PgPool) {
    use axum::response::{IntoResponse, Redirect};
    let key = SigningKey::generate("key-1");
    let set = json!({ "keys": [key.jwk()] });
    let padded = {
        let mut keys = vec![key.jwk()];
        let filler = json!({"kty": "oct", "kid": "filler", "k": "x".repeat(1024)});
        keys.extend(std::iter::repeat_n(filler, 300));
        json!({ "keys": keys }).to_string()
    };
    assert!(padded.len() > shared::identity::better_auth::MAX_JWKS_BYTES);
    let (ok, failing, huge) = (set.clone(), set.clone(), padded);
    let app = Router::new()
        .route("/good", get(move || async move { Json(ok) }))
        .route(
            "/error",
            get(move || async move { (StatusCode::INTERNAL_SERVER_ERROR, Json(failing)) }),
        )
        .route("/huge", get(move || async move { huge.into_response() }))
        .route("/redirect", get(|| async { Redirect::temporary("/good") }))
        .route("/garbage", get(|| async { "{\"keys\": [" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.sign(&json!({
        "sub": "mallory", "email": "mallory@example.com", "emailVerified": true,
        "iss": base, "aud": base, "iat": now, "exp": now + 900,
    }));
    let config = |path: &str| BetterAuthConfig {
        jwks_url: format!("{base}{path}"),
        issuer: base.clone(),
        audience: base.clone(),
        refetch_interval: std::time::Duration::from_secs(30),
        max_key_age: std::time::Duration::from_secs(600),
        max_stale: std::time::Duration::from_secs(3600),
    };
    for path in ["/error", "/huge", "/redirect", "/garbage"] {
        let app = TestApp::with_better_auth(db.clone(), config(path)).await;
        let refused = app.me(&token).await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        refused.problem(StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(count(&db, "external_identities").await, 0);
    // Control: the same token and key served properly are accepted.
    let app = TestApp::with_better_auth(db.clone(), config("/good")).await;
    assert_eq!(app.me(&token).await.status, StatusCode::OK);
    assert_eq!(count(&db, "external_identities").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_deleted_user_stays_deleted(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let provider = Provider::start(vec![key.jwk()]).await;
    let app = TestApp::with_better_auth(db, provider.config()).await;
    let delete = |token: String| {
        app.call(http::Method::DELETE, "/api/v1/users/me")
            .bearer(&token)
            .send()
    };
    // A token minted ten minutes ago (still valid) is not a recent sign-in, and a
    // provisioned account has no password to offer instead: sign in at Better Auth again.
    let mut old = provider.claims("ba-user-1", "grace@example.com");
    old["iat"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() - 600);
    let old = key.sign(&old);
    assert_eq!(app.me(&old).await.status, StatusCode::OK);
    delete(old.clone()).await.problem(StatusCode::FORBIDDEN);
    app.call(http::Method::DELETE, "/api/v1/users/me")
        .bearer(&old)
        .json(&json!({"current_password": api_tests::PASSWORD}))
        .send()
        .await
        .problem(StatusCode::FORBIDDEN);
    assert_eq!(count(&app.db, "users").await, 1);

    let token = key.sign(&provider.claims("ba-user-1", "grace@example.com"));
    let deleted = delete(token.clone()).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    // The token is still valid at Better Auth, but it cannot bring the account back.
    app.me(&token).await.problem(StatusCode::FORBIDDEN);
    assert_eq!(count(&app.db, "users").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_the_provider_withdrew_stops_working(db: PgPool) {
    let first = SigningKey::generate("key-1");
    let second = SigningKey::generate("key-2");
    let provider = Provider::start(vec![first.jwk(), second.jwk()]).await;
    let app = TestApp::with_better_auth(
        db,
        BetterAuthConfig {
            max_key_age: std::time::Duration::from_millis(300),
            ..provider.config()
        },
    )
    .await;
    let claims = provider.claims("ba-user-1", "grace@example.com");
    assert_eq!(app.me(&first.sign(&claims)).await.status, StatusCode::OK);
    // The provider withdraws key-1 (say it leaked); once the cached set is older than
    // the maximum age, the next token refetches and key-1 is refused.
    provider.keys.lock().unwrap().remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    app.me(&first.sign(&claims))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&second.sign(&claims)).await.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn cached_keys_outlive_a_jwks_outage_only_for_the_maximum_staleness(db: PgPool) {
    let key = SigningKey::generate("key-1");
    let provider = Provider::start(vec![key.jwk()]).await;
    // Keys are refetched after 50 ms; during an outage they keep working for 1.5 s after
    // the last successful fetch. The sleeps below are far from both bounds.
    let app = TestApp::with_better_auth(
        db,
        BetterAuthConfig {
            refetch_interval: Duration::from_millis(50),
            max_key_age: Duration::from_millis(50),
            max_stale: Duration::from_millis(1500),
            ..provider.config()
        },
    )
    .await;
    let token = key.sign(&provider.claims("ba-user-1", "grace@example.com"));
    assert_eq!(app.me(&token).await.status, StatusCode::OK);

    // The provider goes down: a refetch fails, the cached key still works for a while.
    provider.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let fetches = provider.fetches.load(Ordering::SeqCst);
    assert_eq!(app.me(&token).await.status, StatusCode::OK);
    assert!(
        provider.fetches.load(Ordering::SeqCst) > fetches,
        "the expired set was refetched (and the fetch failed)"
    );

    // Past the maximum staleness, tokens are refused until the provider answers: fail
    // closed, so a key withdrawn during the outage does not work for ever.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    app.me(&token)
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    app.me(&token)
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);

    // Back up: the next token after the refetch interval is accepted again.
    provider.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(app.me(&token).await.status, StatusCode::OK);
}
