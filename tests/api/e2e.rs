//! End to end through `cargo lambda watch`: the real function binaries, started by
//! cargo-lambda's emulation of the Lambda runtime API, answering HTTP requests at the
//! API Gateway paths (from the router in the workspace Cargo.toml), plus the worker
//! invoked with a real SQS batch through the invoke endpoint, as `scripts/dev` does.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use api_tests::{JWT_SECRET, PASSWORD, sqs::Queue};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Stops the whole process group (cargo-lambda, cargo-watch, the functions) on drop.
struct Watch {
    child: Child,
    log: PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The `cargo-lambda` to run: `CARGO_LAMBDA`, else one on `PATH`, else the one
/// `scripts/test` installs into `.local/venv`. None of them is a failure, not a skip: this
/// is the only test of the real `main.rs` wiring.
fn cargo_lambda() -> String {
    if let Some(path) = std::env::var_os("CARGO_LAMBDA").filter(|p| !p.is_empty()) {
        return path.to_string_lossy().into_owned();
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("cargo-lambda"));
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/venv/bin/cargo-lambda");
    on_path
        .chain(std::iter::once(local))
        .find(|candidate| candidate.is_file())
        .map(|found| found.to_string_lossy().into_owned())
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda not found: run the tests with scripts/test (it installs it), \
                 or set CARGO_LAMBDA"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The URL of the test's own database, on the server named by `DATABASE_URL`.
fn database_url(db: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name = db
        .connect_options()
        .get_database()
        .expect("database name")
        .to_owned();
    let (server, rest) = base.rsplit_once('/').expect("URL with a database");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{server}/{name}{query}")
}

/// The database URL and the JWT key reach the functions as in AWS: as the ARNs of
/// secrets (on the emulator), which each binary's `main` fetches at cold start.
struct SecretArns {
    database_url: String,
    jwt_secret: String,
}

fn start_watch(cargo_lambda: &str, port: u16, secrets: &SecretArns, queue_url: &str) -> Watch {
    use std::os::unix::process::CommandExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Not under target/: CI may build elsewhere (CARGO_TARGET_DIR) and leave none here.
    let log = std::env::temp_dir().join(format!("e2e-watch-{port}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(cargo_lambda)
        .args([
            "lambda",
            "watch",
            // As scripts/dev: the functions' own CORS, not cargo-lambda's any-origin one.
            "--disable-cors",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .current_dir(&root)
        // Not inherited from the tests' own environment: values and ARNs exclude each other.
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env("DATABASE_URL_SECRET_ARN", &secrets.database_url)
        .env("JWT_SECRET_ARN", &secrets.jwt_secret)
        .env("JWT_ISSUER", "backend")
        .env("JWT_AUDIENCE", "backend-api")
        .env("NOTIFICATIONS_QUEUE_URL", queue_url)
        .env("MAIL_TRANSPORT", "directory")
        .env(
            "MAIL_DIR",
            std::env::temp_dir().join("api-tests-mail").join("e2e"),
        )
        .env("APP_BASE_URL", "http://localhost:3000")
        .env("AWS_ENDPOINT_URL", api_tests::sqs::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("SQLX_OFFLINE", "true")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("cargo lambda watch starts");
    Watch { child, log }
}

/// Where the functions under `cargo lambda watch` write account emails.
fn mail_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("api-tests-mail").join("e2e")
}

/// Sends requests until the function behind `path` answers (it compiles on first call).
async fn wait_until_served(http: &reqwest::Client, watch: &Watch, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never answered; watch log:\n{}",
            watch.log_tail()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_api_works_through_cargo_lambda_watch(db: PgPool) {
    let cargo_lambda = cargo_lambda();
    let queue = Queue::create().await;
    let _ = std::fs::remove_dir_all(mail_dir());
    let port = free_port();
    let secrets = SecretArns {
        database_url: api_tests::secrets::create(&database_url(&db)).await,
        jwt_secret: api_tests::secrets::create(JWT_SECRET).await,
    };
    let watch = start_watch(&cargo_lambda, port, &secrets, &queue.url);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20 * 60))
        .build()
        .unwrap();

    wait_until_served(&http, &watch, &format!("{base}/health")).await;

    // Register, log in, who am I.
    let registered = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "e2e@example.com", "password": PASSWORD, "name": "End To End"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        registered.status(),
        StatusCode::ACCEPTED,
        "{}",
        watch.log_tail()
    );
    assert!(registered.headers().contains_key("x-request-id"));
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "e2e@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let me: Value = http
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "e2e@example.com");

    // The welcome message and the verification email are on the queue; deliver them as
    // the SQS trigger would (one receive may return either or both).
    let mut records = Vec::new();
    for _ in 0..5 {
        let event = queue.receive_event(Duration::from_secs(2)).await;
        records.extend(event["Records"].as_array().cloned().unwrap_or_default());
        if records.len() >= 2 {
            break;
        }
    }
    assert_eq!(records.len(), 2, "{records:?}");
    let event = json!({ "Records": records });
    let worker = http
        .post(format!(
            "{base}/2015-03-31/functions/notify-worker/invocations"
        ))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(worker.status(), StatusCode::OK, "{}", watch.log_tail());
    let report: Value = worker.json().await.unwrap();
    assert_eq!(report["batchItemFailures"], json!([]), "{report}");
    queue.delete_succeeded(&report).await;

    let inbox: Value = http
        .get(format!("{base}/api/v1/notifications"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"][0]["kind"], "welcome", "{inbox}");
    // The verification email went to the directory transport.
    let mails = std::fs::read_dir(mail_dir()).map_or(0, |d| d.count());
    assert_eq!(
        mails,
        1,
        "one verification email in {}",
        mail_dir().display()
    );

    // Errors keep their shape through the real runtime.
    let malformed = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let logout = http
        .post(format!("{base}/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = http
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    drop(watch);
}
