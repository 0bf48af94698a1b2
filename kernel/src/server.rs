//! The HTTP side of the Gateway: `/health`, `/metrics`, `/bus` and the JSON API.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clawos_projections::views;
use serde_json::json;

use crate::bus::bus_handler;
use crate::gateway::Gateway;

/// All routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/bus", get(bus_handler))
        .route("/ws", get(crate::ws::ws_handler))
        .route("/api/status", get(status))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", get(session))
        .route("/hooks/agent", axum::routing::post(hook_agent))
        .merge(crate::admin::routes())
        .with_state(gw)
}

/// True when the request carries the admin token (`Authorization: Bearer TOKEN`, compared
/// in constant time). A refusal is logged and counted in `clawos_auth_refused_total`.
fn authorized(gw: &Gateway, headers: &HeaderMap) -> bool {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let ok = crate::admin::auth::bearer_ok(header, &gw.admin_token);
    if !ok {
        tracing::warn!("HTTP request refused: missing or wrong admin token");
        gw.metrics.auth_refused("http");
    }
    ok
}

fn refuse() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "missing or wrong admin token (see `clawos admin token`)"})),
    )
        .into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

async fn health(State(gw): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(json!({"ok": true, "seq": gw.store.head(), "projected": gw.projected()}))
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> String {
    let backlog = gw.delivery_backlog().await;
    gw.metrics.render(gw.store.head(), backlog)
}

/// A `channels` row: name, kind, state, pid, starts, exits, last exit.
type ChannelRow = (
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    Option<String>,
);

/// Channel status rows as JSON.
pub async fn channel_status(gw: &Gateway) -> Result<serde_json::Value, sqlx::Error> {
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT channel, kind, state, pid, starts, exits, last_exit FROM channels ORDER BY channel",
    )
    .fetch_all(&gw.projections)
    .await?;
    Ok(json!(rows
        .into_iter()
        .map(|(channel, kind, state, pid, starts, exits, last_exit)| json!({
            "channel": channel, "kind": kind, "state": state, "pid": pid,
            "starts": starts, "exits": exits, "restarts": (starts - 1).max(0), "last_exit": last_exit
        }))
        .collect::<Vec<_>>()))
}

async fn status(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !authorized(&gw, &headers) {
        return refuse();
    }
    let channels = match channel_status(&gw).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    Json(json!({
        "seq": gw.store.head(),
        "projected": gw.projected(),
        "channels": channels,
        "delivery_backlog": gw.delivery_backlog().await,
    }))
    .into_response()
}

async fn sessions(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !authorized(&gw, &headers) {
        return refuse();
    }
    gw.projected_through(gw.store.head()).await;
    match views::load_sessions(&gw.projections).await {
        Ok(s) => Json(json!(s)).into_response(),
        Err(e) => failed(e),
    }
}

async fn session(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&gw, &headers) {
        return refuse();
    }
    gw.projected_through(gw.store.head()).await;
    match views::load_session(&gw.projections, &id).await {
        Ok(t) => Json(json!(clawos_replay::state_at::snapshot(&t))).into_response(),
        Err(e) => failed(e),
    }
}

/// Body of `POST /hooks/agent`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HookBody {
    /// What the agent is asked.
    text: String,
    /// Name of the hook (default `agent`).
    hook: Option<String>,
    /// Run in this session.
    session_id: Option<String>,
    /// Or in the current session of this identity (default `hook:NAME`).
    identity: Option<String>,
}

/// `POST /hooks/agent` (admin token): start a turn from an outside system.
async fn hook_agent(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&gw, &headers) {
        return refuse();
    }
    let b: HookBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("bad JSON body: {e}")})),
            )
                .into_response()
        }
    };
    if b.text.trim().is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "`text` must not be empty"})),
        )
            .into_response();
    }
    let hook = b.hook.unwrap_or_else(|| "agent".into());
    match gw.hook(&hook, b.session_id, b.identity, b.text).await {
        Ok((seq, session)) => Json(json!({"seq": seq, "session_id": session})).into_response(),
        Err(crate::KernelError::Config(m)) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": m}))).into_response()
        }
        Err(e) => failed(e),
    }
}
