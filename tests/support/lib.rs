//! Test support: a `TestApp` that drives every function the way AWS does.
//!
//! HTTP requests become real API Gateway HTTP API (payload v2) event JSON, which goes
//! through `lambda_http`'s own adapter (the code `lambda_http::run` uses) into the
//! function's router, and the Lambda response JSON is read back. Queue work goes through
//! a real SQS-compatible server on loopback (`moto_server`, started by `scripts/test`)
//! with the real AWS SDK, and through the worker's Lambda handler with real SQS events.
//!
//! Layout: [`lambda`] turns requests into events and responses back; [`sqs`] makes
//! queues on the emulator and turns received messages into SQS events; [`routes`] reads
//! API Gateway's routing from `template.yaml`, so each request reaches the function the
//! template names. [`TestApp`] offers typed calls (`register`, `login`, `user`, `admin`)
//! and one request builder ([`Call`]: any method, bearer token, headers, body), so tests
//! read like the API docs.

pub mod lambda;
pub mod pooler;
pub mod realtime;
pub mod routes;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod stripe;

use std::time::Duration;

use axum::Router;
use http::{HeaderMap, Method, StatusCode};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shared::{
    identity::{sessions::SessionPolicy, throttle::RateLimits, tokens::TokenConfig},
    messaging::Publisher,
};
use sqlx::PgPool;

pub use lambda::Response;

/// The secret every test app signs with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// The HTTPS client the tests' SDK clients use: rustls on ring (the SDK crates are built
/// without a default client).
pub fn sdk_http_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The token settings tests use.
pub fn token_config() -> TokenConfig {
    TokenConfig {
        jwt_secret: SecretString::from(JWT_SECRET.to_owned()),
        previous_secrets: Vec::new(),
        issuer: "backend".into(),
        audience: "backend-api".into(),
        access_ttl: Duration::from_secs(900),
        better_auth: None,
        key_source: None,
    }
}

/// A loopback address that accepts connections and never answers (a stalled server),
/// with the task holding them: it stalls until that task is dropped or aborted.
pub async fn stalled_listener() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the stalled server");
    let address = listener.local_addr().expect("the stalled server's address");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (address, holder)
}

/// Rate limits no ordinary test reaches (every test request comes from one address).
pub fn unlimited() -> RateLimits {
    let lots = shared::identity::throttle::Limit::per(100_000, 60);
    RateLimits {
        login: lots,
        register: lots,
        refresh: lots,
        password_reset: lots,
    }
}

/// Each HTTP function's name and the OpenAPI paths its `routes()` declares.
pub fn function_docs() -> Vec<(Function, utoipa::openapi::OpenApi)> {
    vec![
        (Function::Platform, platform::openapi()),
        (Function::Auth, auth::openapi()),
        (Function::Notifications, notifications::openapi()),
        (Function::Tasks, tasks::openapi()),
        (Function::Uploads, uploads::openapi()),
        (Function::Users, users::openapi()),
        (Function::Events, events_api::openapi()),
        (Function::Orders, orders::openapi()),
        (Function::Payments, payments::openapi()),
    ]
}

/// The whole API as the handlers describe it: every HTTP function's routes in one
/// OpenAPI 3.1 document. `functions/platform/openapi.json` must equal it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut docs = function_docs().into_iter().map(|(_, doc)| doc);
    let mut doc = docs.next().expect("the platform's document comes first");
    for other in docs {
        doc.merge(other);
    }
    doc
}

/// Which function a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// `functions/auth`.
    Auth,
    /// `functions/notifications`.
    Notifications,
    /// `functions/platform`.
    Platform,
    /// `functions/tasks`.
    Tasks,
    /// `functions/uploads`.
    Uploads,
    /// `functions/users`.
    Users,
    /// `functions/events-api`.
    Events,
    /// `functions/orders`.
    Orders,
    /// `functions/payments`.
    Payments,
}

impl Function {
    /// Every HTTP function.
    pub const ALL: [Function; 9] = [
        Self::Auth,
        Self::Notifications,
        Self::Platform,
        Self::Tasks,
        Self::Uploads,
        Self::Users,
        Self::Events,
        Self::Orders,
        Self::Payments,
    ];

