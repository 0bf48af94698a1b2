//! `clawos backup PATH` and `clawos restore PATH`.
//!
//! A backup is a folder: a consistent snapshot of the log and of the vault, each taken by
//! SQLite in one read transaction (`VACUUM INTO`) while the Gateway goes on writing, the
//! configuration, the media store, the TLS certificate and the channels' own state, and a
//! manifest (`backup.json`) with every file's blake3. The projections are not in it: a
//! restore rebuilds them from the log. The vault's key is not in it either unless asked
//! (`--include-key`): it stays in the OS keychain or its key file.
//!
//! A restore checks the manifest, copies the files into an empty state folder, verifies
//! the log's hash chain (undoing the copy if it breaks), then rebuilds every projection.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clawos_events::{Durability, LogStore};
use clawos_kernel::vault::keystore::{self, FileStore, KeyStore, Slot};
use clawos_replay::{rebuild, Home};
use serde::{Deserialize, Serialize};

/// The manifest's file name.
pub const MANIFEST: &str = "backup.json";
/// The manifest's format version.
pub const FORMAT: u32 = 1;
/// Folders copied as they are (their files are never rewritten in place, or belong to a
/// channel process).
const FOLDERS: [&str; 3] = ["media", "tls", "channels"];
/// The vault's file in the state folder.
const VAULT: &str = "vault.db";
/// The configuration's file in the state folder.
const CONFIG: &str = "clawos.toml";

/// `backup.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// When the snapshot was taken (ms since the epoch).
    pub created_at_ms: i64,
    /// The clawos version that took it.
    pub clawos_version: String,
    /// The log's last seq in the snapshot.
    pub head_seq: u64,
    /// Whether the vault's key is in the backup (`vault.key`).
    pub includes_key: bool,
    /// Every file, relative to the backup folder.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the backup folder (`/`-separated).
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its blake3, hex.
    pub blake3: String,
}

/// `clawos backup PATH [--include-key]`.
pub async fn backup(home: &Home, dest: &Path, include_key: bool) -> Result<()> {
    if !home.log_path().exists() {
        bail!(
            "no log at {}: nothing to back up",
            home.log_path().display()
        );
    }
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        bail!("{} is not empty: back up into a new folder", dest.display());
    }
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    match take_backup(home, dest, include_key).await {
        Ok(manifest) => {
            println!(
                "backed up {} events and {} files into {}",
                manifest.head_seq,
                manifest.files.len(),
                dest.display()
            );
            if !manifest.includes_key {
                let key = keystore::choose(home.dir()).store.describe();
                println!(
                    "the vault's key is not in the backup: it stays in {key}. Restoring into \
                     another folder or machine needs it (`clawos backup --include-key`)"
                );
            }
            Ok(())
        }
        Err(e) => {
            // Leave nothing that looks like a backup.
            let _ = std::fs::remove_dir_all(dest);
            Err(e)
        }
    }
}

async fn take_backup(home: &Home, dest: &Path, include_key: bool) -> Result<Manifest> {
    let log_name = file_name(&home.log_path())?;
    snapshot(&home.log_path(), &dest.join(&log_name)).await?;
    // The snapshot is a log like any other: its chain must hold before it is called a
    // backup.
    let store = LogStore::open(dest.join(&log_name), Durability::Full).await?;
    let report = clawos_events::verify(&store, |_| {}).await?;
    let head_seq = store.head();
    store.close().await;
    if let Some(b) = report.first_break {
        bail!("the snapshot's chain breaks at seq {}: {}", b.seq, b.reason);
    }
    let vault = home.dir().join(VAULT);
    if vault.exists() {
        snapshot(&vault, &dest.join(VAULT)).await?;
    }
    let config = home.dir().join(CONFIG);
    if config.exists() {
        copy_file(&config, &dest.join(CONFIG))?;
    }
    for folder in FOLDERS {
        copy_tree(&home.dir().join(folder), &dest.join(folder))?;
    }
    if include_key {
        let key = keystore::choose(home.dir())
            .store
            .load(Slot::Current)?
            .ok_or_else(|| anyhow!("the vault has no key to include"))?;
        FileStore::new(dest.join("vault.key")).save(Slot::Current, &key)?;
    }
    let manifest = Manifest {
        format: FORMAT,
        created_at_ms: clawos_kernel::clock::now_ms(),
        clawos_version: env!("CARGO_PKG_VERSION").to_string(),
        head_seq,
        includes_key: include_key,
        files: list_files(dest)?,
    };
    let path = dest.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    flush(dest)?;
    Ok(manifest)
}

