//! A minimal Lambda Runtime API, the protocol AWS serves to every function:
//! `GET /2018-06-01/runtime/invocation/next` hands out the next event,
//! `POST /2018-06-01/runtime/invocation/{id}/response` (or `/error`) takes the answer.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use tokio::sync::{Mutex, mpsc};

/// An answer the function posted.
#[derive(Debug)]
pub struct Answer {
    /// `response` or `error`.
    pub ok: bool,
    /// The body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Clone)]
struct Shared {
    events: Arc<Mutex<mpsc::Receiver<(String, Bytes)>>>,
    answers: mpsc::UnboundedSender<Answer>,
}

/// A running Runtime API.
pub struct RuntimeApi {
    /// Where it listens (`AWS_LAMBDA_RUNTIME_API`).
    pub addr: SocketAddr,
    events: mpsc::Sender<(String, Bytes)>,
    answers: mpsc::UnboundedReceiver<Answer>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Starts one on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let (events_tx, events_rx) = mpsc::channel(100_000);
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::new(Mutex::new(events_rx)),
            answers: answers_tx,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            events: events_tx,
            answers: answers_rx,
            task,
        })
    }

    /// Queues an event for the function.
    pub async fn push(&self, event: &serde_json::Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let _ = self
            .events
            .send((id.clone(), Bytes::from(event.to_string())))
            .await;
        id
    }

    /// Waits for the next answer.
    pub async fn answer(&mut self, timeout: Duration) -> anyhow::Result<Answer> {
        tokio::time::timeout(timeout, self.answers.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))?
            .ok_or_else(|| anyhow::anyhow!("runtime API closed"))
    }
}

async fn next(State(shared): State<Shared>) -> impl IntoResponse {
    let Some((id, body)) = shared.events.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 30_000;
    let pairs = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (StatusCode::OK, headers, body)
}

async fn response(
    State(shared): State<Shared>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = shared.answers.send(Answer {
        ok: true,
        body,
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer {
        ok: false,
        body,
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer {
        ok: false,
        body,
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}
