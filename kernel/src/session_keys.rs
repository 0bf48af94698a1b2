//! Session keys: how `/ws` clients name a session, the same way in every method and event.
//!
//! A session belongs to an owner identity and an agent, so its key is
//! `agent:<agent>:<owner>` (OpenClaw's canonical form). `main` (or an empty key) is the
//! operator's own conversation with the default agent, `agent:<default>:main`; any other
//! key without the `agent:` prefix names an owner of the default agent. The key exists
//! before its session does: the first message sent to it opens the session.

/// The owner of the operator's own conversation.
pub const MAIN: &str = "main";

/// A parsed session key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The agent.
    pub agent: String,
    /// The owner identity (a person's identity, a group's, or an operator-chosen name).
    pub owner: String,
}

impl SessionKey {
    /// The canonical form, `agent:<agent>:<owner>`.
    pub fn canonical(&self) -> String {
        key_of(&self.agent, &self.owner)
    }
}

/// The key of the session of `owner` with `agent`.
pub fn key_of(agent: &str, owner: &str) -> String {
    format!("agent:{agent}:{owner}")
}

/// Parse `key`, the default agent filling in for keys without one.
pub fn parse(key: &str, default_agent: &str) -> Result<SessionKey, String> {
    let key = key.trim();
    if key.len() > 512 {
        return Err("sessionKey is longer than 512 characters".into());
    }
    if key.is_empty() || key == MAIN {
        return Ok(SessionKey {
            agent: default_agent.to_string(),
            owner: MAIN.to_string(),
        });
    }
    let Some(rest) = key.strip_prefix("agent:") else {
        return Ok(SessionKey {
            agent: default_agent.to_string(),
            owner: key.to_string(),
        });
    };
    match rest.split_once(':') {
        Some((agent, owner)) if !agent.is_empty() && !owner.is_empty() => Ok(SessionKey {
            agent: agent.to_ascii_lowercase(),
            owner: owner.to_string(),
        }),
        _ => Err(format!(
            "sessionKey {key} is not agent:<agent>:<owner> (for example agent:{default_agent}:main)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_canonical_keys_name_the_same_session() {
        let main = parse("main", "pi").unwrap();
        assert_eq!(main.canonical(), "agent:pi:main");
        assert_eq!(parse("", "pi").unwrap(), main);
        assert_eq!(parse("agent:pi:main", "pi").unwrap(), main);
        assert_eq!(parse("agent:PI:main", "pi").unwrap(), main);
        let person = parse("agent:echo:telegram:42@telegram", "pi").unwrap();
        assert_eq!(person.agent, "echo");
        assert_eq!(person.owner, "telegram:42@telegram");
        assert_eq!(person.canonical(), "agent:echo:telegram:42@telegram");
        assert_eq!(parse("alice", "pi").unwrap().canonical(), "agent:pi:alice");
        assert!(parse("agent:pi", "pi").is_err());
        assert!(parse("agent::x", "pi").is_err());
        assert!(parse(&"x".repeat(600), "pi").is_err());
    }
}
