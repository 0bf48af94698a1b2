//! The linked device's session store: all `whatsapp-rust` keeps about the link (device
//! keys, Signal sessions, pre-keys, app-state keys, ...) in one JSON file, in memory too.
//!
//! Reads never touch the disk. Every change rewrites the file atomically on a blocking
//! thread (a 0600 `.tmp` sibling, fsynced, renamed over it, the folder fsynced); a failed
//! write fails its call and the next change writes it too. A file that cannot be decoded
//! is an error naming it, never replaced. Bytes are JSON arrays of numbers (as in the
//! crate's types); maps with non-string keys are lists of `[key, value]` pairs. The crate's
//! inbound durability hook (pending-inbound buffer) is not supported: it fails closed.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use whatsapp_rust::async_trait;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::{hash::HashState, processor::AppStateMutationMAC as Mac};
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::{
    merge_msg_secret_expiry as merge_expiry, merge_msg_secret_message_ts as merge_ts,
    AppStateSyncKey, AppSyncStore, DeviceListRecord, DeviceStore, LidPnMappingEntry, MessageSecret,
    MsgSecretEntry, MsgSecretStore, ProtocolStore, SignalStore, TcTokenEntry,
};
use whatsapp_rust::wacore::store::Device;

/// The session file's name inside the state folder.
pub const SESSION_FILE: &str = "whatsapp-session.json";

type Fallible<T> = std::result::Result<T, SessionStoreError>;

/// What can go wrong opening, writing or deleting the session file.
#[derive(Debug, thiserror::Error)]
pub enum SessionStoreError {
    /// A file system call failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create`, `write`, ...).
        action: &'static str,
        /// The file or folder it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The session file exists but cannot be decoded; it was left untouched.
    #[error("{} is not a readable WhatsApp session (left untouched): {source}", path.display())]
    Corrupt {
        /// The session file.
        path: PathBuf,
        /// Why it could not be decoded.
        #[source]
        source: serde_json::Error,
    },
}

impl From<SessionStoreError> for StoreError {
    fn from(e: SessionStoreError) -> Self {
        match e {
            SessionStoreError::Io { ref source, .. } => {
                Self::Io(std::io::Error::new(source.kind(), e))
            }
            SessionStoreError::Corrupt { .. } => Self::Serialization(Box::new(e)),
        }
    }
}

/// Turns an I/O error on `path` into a [`SessionStoreError::Io`].
fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SessionStoreError {
    let path = path.to_path_buf();
    move |source| SessionStoreError::Io {
        action,
        path,
        source,
    }
}

/// Deletes `path`; a file that is already gone is no error.
fn remove_if_present(path: &Path) -> Fallible<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Locks `mutex`; a panic while it was held left plain data behind, so poison is ignored.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A one-time pre-key and whether the server has it.
#[derive(Serialize, Deserialize)]
struct PreKey {
    record: Vec<u8>,
    uploaded: bool,
}

/// A sent message kept for retry receipts, and when it was stored (unix seconds).
#[derive(Serialize, Deserialize)]
struct Sent {
    payload: Vec<u8>,
    at: i64,
}

/// A message secret, its deadline (0: never) and its parent message's time (0: unknown).
type Secret = (MessageSecret, i64, i64);