/// `clawos restore PATH`: into this (empty) state folder.
pub async fn restore(home: &Home, src: &Path) -> Result<()> {
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(src.join(MANIFEST)).with_context(|| {
            format!("{} is not a clawos backup (no {MANIFEST})", src.display())
        })?)
        .with_context(|| format!("{MANIFEST} in {} is not readable", src.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "backup format {} is not known to this clawos (it reads {FORMAT})",
            manifest.format
        );
    }
    for f in &manifest.files {
        let path = src.join(&f.path);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("the backup lacks {} (listed in {MANIFEST})", f.path))?;
        if blake3::hash(&bytes).to_hex().as_str() != f.blake3 {
            bail!(
                "{} in the backup is not the file that was backed up (blake3 differs)",
                f.path
            );
        }
    }
    refuse_a_used_home(home).await?;
    std::fs::create_dir_all(home.dir())?;
    let mut copied = Vec::new();
    let result = async {
        for f in &manifest.files {
            let to = home.dir().join(&f.path);
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            copy_file(&src.join(&f.path), &to)?;
            copied.push(to);
        }
        let store = home.open_log(Durability::Full).await?;
        let report = clawos_events::verify(&store, |_| {}).await?;
        if let Some(b) = &report.first_break {
            store.close().await;
            bail!("the backup's log breaks at seq {}: {}", b.seq, b.reason);
        }
        let pool = home.open_projections().await?;
        let rebuilt = rebuild::rebuild(&store, &pool, None, |_| {}).await?;
        pool.close().await;
        store.close().await;
        Ok::<_, anyhow::Error>((report.events_checked, rebuilt.projections.len()))
    }
    .await;
    match result {
        Ok((events, projections)) => {
            println!(
                "restored {events} events (chain intact) into {}; {projections} projections \
                 rebuilt",
                home.dir().display()
            );
            if !manifest.includes_key {
                println!(
                    "the vault's key was not in the backup: the Gateway opens the vault only \
                     where its key is (the same state folder with its keychain entry, or \
                     vault.key)"
                );
            }
            Ok(())
        }
        Err(e) => {
            for f in copied {
                let _ = std::fs::remove_file(f);
            }
            let _ = std::fs::remove_file(home.projections_path());
            Err(e)
        }
    }
}

/// A restore goes only into a folder without a log of its own and without a Gateway.
async fn refuse_a_used_home(home: &Home) -> Result<()> {
    if home.log_path().exists() {
        let store = home.open_log(Durability::Full).await?;
        let head = store.head();
        store.close().await;
        if head > 0 {
            bail!(
                "{} already has a log with {head} events: restore into a new state folder \
                 (`clawos --home NEW restore PATH`)",
                home.dir().display()
            );
        }
    }
    for name in [VAULT, CONFIG] {
        if home.dir().join(name).exists() {
            bail!(
                "{} already has {name}: restore into a new state folder",
                home.dir().display()
            );
        }
    }
    Ok(())
}

/// A consistent copy of the SQLite database `from`, taken in one read transaction while
/// writers go on, then flushed to disk.
async fn snapshot(from: &Path, to: &Path) -> Result<()> {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(from)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open {}", from.display()))?;
    sqlx::query("VACUUM INTO ?")
        .bind(to.display().to_string())
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    flush(to)
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    flush(to)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            copy_file(&entry.path(), &target)?;
        }
    }
    Ok(())
}

fn list_files(root: &Path) -> Result<Vec<FileEntry>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let rel = path
                .strip_prefix(root)
                .map_err(|_| anyhow!("{} is outside the backup", path.display()))?;
            out.push(FileEntry {
                path: rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
                bytes: bytes.len() as u64,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
            });
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn file_name(path: &Path) -> Result<PathBuf> {
    path.file_name()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("{} has no file name", path.display()))
}

/// Flush a file (or a folder's entries) to disk.
fn flush(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {} to disk", path.display()))
}
