//! `POST /api/v1/realtime/tickets`: the connect ticket a browser puts in the WebSocket URL
//! (it cannot set an `Authorization` header there). See `shared::realtime` for the flow.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiResult, Problem},
        extract::Json,
    },
    identity::guard::CurrentUser,
    realtime::tickets,
};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;

/// A connect ticket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectTicket {
    /// Single use, valid for 60 seconds: connect with `?ticket=` it.
    pub ticket: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The WebSocket URL with the ticket, ready to open (absent where no WebSocket API is
    /// configured).
    #[schema(example = "wss://abc123.execute-api.eu-west-1.amazonaws.com/live?ticket=...")]
    pub url: Option<String>,
}

/// Get a connect ticket for the real-time WebSocket.
///
/// Then open `url` (or the WebSocket API's URL with `?ticket=`); frames are JSON:
/// `{"type":"notification","notification":{...}}`, `{"type":"sync"}` (fetch the inbox),
/// `{"type":"pong"}`. After connecting, and after every reconnect, catch up with
/// `GET /api/v1/notifications?since=<last seen id>`.
#[utoipa::path(
    post,
    path = "/api/v1/realtime/tickets",
    operation_id = "create_realtime_ticket",
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A ticket for one connection, valid 60 s", body = ConnectTicket),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create_ticket(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<(StatusCode, Json<ConnectTicket>)> {
    let issued = tickets::issue(&state.db, user.id.0, user.session_id.map(|s| s.0)).await?;
    let url = state
        .realtime_url
        .as_deref()
        .map(|base| format!("{base}?ticket={}", issued.ticket));
    Ok((
        StatusCode::CREATED,
        Json(ConnectTicket {
            ticket: issued.ticket,
            expires_at: issued.expires_at,
            url,
        }),
    ))
}