/// Everything the store holds: the file's content. Fields missing from a file (written
/// before they existed) start empty.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct State {
    /// Our own device (keys, JIDs, counters); `None` until `create` or `save`.
    device: Option<Device>,
    identities: BTreeMap<String, [u8; 32]>,
    sessions: BTreeMap<String, Vec<u8>>,
    prekeys: BTreeMap<u32, PreKey>,
    signed_prekeys: BTreeMap<u32, Vec<u8>>,
    sender_keys: BTreeMap<String, Vec<u8>>,
    #[serde(with = "super::serde_pairs")]
    sync_keys: BTreeMap<Vec<u8>, AppStateSyncKey>,
    latest_sync_key_id: Option<Vec<u8>>,
    versions: BTreeMap<String, HashState>,
    /// (collection, index MAC) -> value MAC.
    #[serde(with = "super::serde_pairs")]
    mutation_macs: BTreeMap<(String, Vec<u8>), Vec<u8>>,
    /// Group -> device JID -> whether that device has our sender key.
    sender_key_devices: BTreeMap<String, BTreeMap<String, bool>>,
    lid_mappings: BTreeMap<String, LidPnMappingEntry>,
    /// Phone number -> the LID most recently mapped to it.
    pn_to_lid: BTreeMap<String, String>,
    /// [address, message id] -> base key.
    #[serde(with = "super::serde_pairs")]
    base_keys: BTreeMap<[String; 2], Vec<u8>>,
    device_lists: BTreeMap<String, DeviceListRecord>,
    tc_tokens: BTreeMap<String, TcTokenEntry>,
    /// [chat, message id] -> the sent message.
    #[serde(with = "super::serde_pairs")]
    sent: BTreeMap<[String; 2], Sent>,
    /// [chat, sender, message id] -> the secret.
    #[serde(with = "super::serde_pairs")]
    msg_secrets: BTreeMap<[String; 3], Secret>,
    /// [chat, sender, message id] -> a decrypted message not yet acked (the crate's
    /// buffer behind the inbound durability hook).
    #[serde(with = "super::serde_pairs")]
    pending_inbound: BTreeMap<[String; 3], Sent>,
}

fn prune<K: Ord, V>(map: &mut BTreeMap<K, V>, keep: impl FnMut(&K, &mut V) -> bool) -> usize {
    let before = map.len();
    map.retain(keep);
    before - map.len()
}

fn key<const N: usize>(parts: [&str; N]) -> [String; N] {
    parts.map(str::to_owned)
}

/// The session file, and the lock that orders writes to it.
struct Disk {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    /// Held while the file is written or deleted: the generation of the state it holds.
    written: Mutex<u64>,
}

impl Disk {
    /// Writes `bytes`, the state at `generation`, unless a newer one is already there.
    fn write(&self, generation: u64, bytes: &[u8]) -> Fallible<()> {
        let mut written = locked(&self.written);
        if *written < generation {
            self.replace(bytes)
                .inspect_err(|_| drop(fs::remove_file(&self.tmp)))?;
            *written = generation;
        }
        Ok(())
    }

    /// Writes the `.tmp` file (0600), fsyncs it, renames it over the file, fsyncs the folder.
    fn replace(&self, bytes: &[u8]) -> Fallible<()> {
        remove_if_present(&self.tmp)?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        let mut file = options
            .open(&self.tmp)
            .map_err(io_err("create", &self.tmp))?;
        file.write_all(bytes).map_err(io_err("write", &self.tmp))?;
        file.sync_all().map_err(io_err("sync", &self.tmp))?;
        fs::rename(&self.tmp, &self.path).map_err(io_err("replace", &self.path))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Fallible<()> {
        let dir = File::open(&self.dir).map_err(io_err("open", &self.dir))?;
        dir.sync_all().map_err(io_err("sync", &self.dir))
    }
}

/// The persistent `whatsapp-rust` storage backend of one linked device; it implements the
/// crate's `Backend` through its five store traits.
pub struct SessionStore {
    /// The state, and the generation of its last change.
    inner: Mutex<(State, u64)>,
    disk: Arc<Disk>,
}

impl SessionStore {
    /// Opens the session in `dir` (created with mode 0700 if missing): loads
    /// [`SESSION_FILE`] if it exists, else starts empty. A file that cannot be decoded is
    /// an error naming it, and is left as it is.
    pub fn open(dir: &Path) -> Fallible<Self> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(dir).map_err(io_err("create", dir))?;
        let path = dir.join(SESSION_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(state) => state,
                Err(source) => return Err(SessionStoreError::Corrupt { path, source }),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let (dir, tmp) = (dir.to_path_buf(), dir.join(format!("{SESSION_FILE}.tmp")));
        let disk = Arc::new(Disk {
            dir,
            path,
            tmp,
            written: Mutex::new(0),
        });
        let inner = Mutex::new((state, 0));
        Ok(Self { inner, disk })
    }

