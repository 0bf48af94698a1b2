//! A channel's saved position in its service (a Matrix sync token, the last IMAP UID, an
//! XMPP archive id), kept in the channel's own folder of the state folder so a restarted
//! process catches up from where the last one stopped.
//!
//! Save a position only after the kernel acked every message before it: the Gateway
//! deduplicates by external id, so a position saved late re-posts a message (logged once)
//! and never skips one.

use std::path::PathBuf;

use super::AdapterError;
use crate::protocol::ENV_CHANNEL_STATE_DIR;

/// One named position, in `STATE/channels/NAME/FILE`.
#[derive(Debug, Clone)]
pub struct Cursor {
    path: Option<PathBuf>,
}

impl Cursor {
    /// The cursor `file` in the folder the Gateway gave this process; without one (a
    /// channel run by hand), positions live only as long as the process.
    pub fn from_env(file: &str) -> Self {
        Cursor {
            path: std::env::var_os(ENV_CHANNEL_STATE_DIR).map(|d| PathBuf::from(d).join(file)),
        }
    }

    /// A cursor at an explicit path.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Cursor {
            path: Some(path.into()),
        }
    }

    /// The saved position, if any.
    pub fn load(&self) -> Option<String> {
        let path = self.path.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }

    /// Save `position` (written to a temporary file and renamed: a crash keeps the old one).
    pub fn save(&self, position: &str) -> Result<(), AdapterError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let fail = |e: std::io::Error| {
            AdapterError::Config(format!(
                "cannot save the position in {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, position).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_position_is_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cursor::at(dir.path().join("chan").join("sync"));
        assert_eq!(c.load(), None);
        c.save("s72_1").unwrap();
        c.save("s73_1").unwrap();
        assert_eq!(c.load().as_deref(), Some("s73_1"));
        assert_eq!(Cursor { path: None }.load(), None);
    }
}
