//! The one error type of the HTTP boundary, rendered as RFC 9457 problem details.
//!
//! Every handler returns `Result<_, ApiError>`. Expected failures carry a status and a
//! message meant for the client; unexpected ones (`sqlx`, `anyhow`) become a generic
//! 500 whose body names only the request id, while the full error chain goes to the log.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::telemetry::current_request_id;

/// The `Content-Type` of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request, as listed in a 422's `errors`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name (JSON pointer-ish path such as `email` or `tags/3`).
    pub field: String,
    /// A stable, machine-readable code (`required`, `too_long`, `invalid_format`, ...).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// The body of every error response (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` means "see the status".
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field validation failures (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, bad cursor).
    #[error("{0}")]
    BadRequest(String),
    /// Credentials missing or invalid. The message is deliberately generic.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated but not allowed.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// Not allowed, for a reason the caller can act on.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// No such resource for this caller (also used for other users' resources).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No route for this method and path.
    #[error("no route for {0}")]
    NoRoute(String),
    /// The path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The resource exists only in a form the request's `Accept-*` headers refuse.
    #[error("{0}")]
    NotAcceptable(&'static str),
    /// The request conflicts with current state (duplicate email).
    #[error("{0}")]
    Conflict(String),
    /// The resource existed but is gone for good.
    #[error("{0}")]
    Gone(String),
    /// A conditional request's precondition (`If-Match`) does not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is larger than this API accepts.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but invalid input.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The body is JSON of the wrong shape (wrong type, missing field).
    #[error("{0}")]
    Unprocessable(String),
    /// Too many attempts (rate limit or account lockout); retry after this many seconds.
    #[error("too many requests; retry later")]
    TooManyRequests {
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after: u64,
    },
    /// A dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A bug or an unexpected failure; details go to the log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// Builds a 422 for a single field.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Builds the problem body. Internal errors say nothing about their cause.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Internal(_) => {
                Some("an unexpected error occurred; quote the request id when reporting it".into())
            }
            other => Some(other.to_string()),
        };
        let errors = match self {
            Self::Validation(errors) => errors.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
            request_id: current_request_id(),
            errors,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            // The pool could not hand out a connection in time: the database is down
            // or waking from scale-to-zero. Tell the client to retry, not that we broke.
            sqlx::Error::PoolTimedOut => {
                Self::Unavailable("the database is unavailable; retry shortly")
            }
            // Two requests locked the same rows in opposite orders (rare: e.g. a refresh
            // while the account is being deleted); Postgres aborted one. Nothing was
            // written; retrying succeeds.
            sqlx::Error::Database(ref e)
                if matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                Self::Unavailable("a concurrent change got in the way; retry")
            }
            other => Self::Internal(anyhow::Error::new(other).context("database error")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(err) => tracing::error!(error = ?err, "request failed"),
            Self::Unavailable(_) => tracing::warn!(error = %self, "dependency unavailable"),
            // Client errors may quote the client's input (serde messages do): log the
            // status only, so a mistyped password never reaches the logs.
            _ => tracing::debug!(status = self.status().as_u16(), "request refused"),
        }
        let status = self.status();
        let mut response = (status, Json(self.problem())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::TooManyRequests { retry_after } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        }
        response
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