    /// The session file's path.
    pub fn path(&self) -> &Path {
        &self.disk.path
    }

    /// Whether pairing finished: a device is stored and it knows its phone number JID.
    pub fn is_linked(&self) -> bool {
        self.read(|s| s.device.as_ref().is_some_and(|d| d.pn.is_some()))
    }

    /// Drops everything and deletes the file (the phone unlinked this device). Waits for
    /// a write in progress; a write of older state never brings the file back.
    pub fn forget(&self) -> Fallible<()> {
        let mut inner = locked(&self.inner);
        let mut written = locked(&self.disk.written);
        remove_if_present(&self.disk.path)?;
        remove_if_present(&self.disk.tmp)?;
        self.disk.sync_dir()?;
        *inner = (State::default(), inner.1 + 1);
        *written = inner.1;
        Ok(())
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&locked(&self.inner).0)
    }

    /// Runs `f` on the state and, when it reports a change, writes the file before
    /// returning. The state lock is not held during the write.
    async fn apply<R>(&self, f: impl FnOnce(&mut State) -> (R, bool)) -> Result<R> {
        let (out, generation, bytes) = {
            let mut inner = locked(&self.inner);
            let (out, changed) = f(&mut inner.0);
            if !changed {
                return Ok(out);
            }
            inner.1 += 1;
            let bytes = serde_json::to_vec(&inner.0).map_err(std::io::Error::from)?;
            (out, inner.1, bytes)
        };
        let disk = Arc::clone(&self.disk);
        let write = tokio::task::spawn_blocking(move || disk.write(generation, &bytes));
        write.await.map_err(std::io::Error::from)??;
        Ok(out)
    }

    /// [`Self::apply`] for a change that always changes something, one that says whether
    /// it changed anything, a removal that counts what it removed.
    async fn put<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<()> {
        self.apply(|s| (f(s), true)).await.map(drop)
    }
    async fn change(&self, f: impl FnOnce(&mut State) -> bool) -> Result<()> {
        self.apply(|s| ((), f(s))).await
    }
    async fn remove(&self, f: impl FnOnce(&mut State) -> usize) -> Result<u32> {
        let counted = |n: usize| (u32::try_from(n).unwrap_or(u32::MAX), n > 0);
        self.apply(|s| counted(f(s))).await
    }
}

