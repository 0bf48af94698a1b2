//! The admin token check, as an extractor: a handler that takes [`Admin`] runs only for a
//! request carrying `Authorization: Bearer <admin token>` (compared in constant time).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::gateway::Gateway;
use crate::tokens;

/// Proof that the request carried the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

/// Whether `header` (the `Authorization` value) is `Bearer <token>` for the admin token.
pub fn bearer_ok(header: Option<&str>, admin_token: &str) -> bool {
    header
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| tokens::same(t.trim(), admin_token))
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
        if bearer_ok(header, &gw.admin_token) {
            Ok(Admin)
        } else {
            tracing::warn!(path = %parts.uri.path(), "admin API request refused: missing or wrong admin token");
            gw.metrics.auth_refused("admin");
            Err(ApiError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let t = "a".repeat(64);
        assert!(bearer_ok(Some(&format!("Bearer {t}")), &t));
        assert!(!bearer_ok(Some(&t), &t));
        assert!(!bearer_ok(Some("Bearer "), &t));
        assert!(!bearer_ok(Some(&format!("Bearer {}", "b".repeat(64))), &t));
        assert!(!bearer_ok(None, &t));
    }
}
