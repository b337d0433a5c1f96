//! The `realtime` function: the three routes of the WebSocket API (`$connect`,
//! `$disconnect`, `$default`), as API Gateway invokes them with its WebSocket proxy
//! events. It never pushes: `notify-worker` does, through the Management API
//! (`shared::realtime`).
//!
//! - `$connect` redeems the `ticket` query parameter (from `POST /api/v1/realtime/tickets`)
//!   and records the connection, or answers 401 and API Gateway refuses the handshake;
//! - `$disconnect` forgets the connection;
//! - `$default` answers `{"action":"ping"}` with `{"type":"pong"}` (a client pings to keep
//!   an idle connection open: API Gateway closes it after 10 silent minutes) and anything
//!   else with an `error` frame. The route's response goes back on the socket.

use aws_lambda_events::{
    apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest},
    encodings::Body,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use shared::realtime::{Frame, connections};
use sqlx::PgPool;

/// What the function needs; built once per cold start.
#[derive(Clone)]
pub struct State {
    /// The database.
    pub db: PgPool,
}

impl State {
    /// Loads the state from the environment.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        Ok(Self {
            db: shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?,
        })
    }
}

/// Handles one WebSocket event.
#[tracing::instrument(skip_all, fields(route, connection_id))]
pub async fn handle(
    state: &State,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, lambda_runtime::Error> {
    let request = event.payload;
    let context = &request.request_context;
    let route = context.route_key.as_deref().unwrap_or("$default");
    let span = tracing::Span::current();
    span.record("route", route);
    let Some(connection_id) = context.connection_id.as_deref().filter(|id| valid_id(id)) else {
        tracing::warn!("an event without a valid connection id");
        return Ok(reply(400, None));
    };
    span.record("connection_id", connection_id);
    Ok(match route {
        "$connect" => {
            let ticket = request.query_string_parameters.first("ticket");
            connect(state, connection_id, ticket).await
        }
        "$disconnect" => match connections::disconnect(&state.db, connection_id).await {
            Ok(known) => {
                tracing::info!(known, "disconnected");
                reply(200, None)
            }
            Err(e) => {
                // The row expires on its own; nothing is pushed to a closed socket for long.
                tracing::warn!(error = %e, "could not forget the connection");
                reply(200, None)
            }
        },
        _ => reply(200, Some(message(&request).encode())),
    })
}

async fn connect(
    state: &State,
    connection_id: &str,
    ticket: Option<&str>,
) -> ApiGatewayProxyResponse {
    // A ticket is 43 base64url characters; anything else is not worth a query.
    let Some(ticket) = ticket.filter(|t| t.len() == 43) else {
        tracing::info!("connect refused: no ticket");
        return refused();
    };
    match connections::connect(&state.db, ticket, connection_id).await {
        Ok(Some(user)) => {
            tracing::info!(user_id = %user, "connected");
            reply(200, None)
        }
        Ok(None) => {
            tracing::info!(
                "connect refused: the ticket is unknown, used, expired or its session ended"
            );
            refused()
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record the connection");
            reply(
                503,
                Some(r#"{"title":"unavailable; reconnect shortly"}"#.into()),
            )
        }
    }
}

/// One answer for every refused ticket: which check failed is nobody's business.
fn refused() -> ApiGatewayProxyResponse {
    reply(
        401,
        Some(r#"{"title":"a valid connect ticket is required"}"#.into()),
    )
}

/// What a client may send.
#[derive(Deserialize)]
struct ClientMessage {
    action: String,
}

fn message(request: &ApiGatewayWebsocketProxyRequest) -> Frame {
    let body = request.body.as_deref().unwrap_or_default();
    let decoded;
    let bytes = if request.is_base64_encoded {
        match STANDARD.decode(body) {
            Ok(bytes) => {
                decoded = bytes;
                decoded.as_slice()
            }
            Err(_) => return error("send JSON text frames"),
        }
    } else {
        body.as_bytes()
    };
    match serde_json::from_slice::<ClientMessage>(bytes) {
        Ok(m) if m.action == "ping" => Frame::Pong,
        Ok(_) => error("unknown action; the only one is ping"),
        Err(_) => error(r#"send {"action":"ping"}"#),
    }
}

fn error(message: &str) -> Frame {
    Frame::Error {
        message: message.to_owned(),
    }
}

/// API Gateway's connection ids are short base64 strings (the table checks the same).
fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'=' | b'+' | b'/' | b'-'))
}

fn reply(status: i64, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = body.map(Body::Text);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_short_base64() {
        assert!(valid_id("L0SM9cOFvHcCIhw="));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"a".repeat(129)));
        assert!(!valid_id("é"));
    }
}