#[async_trait]
impl SignalStore for SessionStore {
    async fn put_identity(&self, addr: &str, key: [u8; 32]) -> Result<()> {
        self.put(|s| s.identities.insert(addr.into(), key)).await
    }
    async fn put_identities_batch(&self, rows: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let rows = rows.iter().map(|(addr, key)| (addr.to_string(), *key));
        self.put(|s| s.identities.extend(rows)).await
    }
    async fn load_identity(&self, addr: &str) -> Result<Option<[u8; 32]>> {
        Ok(self.read(|s| s.identities.get(addr).copied()))
    }
    async fn delete_identity(&self, addr: &str) -> Result<()> {
        self.change(|s| s.identities.remove(addr).is_some()).await
    }
    async fn get_session(&self, addr: &str) -> Result<Option<Bytes>> {
        Ok(self.read(|s| s.sessions.get(addr).cloned().map(Bytes::from)))
    }
    async fn put_session(&self, addr: &str, record: &[u8]) -> Result<()> {
        let record = record.to_vec();
        self.put(|s| s.sessions.insert(addr.into(), record)).await
    }
    async fn put_sessions_batch(&self, rows: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = rows.iter().map(|(addr, r)| (addr.to_string(), r.to_vec()));
        self.put(|s| s.sessions.extend(rows)).await
    }
    async fn delete_session(&self, addr: &str) -> Result<()> {
        self.change(|s| s.sessions.remove(addr).is_some()).await
    }
    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        let key = PreKey {
            record: record.to_vec(),
            uploaded,
        };
        self.put(|s| s.prekeys.insert(id, key)).await
    }
    async fn store_prekeys_batch(&self, rows: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let rows = rows.iter().map(|(id, record)| (*id, record.to_vec()));
        let rows = rows.map(|(id, record)| (id, PreKey { record, uploaded }));
        self.put(|s| s.prekeys.extend(rows)).await
    }
    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self.read(|s| s.prekeys.get(&id).map(|key| key.record.clone().into())))
    }
    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // Only rows still present are marked: a key consumed meanwhile stays gone.
        let mark = |key: &mut PreKey| !std::mem::replace(&mut key.uploaded, true);
        let mark_all = |s: &mut State| {
            ids.iter()
                .filter(|id| s.prekeys.get_mut(id).is_some_and(mark))
                .count()
        };
        self.change(|s| mark_all(s) > 0).await
    }
    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.change(|s| s.prekeys.remove(&id).is_some()).await
    }
    async fn get_max_prekey_id(&self) -> Result<u32> {
        Ok(self.read(|s| s.prekeys.keys().next_back().copied().unwrap_or(0)))
    }
    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        let record = record.to_vec();
        self.put(|s| s.signed_prekeys.insert(id, record)).await
    }
    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        Ok(self.read(|s| s.signed_prekeys.get(&id).cloned()))
    }
    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        Ok(self.read(|s| s.signed_prekeys.clone().into_iter().collect()))
    }
    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        let removed = |s: &mut State| s.signed_prekeys.remove(&id).is_some();
        self.change(removed).await
    }
    async fn put_sender_key(&self, addr: &str, record: &[u8]) -> Result<()> {
        let value = record.to_vec();
        self.put(|s| s.sender_keys.insert(addr.into(), value)).await
    }
    async fn put_sender_keys_batch(&self, rows: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = rows.iter().map(|(addr, r)| (addr.to_string(), r.to_vec()));
        self.put(|s| s.sender_keys.extend(rows)).await
    }
    async fn get_sender_key(&self, addr: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read(|s| s.sender_keys.get(addr).cloned()))
    }
    async fn delete_sender_key(&self, addr: &str) -> Result<()> {
        self.change(|s| s.sender_keys.remove(addr).is_some()).await
    }
}

#[async_trait]
impl AppSyncStore for SessionStore {
    async fn get_sync_key(&self, id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        Ok(self.read(|s| s.sync_keys.get(id).cloned()))
    }
    async fn set_sync_key(&self, id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.put(|s| {
            s.latest_sync_key_id = Some(id.to_vec());
            s.sync_keys.insert(id.to_vec(), key)
        })
        .await
    }
    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.read(|s| s.latest_sync_key_id.clone()))
    }
    async fn get_version(&self, name: &str) -> Result<HashState> {
        Ok(self.read(|s| s.versions.get(name).cloned().unwrap_or_default()))
    }
    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.put(|s| s.versions.insert(name.into(), state)).await
    }
    async fn put_mutation_macs(&self, name: &str, _: u64, macs: &[Mac]) -> Result<()> {
        let row = |m: &Mac| ((name.into(), m.index_mac.clone()), m.value_mac.clone());
        self.put(|s| s.mutation_macs.extend(macs.iter().map(row)))
            .await
    }
    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = (name.to_owned(), index_mac.to_vec());
        Ok(self.read(|s| s.mutation_macs.get(&key).cloned()))
    }
    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let keys = index_macs.iter().map(|m| (name.to_owned(), m.clone()));
        let removed = |s: &mut State| keys.filter(|k| s.mutation_macs.remove(k).is_some()).count();
        self.change(|s| removed(s) > 0).await
    }
    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        let keep = |(n, _): &(String, Vec<u8>), _: &mut Vec<u8>| n != name;
        self.change(|s| prune(&mut s.mutation_macs, keep) > 0).await
    }
}

