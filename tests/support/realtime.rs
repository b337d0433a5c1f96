//! The WebSocket API locally, for tests: `scripts/ws-gateway.py` (the same gateway
//! `scripts/dev` runs) in front of the `realtime` function's handler, which a small Lambda
//! invoke endpoint in this process runs with the gateway's API Gateway WebSocket events,
//! and a real WebSocket client.

use std::{process::Stdio, sync::Arc, time::Duration};

use aws_credential_types::Credentials;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::{Json, Router, extract::State, routing::post};
use futures::{SinkExt, StreamExt};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::{realtime::management::Management, sigv4::AwsAccess};
use sqlx::PgPool;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message},
};

/// What the function answered, in order: `($connect, 401)`, ...
pub type Invocations = Arc<std::sync::Mutex<Vec<(String, i64)>>>;

/// A running gateway and the invoke endpoint behind it; both stop when dropped.
pub struct Gateway {
    /// The gateway's port.
    pub port: u16,
    /// Events the function handled, in order (`$connect`, ...), with its status.
    pub invocations: Invocations,
    _process: Child,
    _invoke: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Starts the realtime function (its handler, in this process) on `db` and the gateway.
    pub async fn start(db: &PgPool) -> Self {
        let state = ::realtime::State { db: db.clone() };
        let invocations = Arc::new(std::sync::Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/2015-03-31/functions/realtime/invocations", post(invoke))
            .with_state((state, invocations.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the invoke endpoint");
        let invoke_url = format!("http://{}", listener.local_addr().expect("its address"));
        let invoke_task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the invoke endpoint serves");
        });
        let mut process = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/ws-gateway.py"
            ))
            .args(["--port", "0", "--invoke-url", &invoke_url])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("scripts/ws-gateway.py starts (python with aiohttp: scripts/test's venv)");
        let mut lines = BufReader::new(process.stdout.take().expect("its stdout")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("its output") {
                if let Some(port) = line.strip_prefix("listening on ") {
                    return port.trim().parse::<u16>().expect("a port");
                }
            }
            panic!("the gateway exited before listening");
        })
        .await
        .expect("the gateway listens within 30 s");
        // Keep reading its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            port,
            invocations,
            _process: process,
            _invoke: invoke_task,
        }
    }

    /// The Management API client the functions use, pointed at this gateway.
    pub fn management(&self) -> Management {
        let access = AwsAccess::new(
            Credentials::new("AKIDTEST", "test-secret", None, None, "tests"),
            "us-east-1",
            None,
        );
        Management::new(&format!("http://127.0.0.1:{}/live", self.port), access)
            .expect("a loopback endpoint")
    }

    /// The URL a client opens (with its ticket).
    pub fn url(&self, ticket: &str) -> String {
        format!("ws://127.0.0.1:{}/live?ticket={ticket}", self.port)
    }

    /// Connects with `ticket`: the socket, or the HTTP status the handshake was refused with.
    pub async fn connect(&self, ticket: &str) -> Result<Client, u16> {
        match connect_async(self.url(ticket)).await {
            Ok((socket, _)) => Ok(Client { socket }),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("the handshake failed without an HTTP status: {e}"),
        }
    }
}

/// The Lambda invoke API as `cargo lambda watch` serves it: the event JSON in, the
/// handler's response JSON out, through the same types lambda_runtime deserializes into.
async fn invoke(
    State((state, log)): State<(::realtime::State, Invocations)>,
    Json(event): Json<Value>,
) -> Json<Value> {
    let event: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(event).expect("the gateway sends API Gateway WebSocket events");
    let route = event.request_context.route_key.clone().unwrap_or_default();
    let response = ::realtime::handle(&state, LambdaEvent::new(event, crate::lambda::context()))
        .await
        .expect("the realtime function answers every event");
    log.lock()
        .expect("the log is not poisoned")
        .push((route, response.status_code));
    Json(serde_json::to_value(response).expect("the response serializes"))
}

/// The gateway runs on the dev venv's Python (aiohttp comes with localstripe).
fn python() -> String {
    std::env::var("WS_GATEWAY_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/venv/bin/python").into()
    })
}

/// A browser tab's WebSocket.
pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Sends a text frame.
    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("the frame is sent");
    }

    /// The next text frame as JSON, if one comes within `wait`; `None` on silence.
    /// Panics if the socket closed.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let message = match tokio::time::timeout(wait, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("the socket closed"),
                Ok(Some(message)) => message.expect("a frame"),
            };
            match message {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Message::Close(frame) => panic!("the socket closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Whether the server closes the socket within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Closes the socket from this side.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Read until the server's close answer, so $disconnect has been sent.
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(5), self.socket.next()).await
        {}
    }
}
