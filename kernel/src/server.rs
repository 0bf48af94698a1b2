//! The HTTP side of the Gateway: `/health`, `/metrics`, `/bus`, `/ws`, the status,
//! session and usage endpoints, `POST /hooks/agent`, and the admin routes. Every endpoint but
//! `/health` and `/metrics` takes the [`Admin`] extractor and answers errors as
//! [`ApiError`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use clawos_projections::views;
use serde_json::{json, Value};

use crate::api::auth::Admin;
use crate::api::error::{ApiError, ApiResult};
use crate::bus::bus_handler;
use crate::gateway::Gateway;

/// All routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/bus", get(bus_handler))
        .route("/ws", get(crate::ws::connection::ws_handler))
        .route("/api/status", get(status))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", get(session))
        .route("/api/usage", get(usage))
        .route("/hooks/agent", post(hook_agent))
        .merge(crate::admin::routes())
        .merge(crate::app::routes())
        .with_state(gw)
}

async fn health(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(json!({"ok": true, "seq": gw.log().head(), "projected": gw.projected()}))
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> String {
    let backlog = gw.delivery_backlog().await;
    gw.metrics().render(gw.log().head(), backlog)
}

/// What `/api/status` and the `/ws` `status` method answer: the log's head, the read
/// models' position, each channel and agent process, and the delivery backlog.
pub async fn status_of(gw: &Gateway) -> Result<Value, ApiError> {
    let channels = views::channel_status(gw.read_models())
        .await
        .map_err(ApiError::internal)?;
    let agents = views::agent_process_status(gw.read_models())
        .await
        .map_err(ApiError::internal)?;
    Ok(json!({
        "seq": gw.log().head(),
        "projected": gw.projected(),
        "channels": channels,
        "agents": agents,
        "delivery_backlog": gw.delivery_backlog().await,
    }))
}

async fn status(State(gw): State<Arc<Gateway>>, _: Admin) -> ApiResult<Json<Value>> {
    Ok(Json(status_of(&gw).await?))
}

async fn sessions(State(gw): State<Arc<Gateway>>, _: Admin) -> ApiResult<Json<Value>> {
    gw.projected_through(gw.log().head()).await;
    let s = views::load_sessions(gw.read_models())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!(s)))
}

async fn session(
    State(gw): State<Arc<Gateway>>,
    _: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    gw.projected_through(gw.log().head()).await;
    let t = views::load_session(gw.read_models(), &id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!(clawos_replay::state_at::snapshot(&t))))
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
    _: Admin,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let b: HookBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))?;
    if b.text.trim().is_empty() {
        return Err(ApiError::BadRequest("`text` must not be empty".into()));
    }
    let hook = b.hook.unwrap_or_else(|| "agent".into());
    let (seq, session) = gw.hook(&hook, b.session_id, b.identity, b.text).await?;
    Ok(Json(json!({"seq": seq, "session_id": session})))
}

/// `GET /api/usage?by=agent|session|identity|model&since_ms=MS`: tokens and cost per group
/// (default: by agent, since the start of this month, UTC), with the budgets in force.
async fn usage(
    State(gw): State<Arc<Gateway>>,
    _: Admin,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let by = crate::usage::usage_key(q.get("by").map(String::as_str).unwrap_or("agent"))
        .map_err(ApiError::BadRequest)?;
    let since_ms = match q.get("since_ms") {
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest(format!("since_ms = `{v}`: expected ms")))?,
        None => crate::usage::Period::Month.bounds(crate::clock::now_ms()).0,
    };
    gw.projected_through(gw.log().head()).await;
    let prices = crate::usage::PriceTable::new(&gw.config().prices);
    let lines = crate::usage::report(gw.read_models(), &prices, since_ms, by)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "since_ms": since_ms,
        "lines": lines,
        "budgets": gw.config().budgets,
    })))
}