#[async_trait]
impl ProtocolStore for SessionStore {
    async fn get_sender_key_devices(&self, group: &str) -> Result<Vec<(String, bool)>> {
        let devices = |s: &State| s.sender_key_devices.get(group).cloned().unwrap_or_default();
        Ok(self.read(devices).into_iter().collect())
    }
    async fn set_sender_key_status(&self, group: &str, rows: &[(&str, bool)]) -> Result<()> {
        let rows = rows.iter().map(|(jid, has)| (jid.to_string(), *has));
        self.put(|s| {
            let devices = s.sender_key_devices.entry(group.into()).or_default();
            devices.extend(rows)
        })
        .await
    }
    async fn clear_sender_key_devices(&self, group: &str) -> Result<()> {
        let removed = |s: &mut State| s.sender_key_devices.remove(group).is_some();
        self.change(removed).await
    }
    async fn delete_sender_key_device_rows(&self, jids: &[&str]) -> Result<()> {
        let keep = |jid: &String, _: &mut bool| !jids.contains(&jid.as_str());
        self.change(|s| {
            let removed = s.sender_key_devices.values_mut().map(|d| prune(d, keep));
            removed.sum::<usize>() > 0
        })
        .await
    }
    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        let cleared = |s: &mut State| std::mem::take(&mut s.sender_key_devices);
        self.change(|s| !cleared(s).is_empty()).await
    }
    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        Ok(self.read(|s| s.lid_mappings.get(lid).cloned()))
    }
    async fn get_pn_mapping(&self, pn: &str) -> Result<Option<LidPnMappingEntry>> {
        let entry = |s: &State, lid: &String| s.lid_mappings.get(lid).cloned();
        Ok(self.read(|s| s.pn_to_lid.get(pn).and_then(|lid| entry(s, lid))))
    }
    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }
    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        self.put(|s| {
            for e in entries {
                // The number this LID had no longer leads to it (unless it is the same).
                let old = s
                    .lid_mappings
                    .insert(e.lid.clone(), e.clone())
                    .map(|o| o.phone_number);
                if let Some(old) = old.filter(|pn| s.pn_to_lid.get(pn) == Some(&e.lid)) {
                    s.pn_to_lid.remove(&old);
                }
                s.pn_to_lid.insert(e.phone_number.clone(), e.lid.clone());
            }
        })
        .await
    }
    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        Ok(self.read(|s| s.lid_mappings.values().cloned().collect()))
    }
    async fn save_base_key(&self, addr: &str, msg: &str, base_key: &[u8]) -> Result<()> {
        let (key, base_key) = (key([addr, msg]), base_key.to_vec());
        self.put(|s| s.base_keys.insert(key, base_key)).await
    }
    async fn has_same_base_key(&self, addr: &str, msg: &str, current: &[u8]) -> Result<bool> {
        let key = key([addr, msg]);
        Ok(self.read(|s| s.base_keys.get(&key).is_some_and(|saved| saved == current)))
    }
    async fn delete_base_key(&self, addr: &str, msg: &str) -> Result<()> {
        let key = key([addr, msg]);
        self.change(|s| s.base_keys.remove(&key).is_some()).await
    }
    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }
    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let rows = records.into_iter().map(|r| (r.user.clone(), r));
        self.put(|s| s.device_lists.extend(rows)).await
    }
    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        Ok(self.read(|s| s.device_lists.get(user).cloned()))
    }
    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.change(|s| s.device_lists.remove(user).is_some()).await
    }
    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        Ok(self.read(|s| s.tc_tokens.get(jid).cloned()))
    }
    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        let entry = entry.clone();
        self.put(|s| s.tc_tokens.insert(jid.into(), entry)).await
    }
    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.change(|s| s.tc_tokens.remove(jid).is_some()).await
    }
    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self.read(|s| s.tc_tokens.keys().cloned().collect()))
    }
    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // A row goes only when both its received token and its sender bucket are stale.
        let live = |_: &String, t: &mut TcTokenEntry| {
            (!t.token.is_empty() && t.token_timestamp >= token_cutoff)
                || t.sender_timestamp.is_some_and(|ts| ts >= sender_cutoff)
        };
        self.remove(|s| prune(&mut s.tc_tokens, live)).await
    }
    async fn store_sent_message(&self, chat: &str, msg: &str, payload: &[u8]) -> Result<()> {
        // Kept until taken or swept by age (the crate's keepalive calls the sweep).
        let (payload, at) = (payload.to_vec(), whatsapp_rust::wacore::time::now_secs());
        let key = key([chat, msg]);
        self.put(|s| s.sent.insert(key, Sent { payload, at })).await
    }
    async fn take_sent_message(&self, chat: &str, msg: &str) -> Result<Option<Vec<u8>>> {
        let key = key([chat, msg]);
        let take = |s: &mut State| s.sent.remove(&key).map(|sent| sent.payload);
        self.apply(|s| take(s).map_or((None, false), |p| (Some(p), true)))
            .await
    }
    async fn delete_expired_sent_messages(&self, cutoff: i64) -> Result<u32> {
        let live = |_: &[String; 2], sent: &mut Sent| sent.at >= cutoff;
        self.remove(|s| prune(&mut s.sent, live)).await
    }
    async fn store_pending_inbound(
        &self,
        chat: &str,
        from: &str,
        id: &str,
        m: &[u8],
    ) -> Result<()> {
        let (payload, at) = (m.to_vec(), whatsapp_rust::wacore::time::now_secs());
        let key = key([chat, from, id]);
        self.put(|s| s.pending_inbound.insert(key, Sent { payload, at }))
            .await
    }
    async fn get_pending_inbound(
        &self,
        chat: &str,
        from: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        let key = key([chat, from, id]);
        Ok(self.read(|s| s.pending_inbound.get(&key).map(|m| m.payload.clone())))
    }
    async fn delete_pending_inbound(&self, chat: &str, from: &str, id: &str) -> Result<()> {
        let key = key([chat, from, id]);
        self.change(|s| s.pending_inbound.remove(&key).is_some())
            .await
    }
    async fn delete_expired_pending_inbound(&self, cutoff: i64) -> Result<u32> {
        let live = |_: &[String; 3], m: &mut Sent| m.at >= cutoff;
        self.remove(|s| prune(&mut s.pending_inbound, live)).await
    }
}

