//! Lambda events in, Lambda responses out, through the runtime crates' own code.

use aws_lambda_events::event::{eventbridge::EventBridgeEvent, sqs::SqsEvent};
use axum::Router;
use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use lambda_http::request::LambdaRequest;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Map, Value, json};
use shared::messaging::Publisher;
use sqlx::PgPool;
use tower::{Service, ServiceExt};

/// A function's answer, decoded from the Lambda response JSON.
#[derive(Debug)]
pub struct Response {
    /// `statusCode`.
    pub status: StatusCode,
    /// `headers` (and `multiValueHeaders`).
    pub headers: HeaderMap,
    /// `body`, base64-decoded when `isBase64Encoded`.
    pub body: Vec<u8>,
}

/// An API Gateway HTTP API (payload format 2.0) event for a request.
pub fn api_gateway_event(
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut header_map = Map::new();
    header_map.insert("user-agent".into(), json!("api-tests"));
    header_map.insert("host".into(), json!("api.example.com"));
    let mut source_ip = "203.0.113.7".to_owned();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        match name.to_ascii_lowercase().as_str() {
            // Not a header: where API Gateway saw the connection come from.
            SOURCE_IP => source_ip = (*value).to_owned(),
            // API Gateway (payload 2.0) moves cookies out of the headers into `cookies`.
            "cookie" => cookies.extend(value.split(';').map(|c| c.trim().to_owned())),
            // Payload 2.0 joins a repeated header's values with commas.
            lower => {
                let joined = match header_map.get(lower).and_then(|v| v.as_str()) {
                    Some(earlier) => format!("{earlier},{value}"),
                    None => (*value).to_owned(),
                };
                header_map.insert(lower.to_owned(), json!(joined));
            }
        }
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "api-tests"
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_305_600_000_i64
        },
        "cookies": cookies,
        "body": body,
        "isBase64Encoded": false
    })
}

/// A pseudo-header for [`api_gateway_event`]: sets `requestContext.http.sourceIp`
/// instead of becoming a header, so tests can act as different clients.
pub const SOURCE_IP: &str = "x-test-source-ip";

pub(crate) fn context() -> Context {
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test".into();
    context
}

/// Runs an HTTP event through `lambda_http`'s adapter into `router`, and decodes the
/// Lambda response it produces.
pub async fn invoke_http(router: Router, event: Value) -> Response {
    // The same deserialisation the runtime applies to the invocation body.
    let request: LambdaRequest =
        serde_json::from_value(event).expect("the event is a valid API Gateway event");
    let mut adapter = lambda_http::Adapter::from(router);
    let response = adapter
        .ready()
        .await
        .expect("router is always ready")
        .call(LambdaEvent::new(request, context()))
        .await
        .expect("router is infallible");
    decode_response(serde_json::to_value(response).expect("Lambda response serialises"))
}

fn decode_response(json: Value) -> Response {
    let status = StatusCode::from_u16(json["statusCode"].as_u64().expect("statusCode") as u16)
        .expect("valid status");
    let mut headers = HeaderMap::new();
    if let Some(map) = json["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(n), Some(v)) = (HeaderName::try_from(name.as_str()), value.as_str()) {
                headers.append(n, HeaderValue::from_str(v).expect("valid header"));
            }
        }
    }
    if let Some(cookies) = json["cookies"].as_array() {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            headers.append(
                http::header::SET_COOKIE,
                HeaderValue::from_str(cookie).expect("valid cookie"),
            );
        }
    }
    let body = match json["body"].as_str() {
        None => Vec::new(),
        Some(text) if json["isBase64Encoded"].as_bool() == Some(true) => {
            STANDARD.decode(text).expect("base64 body")
        }
        Some(text) => text.as_bytes().to_vec(),
    };
    Response {
        status,
        headers,
        body,
    }
}

/// Where the worker's directory mailer writes for the test database `db`: one mailbox
/// per test, since every test has its own database.
pub fn mail_dir(db: &PgPool) -> std::path::PathBuf {
    let name = db
        .connect_options()
        .get_database()
        .unwrap_or("default")
        .to_owned();
    std::env::temp_dir().join("api-tests-mail").join(name)
}

/// The worker's state for a test database, mailing into [`mail_dir`].
pub fn worker_state(db: &PgPool) -> notify_worker::State {
    let mail = notify_worker::mail::MailConfig {
        transport: notify_worker::mail::MailTransport::Directory(mail_dir(db)),
        app_base_url: "https://app.example.com".into(),
        token_ttl: std::time::Duration::from_secs(1800),
    };
    notify_worker::State {
        db: db.clone(),
        mailer: notify_worker::mail::Mailer::new(&mail.transport).expect("mailer"),
        mail,
        realtime: None,
    }
}

/// Runs an SQS event (JSON) through the worker's Lambda handler; returns its response JSON.
pub async fn invoke_worker(db: &PgPool, event: Value) -> Value {
    invoke_worker_with(&worker_state(db), event).await
}

/// Like [`invoke_worker`], with the worker's state given (e.g. mailing through SES).
pub async fn invoke_worker_with(state: &notify_worker::State, event: Value) -> Value {
    let event: SqsEvent = serde_json::from_value(event).expect("a valid SQS event");
    let response = notify_worker::handle(state, LambdaEvent::new(event, context()))
        .await
        .expect("the worker reports failures per record, never as an error");
    serde_json::to_value(response).expect("response serialises")
}

/// Runs a scheduled EventBridge event (JSON) through the outbox relay's handler.
pub async fn invoke_relay(db: &PgPool, publisher: &Publisher, event: Value) -> Value {
    let event: EventBridgeEvent = serde_json::from_value(event).expect("a valid EventBridge event");
    let report = outbox_relay::handle(db, publisher, LambdaEvent::new(event, context()))
        .await
        .expect("the sweep succeeds");
    serde_json::to_value(report).expect("report serialises")
}

/// Runs a scheduled EventBridge event (JSON) through the payments reconciliation's
/// handler and returns its report.
pub async fn invoke_reconcile(state: &payments_reconcile::State, event: Value) -> Value {
    let event: EventBridgeEvent = serde_json::from_value(event).expect("a valid EventBridge event");
    let report = payments_reconcile::handle(state, LambdaEvent::new(event, context()))
        .await
        .expect("the reconciliation succeeds");
    serde_json::to_value(report).expect("report serialises")
}

/// A scheduled event like the one EventBridge sends every minute.
pub fn schedule_event() -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-22T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/outbox-relay"],
        "detail": {}
    })
}

/// Runs an event (an SQS batch of S3 events, or a scheduled event) through the upload
/// processor's Lambda handler.
pub async fn invoke_processor(state: &upload_processor::State, event: Value) -> Value {
    upload_processor::handle(state, LambdaEvent::new(event, context()))
        .await
        .expect("the processor reports failures per record")
}

/// The body S3 puts on the queue for one ObjectCreated:Put, with the key encoded as S3
/// encodes it (form-URL-encoding: spaces as `+`).
pub fn s3_put_event(bucket: &str, key: &str, size: u64) -> Value {
    let encoded: String = url_form_encode(key);
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "uploads",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
        }
    }]})
}

/// Form-URL-encodes like S3 event notifications: unreserved characters and `/` stay,
/// space becomes `+`, everything else is percent-encoded as UTF-8.
fn url_form_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// An SQS batch whose records carry these bodies.
pub fn sqs_batch(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("msg-{i}-{}", uuid::Uuid::new_v4().simple()),
                "receiptHandle": "receipt",
                "body": body.as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795305600000", "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795305600001"},
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:upload-events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}