    /// The function's binary name (the template's and the local router's).
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Notifications => "notifications",
            Self::Platform => "platform",
            Self::Tasks => "tasks",
            Self::Uploads => "uploads",
            Self::Users => "users",
            Self::Events => "events-api",
            Self::Orders => "orders",
            Self::Payments => "payments",
        }
    }

    /// The function API Gateway sends `path` to, by the template's routes.
    pub fn for_path(path: &str) -> Option<Function> {
        let name = routes::function_for(path)?;
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Loads a function as its `main` does (state, and CORS for HTTP functions, from the
/// environment or a `shared::config::with_vars` scope), dropping the result.
pub type StartUp = fn() -> Result<(), shared::BoxError>;

/// Every function of the workspace, HTTP or not, with its start-up loading: what
/// tests/api/config.rs checks against the README and the template.
pub const START_UPS: &[(&str, StartUp)] = &[
    ("auth", || auth::from_env().map(drop)),
    ("users", || users::from_env().map(drop)),
    ("tasks", || tasks::from_env().map(drop)),
    ("notifications", || notifications::from_env().map(drop)),
    ("uploads", || uploads::from_env().map(drop)),
    ("platform", || platform::from_env().map(drop)),
    ("events-api", || events_api::from_env().map(drop)),
    ("orders", || orders::from_env().map(drop)),
    ("payments", || payments::from_env().map(drop)),
    ("upload-processor", || {
        upload_processor::State::from_env().map(drop)
    }),
    ("notify-worker", || {
        notify_worker::State::from_env().map(drop)
    }),
    ("outbox-relay", || outbox_relay::State::from_env().map(drop)),
    ("payments-reconcile", || {
        payments_reconcile::State::from_env().map(drop)
    }),
    ("realtime", || ::realtime::State::from_env().map(drop)),
    ("retention", || retention::State::from_env().map(drop)),
    ("migrate", || migrate::State::from_env().map(drop)),
];

/// The deployed default of `ORDER_HOLD_SECONDS`.
pub const ORDER_HOLD: Duration = Duration::from_secs(900);

fn orders_router(
    db: &PgPool,
    config: &TokenConfig,
    publisher: Publisher,
    hold: Duration,
) -> Router {
    shared::http::app(orders::router(orders::AppState::new(
        db.clone(),
        config,
        publisher,
        hold,
        &stripe::config(),
    )))
}

/// Every HTTP function wired to one test database and one fresh queue.
pub struct TestApp {
    /// The test's own database.
    pub db: PgPool,
    /// The notifications queue this app publishes to.
    pub queue: sqs::Queue,
    auth: Router,
    notifications: Router,
    platform: Router,
    tasks: Router,
    uploads: Router,
    users: Router,
    events: Router,
    orders: Router,
    payments: Router,
    config: TokenConfig,
}

impl TestApp {
    /// An app on `db` publishing to a fresh queue on the emulator.
    pub async fn new(db: PgPool) -> Self {
        s3::ensure_moto_bucket("uploads").await;
        let queue = sqs::Queue::create().await;
        let publisher = queue.publisher();
        Self::with_publisher(db, queue, publisher)
    }

    /// An app whose auth function enforces `limits` (tests of the limits themselves).
    pub async fn with_limits(db: PgPool, limits: RateLimits) -> Self {
        let queue = sqs::Queue::create().await;
        let publisher = queue.publisher();
        Self::build(db, queue, publisher, limits, token_config())
    }

    /// An app whose functions also accept Better Auth tokens.
    pub async fn with_better_auth(
        db: PgPool,
        better_auth: shared::identity::better_auth::BetterAuthConfig,
    ) -> Self {
        let queue = sqs::Queue::create().await;
        let publisher = queue.publisher();
        let config = TokenConfig {
            better_auth: Some(better_auth),
            ..token_config()
        };
        Self::build(db, queue, publisher, unlimited(), config)
    }

    /// An app whose auth function publishes through `publisher` (e.g. an unreachable one).
    pub fn with_publisher(db: PgPool, queue: sqs::Queue, publisher: Publisher) -> Self {
        Self::build(db, queue, publisher, unlimited(), token_config())
    }

    fn build(
        db: PgPool,
        queue: sqs::Queue,
        publisher: Publisher,
        limits: RateLimits,
        config: TokenConfig,
    ) -> Self {
        // Test database names are reused across runs: start with an empty mailbox.
        // A fresh, existing mailbox: a stale one from an earlier run with the same
        // database name would fake mail, and a missing one must read as an error.
        let mail_dir = lambda::mail_dir(&db);
        let _ = std::fs::remove_dir_all(&mail_dir);
        std::fs::create_dir_all(&mail_dir).expect("the test mailbox can be created");
        Self {
            auth: shared::http::app(auth::router(auth::AppState::new(
                db.clone(),
                &config,
                SessionPolicy::default(),
                publisher.clone(),
                limits,
            ))),
            notifications: shared::http::app(notifications::router(notifications::AppState::new(
                db.clone(),
                &config,
            ))),
            platform: shared::http::app(platform::router(db.clone())),
            tasks: shared::http::app(tasks::router(tasks::AppState::new(db.clone(), &config))),
            users: shared::http::app(users::router(users::AppState::new(db.clone(), &config))),
            events: shared::http::app(events_api::router(events_api::AppState::new(
                db.clone(),
                &config,
                publisher.clone(),
            ))),
            orders: orders_router(&db, &config, publisher.clone(), ORDER_HOLD),
            payments: shared::http::app(payments::router(payments::AppState::new(
                db.clone(),
                publisher,
                &stripe::config(),
                vec![stripe::webhook_secret(&db)],
            ))),
            uploads: uploads_router(
                &db,
                &s3::moto_target(),
                s3::storage("uploads", Duration::from_secs(600)),
            ),
            db,
            queue,
            config,
        }
    }

    /// The auth and users functions closing WebSocket connections through `management`
    /// (a test gateway's), as deployed.
    pub fn with_realtime(mut self, management: &shared::realtime::management::Management) -> Self {
        let publisher = self.queue.publisher();
        self.auth = shared::http::app(auth::router(
            auth::AppState::new(
                self.db.clone(),
                &self.config,
                SessionPolicy::default(),
                publisher,
                unlimited(),
            )
            .with_realtime(Some(management.clone())),
        ));
        self.users = shared::http::app(users::router(
            users::AppState::new(self.db.clone(), &self.config)
                .with_realtime(Some(management.clone())),
        ));
        self
    }

    /// The tasks, uploads and orders functions with `limit` as each user's budget of
    /// writes (tests of the per-user limits; the others run with the deployed defaults).
    pub fn with_write_limit(mut self, limit: shared::identity::throttle::Limit) -> Self {
        let tasks = tasks::AppState::new(self.db.clone(), &self.config);
        self.tasks = shared::http::app(tasks::router(tasks::AppState {
            writes: shared::identity::throttle::WriteLimit {
                limit,
                ..tasks.writes
            },
            ..tasks
        }));
        let orders = orders::AppState::new(
            self.db.clone(),
            &self.config,
            self.queue.publisher(),
            ORDER_HOLD,
            &stripe::config(),
        );
        self.orders = shared::http::app(orders::router(orders::AppState {
            writes: shared::identity::throttle::WriteLimit {
                limit,
                ..orders.writes
            },
            ..orders
        }));
        let storage = s3::storage("uploads", Duration::from_secs(600));
        let uploads = uploads::AppState::new(
            self.db.clone(),
            &self.config,
            s3::moto_target().presigner(&storage),
            std::sync::Arc::new(storage),
        );
        self.uploads = shared::http::app(uploads::router(uploads::AppState {
            writes: shared::identity::throttle::WriteLimit {
                limit,
                ..uploads.writes
            },
            ..uploads
        }));
        self
    }

    /// The orders function with another hold period (tests of expiry).
    pub fn with_order_hold(mut self, hold: Duration) -> Self {
        self.orders = orders_router(&self.db, &self.config, self.queue.publisher(), hold);
        self
    }

    /// Points the uploads function at another S3 (e.g. the signing one) and settings.
    pub fn with_storage(
        mut self,
        s3: s3::S3Target,
        storage: shared::uploads::StorageConfig,
    ) -> Self {
        self.uploads = uploads_router(&self.db, &s3, storage);
        self
    }

    /// Runs the payments reconciliation once (as its schedule does), reading from Stripe
    /// every payment not final for `settle_after`; returns its report.
    pub async fn reconcile(&self, settle_after: Duration) -> Value {
        let state = payments_reconcile::State {
            db: self.db.clone(),
            publisher: self.queue.publisher(),
            stripe: std::sync::Arc::new(stripe::config().client()),
            settle_after,
        };
        lambda::invoke_reconcile(&state, lambda::schedule_event()).await
    }

    /// The upload processor's state for `bucket` on `s3`, publishing to this app's queue.
    pub fn processor(&self, s3: s3::S3Target, bucket: &str) -> upload_processor::State {
        let storage = s3::storage(bucket, Duration::from_secs(600));
        upload_processor::State {
            db: self.db.clone(),
            storage: s3.presigner(&storage),
            http: shared::outbound::https_client(),
            publisher: self.queue.publisher(),
            bucket: bucket.into(),
        }
    }

    /// The router of a function (with the shared HTTP layers).
    pub fn router(&self, function: Function) -> Router {
        match function {
            Function::Auth => self.auth.clone(),
            Function::Notifications => self.notifications.clone(),
            Function::Platform => self.platform.clone(),
            Function::Tasks => self.tasks.clone(),
            Function::Uploads => self.uploads.clone(),
            Function::Users => self.users.clone(),
            Function::Events => self.events.clone(),
            Function::Orders => self.orders.clone(),
            Function::Payments => self.payments.clone(),
        }
    }

    /// Sends a request to a function as an API Gateway v2 event.
    pub async fn request(
        &self,
        function: Function,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        let event = lambda::api_gateway_event(method, path_and_query, headers, body);
        lambda::invoke_http(self.router(function), event).await
    }

    /// Starts a request to whichever function the template routes `path` to.
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            app: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET path`, optionally with a bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, path).bearer_opt(token).send().await
    }

    /// `POST path` with a JSON body, optionally with a bearer token.
    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.call(Method::POST, path)
            .json(body)
            .bearer_opt(token)
            .send()
            .await
    }

    /// `POST path` with a raw body labelled as JSON.
    pub async fn post_raw(&self, path: &str, body: &str, token: Option<&str>) -> Response {
        self.call(Method::POST, path)
            .body("application/json", body)
            .bearer_opt(token)
            .send()
            .await
    }

    /// `PUT path` with a JSON body, optionally with a bearer token.
    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.call(Method::PUT, path)
            .json(body)
            .bearer_opt(token)
            .send()
            .await
    }

    /// `PATCH path` with a JSON body, optionally with a bearer token.
    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.call(Method::PATCH, path)
            .json(body)
            .bearer_opt(token)
            .send()
            .await
    }

    /// `DELETE path`, optionally with a bearer token.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::DELETE, path)
            .bearer_opt(token)
            .send()
            .await
    }

    /// `POST path` with a JSON body from client address `ip`.
    pub async fn post_from(&self, ip: &str, path: &str, body: &Value) -> Response {
        self.call(Method::POST, path)
            .json(body)
            .from_ip(ip)
            .send()
            .await
    }

    /// Registers a user.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "name": name}),
            None,
        )
        .await
    }

    /// Logs in.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Registers and logs in a user; returns its token pair.
    pub async fn user(&self, email: &str) -> Tokens {
        let registered = self.register(email, PASSWORD, "Test User").await;
        assert_eq!(
            registered.status,
            StatusCode::ACCEPTED,
            "{}",
            registered.text()
        );
        let logged_in = self.login(email, PASSWORD).await;
        assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text());
        logged_in.json()
    }

    /// The first admin, made the way operators make it (the migrate step), logged in.
    pub async fn admin(&self, email: &str) -> Tokens {
        let config = migrate::first_admin::FirstAdmin::new(email, PASSWORD.into())
            .expect("a valid first admin");
        migrate::first_admin::ensure(&self.db, &config)
            .await
            .expect("the first admin is ensured");
        let logged_in = self.login(email, PASSWORD).await;
        assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text());
        logged_in.json()
    }

    /// A user made organizer by an admin, as in production (`PATCH /api/v1/users/{id}`).
    pub async fn organizer(&self, email: &str) -> Tokens {
        let tokens = self.user(email).await;
        let id = self.id_of(&tokens.access_token).await;
        let admin = self.admin("organizer-maker@example.com").await;
        let promoted = self
            .call(Method::PATCH, &format!("/api/v1/users/{id}"))
            .bearer(&admin.access_token)
            .json(&json!({"role": "organizer"}))
            .send()
            .await;
        assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text());
        tokens
    }

    /// A published event of `organizer`'s, starting in 2030, with these ticket types
    /// (bodies as `POST /api/v1/events/{id}/ticket-types` takes them) and an optional
    /// event-wide capacity: its id and the types' ids, in order.
    pub async fn event_on_sale(
        &self,
        organizer: &Tokens,
        capacity: Option<i64>,
        types: &[Value],
    ) -> (String, Vec<String>) {
        let created = self
            .post(
                "/api/v1/events",
                &json!({
                    "title": "Bachata Weekend",
                    "category": "bachata",
                    "venue": {"name": "Sala", "address": "Calle 1", "city": "Sevilla", "country": "ES"},
                    "starts_at": "2030-05-01T20:00:00Z",
                    "ends_at": "2030-05-02T02:00:00Z",
                    "timezone": "Europe/Madrid",
                    "capacity": capacity,
                }),
                Some(&organizer.access_token),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let id = created.json::<Value>()["id"]
            .as_str()
            .expect("the event has an id")
            .to_owned();
        let mut type_ids = Vec::new();
        for body in types {
            let added = self
                .post(
                    &format!("/api/v1/events/{id}/ticket-types"),
                    body,
                    Some(&organizer.access_token),
                )
                .await;
            assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
            type_ids.push(
                added.json::<Value>()["id"]
                    .as_str()
                    .expect("the ticket type has an id")
                    .to_owned(),
            );
        }
        let published = self
            .post(
                &format!("/api/v1/events/{id}/publish"),
                &json!({}),
                Some(&organizer.access_token),
            )
            .await;
        assert_eq!(published.status, StatusCode::OK, "{}", published.text());
        (id, type_ids)
    }

    /// `POST /api/v1/orders` with an `Idempotency-Key`.
    pub async fn order(&self, buyer: &Tokens, key: &str, body: &Value) -> Response {
        self.call(Method::POST, "/api/v1/orders")
            .bearer(&buyer.access_token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
    }

    /// The id of the user a token belongs to (from `/api/v1/auth/me`).
    pub async fn id_of(&self, access_token: &str) -> String {
        let me = self.me(access_token).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        me.json::<Value>()["id"].as_str().expect("an id").to_owned()
    }

    /// Exchanges a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh_token}),
            None,
        )
        .await
    }

    /// Moves every rotation `seconds` into the past, so a test can step out of (or stay
    /// within) the refresh-token reuse window without sleeping.
    pub async fn age_rotations(&self, seconds: i32) {
        sqlx::query(
            "UPDATE refresh_tokens SET used_at = used_at - make_interval(secs => $1)
             WHERE used_at IS NOT NULL",
        )
        .bind(f64::from(seconds))
        .execute(&self.db)
        .await
        .expect("refresh tokens can be aged");
    }

    /// `GET /api/v1/auth/me`.
    pub async fn me(&self, access_token: &str) -> Response {
        self.get("/api/v1/auth/me", Some(access_token)).await
    }

    /// Every email the worker has sent for this app, oldest first. The folder exists from
    /// the start, so one that cannot be read fails the test instead of reading as "no mail".
    pub fn mailbox(&self) -> Vec<Mail> {
        let path = lambda::mail_dir(&self.db);
        let dir = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("cannot read the mailbox {}: {e}", path.display()));
        let mut files: Vec<_> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        // File names are message ids (UUID v7): sorting them sorts by time.
        files.sort();
        files
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).expect("mail file readable");
                serde_json::from_slice(&bytes).expect("mail file is JSON")
            })
            .collect()
    }

    /// Runs the worker, then returns the token of the newest `page` link (e.g.
    /// `reset-password`) emailed to `to`.
    pub async fn emailed_token(&self, to: &str, page: &str) -> String {
        self.run_worker().await;
        let marker = format!("/{page}?token=");
        self.mailbox()
            .iter()
            .rev()
            .filter(|m| m.to == to)
            .find_map(|m| {
                let start = m.text.find(&marker)? + marker.len();
                let token: String = m.text[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                Some(token)
            })
            .unwrap_or_else(|| panic!("no {page} link was emailed to {to}: {:?}", self.mailbox()))
    }

    /// Drains this app's queue into the worker until the queue is empty; returns how
    /// many records the worker handled.
    pub async fn run_worker(&self) -> usize {
        let mut handled = 0;
        loop {
            let event = self.queue.receive_event(Duration::from_secs(1)).await;
            let n = event["Records"].as_array().map_or(0, Vec::len);
            if n == 0 {
                return handled;
            }
            let response = lambda::invoke_worker(&self.db, event).await;
            self.queue.delete_succeeded(&response).await;
            handled += n;
        }
    }
}

fn uploads_router(
    db: &PgPool,
    s3: &s3::S3Target,
    storage: shared::uploads::StorageConfig,
) -> Router {
    let presigner = s3.presigner(&storage);
    let state = uploads::AppState::new(
        db.clone(),
        &token_config(),
        presigner,
        std::sync::Arc::new(storage),
    );
    shared::http::app(uploads::router(state))
}

/// A request being built; see [`TestApp::call`].
#[must_use = "a call does nothing until it is sent"]
pub struct Call<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Call<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A bearer token when there is one.
    pub fn bearer_opt(self, token: Option<&str>) -> Self {
        match token {
            Some(token) => self.bearer(token),
            None => self,
        }
    }

    /// A JSON body (and its content type).
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", &body.to_string())
    }

    /// A raw body with the given content type.
    pub fn body(mut self, content_type: &str, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self.header("content-type", content_type)
    }

    /// The client address API Gateway saw (`requestContext.http.sourceIp`).
    pub fn from_ip(self, ip: &str) -> Self {
        self.header(lambda::SOURCE_IP, ip)
    }

    /// Sends it, as an API Gateway event, to the function the template routes the path to
    /// (a path no route serves panics: API Gateway would answer 404 without a function).
    pub async fn send(self) -> Response {
        let path = self.path.split('?').next().unwrap_or_default();
        let function = Function::for_path(path)
            .unwrap_or_else(|| panic!("template.yaml routes {path} to no function"));
        self.send_to(function).await
    }

    /// Sends it to `function` whatever the template says (tests of the routing itself).
    pub async fn send_to(self, function: Function) -> Response {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.app
            .request(
                function,
                self.method,
                &self.path,
                &headers,
                self.body.as_deref(),
            )
            .await
    }
}

/// An email the worker sent (the directory mailer's file).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// The token pair from login or refresh.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    /// JWT.
    pub access_token: String,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
}

impl Response {
    /// The body as JSON of type `T`; panics with the body when it does not parse.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not the expected JSON ({e}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts this is a problem+json response with `status`; returns the problem.
    pub fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "not problem+json: {}",
            self.text()
        );
        let problem: Value = self.json();
        assert_eq!(problem["status"], status.as_u16(), "{problem}");
        assert!(problem["title"].is_string(), "{problem}");
        assert!(problem["type"].is_string(), "{problem}");
        problem
    }
}

/// Headers of a response.
pub type Headers = HeaderMap;
