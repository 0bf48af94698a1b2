//! Approvals: an agent's action that waits for a person (`ApprovalRequested` in the
//! `approvals` stream) and the answer (`ApprovalAnswered`). The first answer wins by its
//! dedupe key, so a CLI answer and a timeout cannot both count.

use std::time::Duration;

use uuid::Uuid;

/// How long a turn waits for a person to approve an action.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(240);

/// The dedupe key of an approval's answer: the first answer is the only one.
pub fn approval_key(id: Uuid) -> String {
    format!("approval\u{1f}{id}")
}
