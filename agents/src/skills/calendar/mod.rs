//! The `calendar` skill: the person's calendars over CalDAV (read and write) and ICS feeds
//! (read-only). One tool with an `action`: `calendars`, `events`, `create`, `update`,
//! `delete`, `free`. Times without an offset are in the person's zone, and so is output.
//!
//! # Layout
//! - this file: the public types the kernel builds from `clawos.toml`, and the tool.
//! - `actions`: the actions, over `accounts` (naming and finding calendars).
//! - `caldav` (client, RFC 4791 over reqwest) and `xml` (WebDAV bodies, multistatus).
//! - `feed`: ICS feeds (http(s), file).
//! - `ics` (reading values), `expand` (occurrences in a range, recurrence with `rrule`),
//!   `write` (new and changed events), `vtimezone`, `times` (arguments and output),
//!   `free` (free slots), `error`.

mod accounts;
mod actions;
pub mod caldav;
pub mod error;
pub mod expand;
pub mod feed;
pub mod free;
pub mod ics;
pub mod times;
pub mod vtimezone;
pub mod write;
pub mod xml;

use async_trait::async_trait;
use serde_json::json;

use super::{Skill, SkillOutput};
use crate::provider::ToolSpec;
pub use accounts::{CalendarAccount, CalendarSource};
pub use error::CalendarError;

/// The `calendar` skill over the configured accounts.
pub struct CalendarSkill {
    accounts: accounts::Accounts,
}

impl CalendarSkill {
    /// The skill over `accounts`, reading and writing times in `zone` (the person's zone).
    pub fn new(accounts: Vec<CalendarAccount>, zone: chrono_tz::Tz) -> Self {
        CalendarSkill {
            accounts: accounts::Accounts::new(accounts, zone),
        }
    }
}

/// The tool's description.
const DESCRIPTION: &str = "Calendar: list calendars, events, create/update/delete, free time. Times: YYYY-MM-DDTHH:MM local, RFC 3339, or YYYY-MM-DD (all day; end is the last day).";

#[async_trait]
impl Skill for CalendarSkill {
    fn spec(&self) -> ToolSpec {
        let s = json!({"type": "string"});
        ToolSpec {
            name: "calendar".into(),
            description: DESCRIPTION.into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"enum": ["calendars", "events", "create", "update", "delete", "free"]},
                    "calendar": s, "from": s, "to": s, "uid": s, "summary": s,
                    "start": s, "end": s,
                    "duration": {"type": "integer", "description": "minutes"},
                    "location": s, "description": s,
                    "rrule": s,
                    "min_minutes": {"type": "integer"}
                },
                "required": ["action"]
            }),
        }
    }

    async fn call(&self, args: &serde_json::Value) -> SkillOutput {
        let result = match args.get("action").and_then(|v| v.as_str()) {
            Some("calendars") => actions::calendars(&self.accounts).await,
            Some("events") => actions::events(&self.accounts, args).await,
            Some("create") => actions::create(&self.accounts, args).await,
            Some("update") => actions::update(&self.accounts, args).await,
            Some("delete") => actions::delete(&self.accounts, args).await,
            Some("free") => actions::free(&self.accounts, args).await,
            other => Err(CalendarError::BadArgument(format!(
                "unknown action {other:?}; use calendars, events, create, update, delete or free"
            ))),
        };
        match result {
            Ok(text) => SkillOutput::ok(super::cap(text, 32 * 1024)),
            Err(e) => SkillOutput::err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_short() {
        let skill = CalendarSkill::new(Vec::new(), chrono_tz::UTC);
        let spec = skill.spec();
        let bytes = spec.description.len() + spec.parameters.to_string().len();
        assert!(bytes < 650, "description + schema are {bytes} bytes");
    }
}
