//! The media store: the bytes of attachments, named by their blake3 hash, in the state
//! folder (`STATE/media/ab/abcdef…`). Events carry the hash, type, size and name; the bytes
//! never enter the log.
//!
//! Channel processes and the Gateway share the store: a channel puts what a person sent
//! before it posts the message, and reads what an agent sends back. A write goes to a
//! temporary file first and is renamed into place, so a reader never sees half a blob and
//! a crash leaves only a temporary file. Writing the same bytes twice is one blob.

use std::io::Write;
use std::path::{Path, PathBuf};

use clawos_events::Attachment;

/// Environment variable carrying the media store's folder to a channel process.
pub const ENV_MEDIA_DIR: &str = "CLAWOS_MEDIA_DIR";
/// Environment variable carrying the largest attachment a channel keeps, in bytes.
pub const ENV_MEDIA_MAX_BYTES: &str = "CLAWOS_MEDIA_MAX_BYTES";
/// The default size cap of one attachment (25 MiB, what most messengers let a person send).
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// Errors of the media store.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The attachment is larger than the cap.
    #[error("{name} is {size} bytes, above the {cap}-byte cap on attachments")]
    TooLarge {
        /// File name.
        name: String,
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// An event names a blob the store does not hold.
    #[error(
        "the media store has no blob {0} (deleted, or the state folder was copied without media/)"
    )]
    Missing(String),
    /// Not a blake3 hash (64 lowercase hex digits).
    #[error("{0:?} is not a blake3 hash")]
    BadHash(String),
    /// The store could not be read or written.
    #[error("media store {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A content-addressed blob store in one folder.
#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
    max_bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MediaError + '_ {
    move |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `hash` looks like a blake3 hex digest (and so is safe as a file name).
pub fn is_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl MediaStore {
    /// The store in `dir`, refusing blobs above `max_bytes`. Nothing is created until the
    /// first write.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        MediaStore {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// The store a channel process was given by the Gateway (`CLAWOS_MEDIA_DIR`), if any.
    pub fn from_env() -> Option<Self> {
        let dir = std::env::var_os(ENV_MEDIA_DIR)?;
        let max = std::env::var(ENV_MEDIA_MAX_BYTES)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_BYTES);
        Some(MediaStore::new(PathBuf::from(dir), max))
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size cap of one blob.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the blob `hash` lives (whether or not it exists).
    pub fn path_of(&self, hash: &str) -> Result<PathBuf, MediaError> {
        if !is_hash(hash) {
            return Err(MediaError::BadHash(hash.to_string()));
        }
        Ok(self.dir.join(&hash[..2]).join(hash))
    }

    /// Check a size against the cap before reading the bytes.
    pub fn check_size(&self, name: &str, size: u64) -> Result<(), MediaError> {
        if size > self.max_bytes {
            return Err(MediaError::TooLarge {
                name: name.to_string(),
                size,
                cap: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Keep `bytes` and describe them as an attachment named `name` of type `mime`.
    pub fn put(
        &self,
        name: &str,
        mime: Option<&str>,
        bytes: &[u8],
    ) -> Result<Attachment, MediaError> {
        self.check_size(name, bytes.len() as u64)?;
        let hash = blake3::hash(bytes).to_hex().to_string();
        let path = self.path_of(&hash)?;
        if !path.exists() {
            let folder = path.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(folder).map_err(io(folder))?;
            let mut tmp = tempfile_in(folder)?;
            tmp.1.write_all(bytes).map_err(io(&tmp.0))?;
            tmp.1.sync_all().map_err(io(&tmp.0))?;
            std::fs::rename(&tmp.0, &path).map_err(io(&path))?;
        }
        Ok(Attachment {
            name: name.to_string(),
            mime: mime.map(String::from),
            size: bytes.len() as u64,
            blake3: Some(hash),
            location: None,
        })
    }

    /// The bytes of the blob `hash`, checked against the hash.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>, MediaError> {
        let path = self.path_of(hash)?;
        let bytes = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MediaError::Missing(hash.to_string()))
            }
            r => r.map_err(io(&path))?,
        };
        if blake3::hash(&bytes).to_hex().as_str() != hash {
            // A damaged blob is as good as a missing one; say which.
            return Err(MediaError::Missing(format!(
                "{hash} (its bytes do not match)"
            )));
        }
        Ok(bytes)
    }

    /// Whether the store holds `hash`.
    pub fn contains(&self, hash: &str) -> bool {
        self.path_of(hash).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Every blob the store holds: its hash, size and last change.
    pub fn list(&self) -> Result<Vec<StoredBlob>, MediaError> {
        let mut out = Vec::new();
        let top = match std::fs::read_dir(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            r => r.map_err(io(&self.dir))?,
        };
        for fan in top {
            let fan = fan.map_err(io(&self.dir))?.path();
            if !fan.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&fan).map_err(io(&fan))? {
                let entry = entry.map_err(io(&fan))?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !is_hash(&name) {
                    continue;
                }
                let meta = entry.metadata().map_err(io(&entry.path()))?;
                out.push(StoredBlob {
                    hash: name,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
        out.sort_by(|a, b| a.hash.cmp(&b.hash));
        Ok(out)
    }

    /// Delete the blob `hash` (nothing if it is not there).
    pub fn remove(&self, hash: &str) -> Result<(), MediaError> {
        let path = self.path_of(hash)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }
}

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its blake3 hash.
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written.
    pub modified: Option<std::time::SystemTime>,
}

/// A fresh temporary file in `folder` (removed by the rename, or left for `media gc`).
fn tempfile_in(folder: &Path) -> Result<(PathBuf, std::fs::File), MediaError> {
    let path = folder.join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io(&path))?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(cap: u64) -> (tempfile::TempDir, MediaStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = MediaStore::new(dir.path().join("media"), cap);
        (dir, s)
    }

    #[test]
    fn the_same_bytes_are_one_blob_named_by_their_hash() {
        let (_d, s) = store(1024);
        let a = s
            .put("a.png", Some("image/png"), b"\x89PNG pixels")
            .unwrap();
        let b = s.put("copy.png", None, b"\x89PNG pixels").unwrap();
        assert_eq!(a.blake3, b.blake3);
        assert_eq!(a.size, 11);
        let hash = a.blake3.unwrap();
        assert_eq!(hash, blake3::hash(b"\x89PNG pixels").to_hex().as_str());
        assert_eq!(s.get(&hash).unwrap(), b"\x89PNG pixels");
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn above_the_cap_is_a_clear_error_and_nothing_is_kept() {
        let (_d, s) = store(4);
        let e = s.put("big.bin", None, b"12345").unwrap_err();
        assert_eq!(
            e.to_string(),
            "big.bin is 5 bytes, above the 4-byte cap on attachments"
        );
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn a_missing_or_damaged_blob_is_reported() {
        let (_d, s) = store(1024);
        let hash = s.put("x", None, b"data").unwrap().blake3.unwrap();
        std::fs::write(s.path_of(&hash).unwrap(), b"other").unwrap();
        assert!(matches!(s.get(&hash), Err(MediaError::Missing(_))));
        s.remove(&hash).unwrap();
        assert!(matches!(s.get(&hash), Err(MediaError::Missing(_))));
        assert!(matches!(
            s.get("../../etc/passwd"),
            Err(MediaError::BadHash(_))
        ));
    }
}
