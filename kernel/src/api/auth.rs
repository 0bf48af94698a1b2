//! The admin token check, as an extractor: a handler that takes [`Admin`] runs only for a
//! request carrying `Authorization: Bearer <admin token>` (compared in constant time). It
//! is the only check of the admin token over HTTP (`/api`, `/hooks`, the admin UI's data);
//! `/ws` checks the same token in its `connect` frame through [`Gateway::admits_admin`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::gateway::Gateway;

/// Proof that the request carried the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<Gateway>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if bearer(header).is_some_and(|t| gw.admits_admin(t)) {
            Ok(Admin)
        } else {
            tracing::warn!(path = %parts.uri.path(), "HTTP request refused: missing or wrong admin token");
            gw.metrics().auth_refused("http");
            Err(ApiError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_header_carries_a_token() {
        let t = "a".repeat(64);
        assert_eq!(bearer(Some(&format!("Bearer {t}"))), Some(t.as_str()));
        assert_eq!(bearer(Some(&t)), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("bearer abc")), None);
        assert_eq!(bearer(None), None);
    }
}