#[async_trait]
impl MsgSecretStore for SessionStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        // A repeated key takes the new secret, the later deadline (0: never) and the
        // later known parent time.
        let count = entries.len();
        self.apply(|s| {
            for e in entries {
                let key = key([&*e.chat, &*e.sender, &*e.msg_id]);
                let new = (e.secret, e.expires_at, e.message_ts);
                let (secret, expires_at, message_ts) = s.msg_secrets.entry(key).or_insert(new);
                *secret = e.secret;
                *expires_at = merge_expiry(*expires_at, e.expires_at);
                *message_ts = merge_ts(*message_ts, e.message_ts);
            }
            (count, count > 0)
        })
        .await
    }
    async fn get_msg_secret(&self, chat: &str, sender: &str, msg: &str) -> Result<Option<Vec<u8>>> {
        let found = self.get_msg_secret_with_ts(chat, sender, msg).await?;
        Ok(found.map(|(secret, _)| secret))
    }
    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        let key = key([chat, sender, msg]);
        let found = |s: &State| s.msg_secrets.get(&key).map(|&(secret, _, ts)| (secret, ts));
        Ok(self.read(found).map(|(secret, ts)| (secret.to_vec(), ts)))
    }
    async fn delete_expired_msg_secrets(&self, cutoff: i64) -> Result<u32> {
        // No deadline: kept; a deadline at or before the cutoff has passed.
        let live = |_: &[String; 3], (_, expires_at, _): &mut Secret| {
            *expires_at == 0 || *expires_at > cutoff
        };
        self.remove(|s| prune(&mut s.msg_secrets, live)).await
    }
}

#[async_trait]
impl DeviceStore for SessionStore {
    async fn save(&self, device: &Device) -> Result<()> {
        let device = device.clone();
        self.put(|s| s.device = Some(device)).await
    }
    async fn load(&self) -> Result<Option<Device>> {
        Ok(self.read(|s| s.device.clone()))
    }
    async fn exists(&self) -> Result<bool> {
        Ok(self.read(|s| s.device.is_some()))
    }
    /// Stores a fresh device (new keys) unless there is one. This store holds a single
    /// device, whose id is always 1.
    async fn create(&self) -> Result<i32> {
        let fresh = |s: &mut State| s.device.is_none().then(|| s.device = Some(Device::new()));
        self.change(|s| fresh(s).is_some()).await?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests;
