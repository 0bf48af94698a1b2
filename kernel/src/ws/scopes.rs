//! Roles and scopes: who may call which method and receive which event.
//!
//! `operator.admin` satisfies every operator scope; `operator.write` satisfies
//! `operator.read`. Node methods need the `node` role, every other method the `operator`
//! role.

/// Read sessions, history, status, nodes, logs.
pub const READ: &str = "operator.read";
/// Send messages, abort runs, invoke nodes, patch sessions.
pub const WRITE: &str = "operator.write";
/// Everything, including resets, deletes and the configuration.
pub const ADMIN: &str = "operator.admin";
/// Answer approval requests.
pub const APPROVALS: &str = "operator.approvals";
/// Answer device pairing requests, rotate and revoke device tokens.
pub const PAIRING: &str = "operator.pairing";

/// The operator scopes this Gateway knows.
pub const OPERATOR_SCOPES: &[&str] = &[READ, WRITE, ADMIN, APPROVALS, PAIRING];

/// A connection's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A control-plane client: CLI, Control UI, companion app, automation.
    Operator,
    /// A capability host: answers `node.invoke` (camera, canvas, location, ...).
    Node,
}

impl Role {
    /// Parse `operator` or `node`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "node" => Some(Role::Node),
            _ => None,
        }
    }

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Node => "node",
        }
    }
}

/// What calling a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any connection.
    Anyone,
    /// The operator role and this scope.
    Operator(&'static str),
    /// The node role.
    Node,
}

/// Every method, with what it needs.
pub const METHODS: &[(&str, Need)] = &[
    ("health", Need::Anyone),
    ("status", Need::Operator(READ)),
    ("system-presence", Need::Operator(READ)),
    ("agents.list", Need::Operator(READ)),
    ("config.get", Need::Operator(READ)),
    ("logs.tail", Need::Operator(READ)),
    ("sessions.list", Need::Operator(READ)),
    ("sessions.patch", Need::Operator(WRITE)),
    ("sessions.reset", Need::Operator(ADMIN)),
    ("sessions.delete", Need::Operator(ADMIN)),
    ("chat.send", Need::Operator(WRITE)),
    ("chat.history", Need::Operator(READ)),
    ("chat.abort", Need::Operator(WRITE)),
    ("agent", Need::Operator(WRITE)),
    ("exec.approval.list", Need::Operator(APPROVALS)),
    ("exec.approval.resolve", Need::Operator(APPROVALS)),
    ("device.pair.list", Need::Operator(PAIRING)),
    ("device.pair.approve", Need::Operator(PAIRING)),
    ("device.pair.reject", Need::Operator(PAIRING)),
    ("device.pair.remove", Need::Operator(PAIRING)),
    ("device.token.rotate", Need::Operator(PAIRING)),
    ("device.token.revoke", Need::Operator(PAIRING)),
    ("node.list", Need::Operator(READ)),
    ("node.describe", Need::Operator(READ)),
    ("node.invoke", Need::Operator(WRITE)),
    ("node.invoke.result", Need::Node),
    ("node.event", Need::Node),
    ("events.subscribe", Need::Operator(ADMIN)),
];

/// Events this Gateway sends.
pub const EVENTS: &[&str] = &[
    "connect.challenge",
    "chat",
    "agent",
    "presence",
    "tick",
    "shutdown",
    "exec.approval.requested",
    "exec.approval.resolved",
    "device.pair.requested",
    "device.pair.resolved",
    "node.invoke.request",
    "node.event",
    "log",
];

/// What `method` needs, or `None` for an unknown method.
pub fn need_of(method: &str) -> Option<Need> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, n)| *n)
}

/// Whether `held` satisfies `scope`.
pub fn satisfies(held: &[String], scope: &str) -> bool {
    held.iter()
        .any(|h| h == scope || h == ADMIN || (h == WRITE && scope == READ))
}

/// The scope an event needs (`None`: every operator and node gets it).
pub fn event_scope(event: &str) -> Option<&'static str> {
    match event {
        "tick" | "shutdown" | "health" => None,
        "exec.approval.requested" | "exec.approval.resolved" => Some(APPROVALS),
        "device.pair.requested" | "device.pair.resolved" => Some(PAIRING),
        "log" => Some(ADMIN),
        _ => Some(READ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_satisfies_all_and_write_satisfies_read() {
        let admin = vec![ADMIN.to_string()];
        let write = vec![WRITE.to_string()];
        let read = vec![READ.to_string()];
        for s in OPERATOR_SCOPES {
            assert!(satisfies(&admin, s));
        }
        assert!(satisfies(&write, READ));
        assert!(!satisfies(&read, WRITE));
        assert!(!satisfies(&write, PAIRING));
        assert!(!satisfies(&[], READ));
    }

    #[test]
    fn every_method_has_one_need() {
        let mut names: Vec<&str> = METHODS.iter().map(|(m, _)| *m).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
        assert_eq!(need_of("chat.send"), Some(Need::Operator(WRITE)));
        assert_eq!(need_of("node.invoke.result"), Some(Need::Node));
        assert_eq!(need_of("nope"), None);
    }
}
