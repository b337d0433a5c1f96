//! The `uploads` function: browsers upload files straight to S3 through presigned URLs;
//! this function only signs, reports and removes. It never carries file bytes (Lambda's
//! payload limit is 6 MB, and paying Lambda time to stream bytes is waste).
//!
//! Layout: [`signing`] validates an upload request (purpose, type, size), records it as
//! pending and presigns a PUT that binds the content type and length, so S3 itself
//! refuses anything else; [`files`] shows an upload, redirects to a short-lived
//! presigned GET once it is ready, and deletes it. The `upload-processor` function
//! checks each object that arrives and marks its upload ready or rejected.

pub mod files;
pub mod signing;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use shared::{
    identity::{
        guard::AuthState,
        throttle::{Limit, WriteLimit},
        tokens::TokenConfig,
    },
    outbound::{HttpsClient, https_client},
    uploads::{StorageConfig, presign::Presigner},
};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handlers share; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Access-token verification and session checks.
    pub auth: AuthState,
    /// Signs S3 URLs locally (SigV4), for browsers and for the one call made here.
    pub presigner: Arc<Presigner>,
    /// Sends the presigned `DELETE` of a removed upload.
    pub http: HttpsClient,
    /// Bucket and URL lifetimes.
    pub storage: Arc<StorageConfig>,
    /// Each user's budget of new uploads.
    pub writes: WriteLimit,
}

/// The default budget of new uploads per user: 30 a minute (`RATE_LIMIT_UPLOADS`).
pub const WRITES: WriteLimit = WriteLimit {
    bucket: "uploads",
    limit: Limit::per(30, 60),
};

impl AppState {
    /// Assembles the state.
    pub fn new(
        db: PgPool,
        config: &TokenConfig,
        presigner: Presigner,
        storage: Arc<StorageConfig>,
    ) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            presigner: Arc::new(presigner),
            http: https_client(),
            storage,
            writes: WRITES,
        }
    }
}

// Every route of the function, each declared once: a handler's `#[utoipa::path]` gives
// both its axum route (`routes()`) and its OpenAPI operation (`openapi()`); handlers that
// share a path are listed together. API Gateway sends this function `/api/v1/uploads` and `/api/v1/uploads/{proxy+}`.
shared::api_routes!(AppState, ApiDoc;
    [signing::create],
    [files::show, files::remove],
    [files::download],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let storage = StorageConfig::from_env()?;
    let presigner = Presigner::from_env(&storage)?;
    let state = AppState {
        writes: WriteLimit::from_env(WRITES.bucket, "RATE_LIMIT_UPLOADS", WRITES.limit)?,
        ..AppState::new(db, &TokenConfig::from_env()?, presigner, Arc::new(storage))
    };
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes().with_state(state)
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "uploads", description = "Direct-to-S3 uploads through presigned URLs")))]
pub struct ApiDoc;
