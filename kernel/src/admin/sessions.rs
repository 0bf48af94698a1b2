//! Writes from the admin UI, both new branches of a session (history is never changed):
//!
//! - `POST /api/sessions/{id}/fork` `{"at": SEQ, "name"?: NAME, "switch"?: bool}`: one
//!   `BranchCreated` at a message, through the replay library's fork (the same event, with
//!   the same checks, as the `/fork` chat command and `clawos replay fork`). It does not
//!   switch the session's active branch unless asked to.
//! - `POST /api/sessions/{id}/replay` `{"at": SEQ}`: re-run the turn at a user message on a
//!   new branch `replay-SEQ` that starts at that message's parent: a `BranchCreated` and a
//!   copy of the message (channel [`REPLAY_CHANNEL`], caused by the original) commit
//!   together, then the Gateway dispatches a turn for the copy with today's agent and
//!   model. Its reply goes to [`REPLAY_CHANNEL`], so nobody on a chat network receives it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use clawos_events::{stream, BranchCreated, MessageReceived, NewEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::Admin;
use crate::api::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::commands::valid_branch_name;
use crate::gateway::Gateway;
use clawos_projections::views;

/// The channel of replayed messages and of their replies (no channel process has it).
pub const REPLAY_CHANNEL: &str = "@admin";

/// Body of `POST /api/sessions/{id}/fork`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkBody {
    /// The message to fork at.
    pub at: u64,
    /// Branch name (default `fork-SEQ`).
    pub name: Option<String>,
    /// Make it the session's active branch (default false).
    #[serde(default)]
    pub switch: bool,
}

/// Body of `POST /api/sessions/{id}/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The user message whose turn is re-run (an assistant message means the message it
    /// answered).
    pub at: u64,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))
}

/// `POST /api/sessions/{id}/fork`.
pub async fn fork(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Path(session): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let b: ForkBody = parse(&body)?;
    if let Some(n) = &b.name {
        if !valid_branch_name(n) {
            return Err(ApiError::BadRequest(
                "a branch name is 1-64 letters, digits, `-`, `_` or `.`".into(),
            ));
        }
    }
    let (appended, branch) =
        clawos_replay::fork::fork(gw.log(), &session, b.at, b.name.as_deref(), b.switch).await?;
    gw.projected_through(appended.last_seq).await;
    Ok(Json(json!({"branch": branch, "seq": appended.last_seq})))
}

/// A live message with its session (`None`: `seq` is not a message).
async fn message(gw: &Gateway, seq: u64) -> ApiResult<Option<(String, views::MessageView)>> {
    views::message(gw.read_models(), seq)
        .await
        .map_err(ApiError::internal)
}

/// `POST /api/sessions/{id}/replay`.
pub async fn replay(
    _: Admin,
    State(gw): State<Arc<Gateway>>,
    Path(session): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let b: ReplayBody = parse(&body)?;
    gw.projected_through(gw.log().head()).await;
    let not_here =
        || ApiError::BadRequest(format!("{} is not a message of session {session}", b.at));
    let mut at = b.at;
    let mut row = message(&gw, at).await?.ok_or_else(not_here)?;
    if row.1.role == "assistant" {
        at = row.1.parent_seq.ok_or_else(not_here)?;
        row = message(&gw, at).await?.ok_or_else(not_here)?;
    }
    let (owner, m) = row;
    if owner != session || m.role != "user" {
        return Err(not_here());
    }
    let (parent, address, text) = (m.parent_seq, m.address, m.text);
    let (_, agent) = views::session_owner(gw.read_models(), &session)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no session {session}")))?;
    let original = gw
        .log()
        .get(at)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_here)?;
    // The branch name is chosen against the session at its version and appended only if
    // the session did not move meanwhile.
    let (pool, sid, original, address, text) =
        (gw.read_models(), &session, &original, &address, &text);
    let decided = gw
        .decide_and_append(&stream::session(&session), move || async move {
            let taken: Vec<String> = views::load_branches(pool, sid)
                .await?
                .into_iter()
                .map(|b| b.name)
                .collect();
            let branch = (1..)
                .map(|n| match n {
                    1 => format!("replay-{at}"),
                    n => format!("replay-{at}-{n}"),
                })
                .find(|name| !taken.contains(name))
                .unwrap_or_else(|| format!("replay-{at}"));
            let events = vec![
                NewEvent::new(BranchCreated {
                    branch: branch.clone(),
                    at_message: parent,
                    switch_to: false,
                })
                .caused_by(original.id),
                NewEvent::new(MessageReceived {
                    channel: REPLAY_CHANNEL.to_string(),
                    external_id: format!("replay-{}", uuid::Uuid::now_v7()),
                    sender: address.clone(),
                    chat: None,
                    text: text.clone(),
                    attachments: vec![],
                    branch: branch.clone(),
                    sent_at_ms: now_ms(),
                    addressed: true,
                })
                .caused_by(original.id),
            ];
            Ok::<_, crate::KernelError>((events, branch))
        })
        .await
        .map_err(ApiError::internal)?;
    let Some((branch, Some(appended))) = decided else {
        return Err(ApiError::Conflict(format!(
            "session {session} kept changing; try again"
        )));
    };
    gw.dispatch(&session, &agent, appended.last_seq);
    Ok(Json(json!({
        "branch": branch,
        "message_seq": appended.last_seq,
        "replays": at,
    })))
}
