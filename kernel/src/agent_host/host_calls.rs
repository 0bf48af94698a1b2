//! The Gateway's services an agent process asks for during a turn, answered through the
//! turn's recorder exactly as an in-process agent's calls are.

use std::collections::HashSet;

use clawos_agents::remote::protocol::{HostCall, HostValue};
use clawos_agents::TurnRecorder;

/// Most memories one recall returns to an agent process.
pub const MAX_RECALL: u32 = 100;

/// What `call` changes that would happen twice if its turn ran again; `None` for calls
/// that only read (or store content-addressed media, which is idempotent).
pub fn effect_of(call: &HostCall) -> Option<&'static str> {
    match call {
        HostCall::Remember { .. } => Some("a memory was written"),
        HostCall::Forget { .. } => Some("a memory was forgotten"),
        HostCall::Schedule { .. } => Some("a job was scheduled"),
        HostCall::CancelCron { .. } => Some("a job was cancelled"),
        HostCall::Approve { .. } => Some("a person was asked to approve"),
        HostCall::InvokeNode { .. } => Some("a node ran a command"),
        HostCall::SessionCommand { .. } => Some("a session command ran"),
        HostCall::Recall { .. }
        | HostCall::CronJobs
        | HostCall::Nodes
        | HostCall::NodesOffering { .. }
        | HostCall::StoreMedia { .. }
        | HostCall::LoadMedia { .. } => None,
    }
}

/// Answer `call` for the turn `recorder` records. `media` holds the blake3 of the files
/// this turn may read: those it was given and those it stored.
pub async fn answer(
    recorder: &dyn TurnRecorder,
    call: HostCall,
    media: &mut HashSet<String>,
) -> Result<HostValue, String> {
    let value = match call {
        HostCall::Remember { text, tags } => {
            recorder.remember(&text, &tags).await.map(HostValue::Id)
        }
        HostCall::Forget { id } => recorder.forget(id).await.map(HostValue::Bool),
        HostCall::Recall { query, limit } => recorder
            .recall(&query, limit.min(MAX_RECALL) as usize)
            .await
            .map(|r| HostValue::Recalled(r.into_iter().map(Into::into).collect())),
        HostCall::Schedule { schedule, prompt } => recorder
            .schedule(&schedule, &prompt)
            .await
            .map(HostValue::Id),
        HostCall::CronJobs => recorder.cron_jobs().await.map(HostValue::Lines),
        HostCall::CancelCron { id } => recorder.cancel_cron(id).await.map(HostValue::Bool),
        HostCall::Approve { action } => recorder.approve(&action).await.map(HostValue::Bool),
        HostCall::Nodes => recorder.nodes().await.map(HostValue::Lines),
        HostCall::NodesOffering { command } => {
            Ok(HostValue::Lines(recorder.nodes_offering(&command).await))
        }
        HostCall::InvokeNode {
            node,
            command,
            params,
        } => {
            let params = serde_json::from_str(&params)
                .map_err(|e| format!("the parameters are not JSON: {e}"))?;
            recorder
                .invoke_node(&node, &command, params)
                .await
                .map(HostValue::Text)
        }
        HostCall::SessionCommand { command } => recorder
            .session_command(&command)
            .await
            .map(HostValue::Text),
        HostCall::StoreMedia { name, mime, bytes } => {
            let stored = recorder.store_media(&name, &mime, bytes).await;
            if let Some(hash) = stored.as_ref().ok().and_then(|a| a.blake3.clone()) {
                media.insert(hash);
            }
            stored.map(HostValue::Attachment)
        }
        HostCall::LoadMedia { attachment } => {
            // Only files of this turn: a hash guessed or kept from another person's
            // conversation reads nothing.
            if !attachment
                .blake3
                .as_ref()
                .is_some_and(|h| media.contains(h))
            {
                return Err(format!("{} is not a file of this turn", attachment.name));
            }
            recorder.load_media(&attachment).await.map(HostValue::Bytes)
        }
    };
    value.map_err(|e| e.to_string())
}
