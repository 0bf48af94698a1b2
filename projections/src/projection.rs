//! The registry of every read model (`all`, `names`, `select`). The trait they implement
//! is [`Projection`], defined in `fold.rs`.

pub use crate::fold::Projection;
use crate::ProjectionError;

/// A fresh instance of every projection, in a fixed order.
pub fn all() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(crate::identities::Identities),
        Box::new(crate::sessions::Sessions::default()),
        Box::new(crate::bindings::Bindings),
        Box::new(crate::channels::Channels::default()),
        Box::new(crate::agent_processes::AgentProcesses::default()),
        Box::new(crate::deliveries::Deliveries),
        Box::new(crate::audit::Audit::default()),
        Box::new(crate::cron::Cron::default()),
        Box::new(crate::memories::Memories),
        Box::new(crate::pairing::Pairing::default()),
        Box::new(crate::approvals::Approvals::default()),
        Box::new(crate::devices::Devices::default()),
        Box::new(crate::usage::Usage::default()),
        Box::new(crate::canvas::Canvas),
    ]
}

/// Names of every projection.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

/// Fresh instances of the named projections (all of them for `None`).
pub fn select(names: Option<&[String]>) -> Result<Vec<Box<dyn Projection>>, ProjectionError> {
    let mut chosen = all();
    if let Some(names) = names {
        for n in names {
            if !chosen.iter().any(|p| p.name() == n) {
                return Err(ProjectionError::UnknownProjection(
                    n.clone(),
                    self::names().join(", "),
                ));
            }
        }
        chosen.retain(|p| names.iter().any(|n| n == p.name()));
    }
    Ok(chosen)
}
