//! The error answer of every HTTP endpoint: a status and `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why an admin API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or not the admin token.
    #[error("missing or wrong admin token (see `clawos admin token`)")]
    Unauthorized,
    /// The request itself is wrong (a bad parameter or body).
    #[error("{0}")]
    BadRequest(String),
    /// What it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with the log (a branch name taken, a concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// Any storage or replay failure.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<clawos_replay::ReplayError> for ApiError {
    fn from(e: clawos_replay::ReplayError) -> Self {
        use clawos_replay::ReplayError as R;
        match e {
            R::BeyondHead { .. } | R::NotAMessage { .. } => ApiError::BadRequest(e.to_string()),
            R::NoSuchSession(_) => ApiError::NotFound(e.to_string()),
            R::BranchExists { .. } => ApiError::Conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::KernelError> for ApiError {
    fn from(e: crate::KernelError) -> Self {
        use crate::KernelError as K;
        match e {
            K::NotFound(m) => ApiError::NotFound(m),
            K::Contended(m) => ApiError::Conflict(m),
            K::Replay(r) => r.into(),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({"error": self.to_string()}))).into_response()
    }
}

/// The result of an admin endpoint.
pub type ApiResult<T> = Result<T, ApiError>;
