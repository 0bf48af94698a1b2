//! The session store: every kind of row survives a reopen; the file is private; a
//! corrupt file is refused and left alone.

use super::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;
use whatsapp_rust::wacore::store::traits::Backend;

fn from<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).expect("a test value")
}

fn dump(st: &SessionStore) -> Value {
    st.read(|s| serde_json::to_value(s).expect("the state encodes"))
}

fn rows() -> Value {
    json!({
        "sync_key": {"key_data": [1], "fingerprint": [2], "timestamp": 3},
        "version": {"version": 5, "hash": vec![0; 128], "index_value_map": {}},
        "mac": {"index_mac": vec![1; 32], "value_mac": vec![2; 32]},
        "lid": {"lid": "9", "phone_number": "1", "created_at": 1, "updated_at": 2,
                "learning_source": "usync"},
        "devices": {"user": "1", "timestamp": 10, "phash": "h",
                    "devices": [{"device_id": 2, "key_index": 1, "is_hosted": false}]},
        "token": {"token": [5], "token_timestamp": 100, "sender_timestamp": null},
        "old": {"chat": "c", "sender": "s", "msg_id": "old", "secret": vec![3; 32],
                "expires_at": 100, "message_ts": 40},
        "kept": {"chat": "c", "sender": "s", "msg_id": "kept", "secret": vec![4; 32],
                 "expires_at": 0, "message_ts": 50},
    })
}

/// Stores one row of every kind the traits keep, and a linked device.
async fn fill(st: &SessionStore) -> Result<()> {
    let rows = rows();
    st.put_identity("a@s", [7; 32]).await?;
    st.put_session("a:2@s", b"session").await?;
    let prekeys = [(4, Bytes::from("p4")), (9, Bytes::from("p9"))];
    st.store_prekeys_batch(&prekeys, false).await?;
    st.mark_prekeys_uploaded(&[9, 42]).await?;
    st.store_signed_prekey(3, b"spk").await?;
    st.put_sender_key("g::a::2", b"sender").await?;
    st.set_sync_key(b"kid", from(&rows["sync_key"])).await?;
    st.set_version("regular", from(&rows["version"])).await?;
    let macs = [from(&rows["mac"])];
    st.put_mutation_macs("regular", 5, &macs).await?;
    st.set_sender_key_status("g", &[("a:2@s", true)]).await?;
    st.put_lid_mapping(&from(&rows["lid"])).await?;
    st.save_base_key("a:2@s", "m1", b"base").await?;
    st.update_device_list(from(&rows["devices"])).await?;
    st.put_tc_token("9@lid", &from(&rows["token"])).await?;
    st.touch_tc_token_sender_timestamp("8@lid", 200).await?;
    st.store_sent_message("c", "m1", b"payload").await?;
    st.put_msg_secrets(vec![from(&rows["old"]), from(&rows["kept"])])
        .await?;
    let mut device = Device::new();
    device.pn = Some("1@s.whatsapp.net".parse().expect("a jid"));
    device.push_name = "clawos".into();
    st.save(&device).await
}

#[tokio::test]
async fn every_row_survives_a_reopen() -> Result<()> {
    fn is_backend<T: Backend>() {}
    is_backend::<SessionStore>();
    let dir = TempDir::new()?;
    let st = SessionStore::open(dir.path())?;
    assert_eq!((st.get_max_prekey_id().await?, st.is_linked()), (0, false));
    fill(&st).await?;
    let before = dump(&st);
    drop(st);

    let (st, rows) = (SessionStore::open(dir.path())?, rows());
    assert_eq!(dump(&st), before);
    let read = json!({
        "identity": st.load_identity("a@s").await?,
        "session": st.get_session("a:2@s").await?.map(|b| b.to_vec()),
        "prekeys": [st.load_prekey(4).await?.map(|b| b.to_vec()), st.get_max_prekey_id().await?],
        "uploaded": st.read(|s| s.prekeys.values().map(|p| p.uploaded).collect::<Vec<_>>()),
        "signed": st.load_all_signed_prekeys().await?,
        "sender_key": st.get_sender_key("g::a::2").await?,
        "sync_key": [st.get_sync_key(b"kid").await?, st.get_latest_sync_key_id().await?],
        "version": st.get_version("regular").await?.version,
        "mac": st.get_mutation_mac("regular", &[1; 32]).await?,
        "sk_devices": st.get_sender_key_devices("g").await?,
        "lid": [st.get_lid_mapping("9").await?, st.get_pn_mapping("1").await?],
        "base_key": [st.has_same_base_key("a:2@s", "m1", b"base").await?,
                     st.has_same_base_key("a:2@s", "m1", b"other").await?],
        "devices": st.get_devices("1").await?,
        "token": [st.get_tc_token("9@lid").await?, st.get_all_tc_token_jids().await?],
        "secret": st.get_msg_secret_with_ts("c", "s", "kept").await?,
        "device": [st.load().await?.map(|d| d.push_name), st.is_linked()],
    });
    let expected = json!({
        "identity": vec![7; 32], "session": b"session", "prekeys": [b"p4", 9],
        "uploaded": [false, true], "signed": [[3, b"spk"]], "sender_key": b"sender",
        "sync_key": [rows["sync_key"], b"kid"], "version": 5, "mac": vec![2; 32],
        "sk_devices": [["a:2@s", true]], "lid": [rows["lid"], rows["lid"]],
        "base_key": [true, false], "devices": rows["devices"],
        "token": [rows["token"], ["8@lid", "9@lid"]], "secret": [vec![4; 32], 50],
        "device": ["clawos", true],
    });
    assert_eq!(read, expected);

    // Taking removes; the sweeps count what they removed. 9's token is live until
    // 100; 8 is a placeholder whose sender bucket is live until 200.
    st.store_sent_message("c", "m2", b"again").await?;
    let swept = json!([
        st.take_sent_message("c", "m1").await?,
        st.take_sent_message("c", "m1").await?,
        st.delete_expired_sent_messages(0).await?,
        st.delete_expired_sent_messages(i64::MAX).await?,
        st.delete_expired_msg_secrets(99).await?,
        st.delete_expired_msg_secrets(100).await?,
        st.delete_expired_tc_tokens(100, 200).await?,
        st.delete_expired_tc_tokens(101, 200).await?,
        st.delete_expired_tc_tokens(101, 201).await?,
    ]);
    assert_eq!(swept, json!([b"payload", null, 0, 1, 0, 1, 0, 1, 1]));
    let after = dump(&st);
    drop(st);
    assert_eq!(dump(&SessionStore::open(dir.path())?), after);
    Ok(())
}

#[test]
fn a_corrupt_file_is_an_error_and_left_alone() -> std::io::Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join(SESSION_FILE);
    fs::write(&path, "{\"sessions\": [not json")?;
    let err = SessionStore::open(dir.path())
        .err()
        .map(|e| (e.to_string(), e));
    let (msg, err) = err.expect("a corrupt file must not open");
    assert!(matches!(err, SessionStoreError::Corrupt { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert_eq!(fs::read_to_string(&path)?, "{\"sessions\": [not json");
    Ok(())
}

#[tokio::test]
async fn the_file_is_private_and_forget_removes_it() -> Result<()> {
    let dir = TempDir::new()?;
    let st = SessionStore::open(&dir.path().join("state"))?;
    fill(&st).await?;
    st.remove_prekey(4).await?;
    // 0600, and no `.tmp` left behind.
    assert_eq!(fs::metadata(st.path())?.permissions().mode() & 0o777, 0o600);
    let names = fs::read_dir(dir.path().join("state"))?.map(|e| e.map(|e| e.file_name()));
    assert_eq!(names.collect::<std::io::Result<Vec<_>>>()?, [SESSION_FILE]);

    st.forget()?;
    assert!(!st.path().exists() && !st.is_linked() && !st.exists().await?);
    drop(st);
    let st = SessionStore::open(&dir.path().join("state"))?;
    assert!(!st.is_linked() && !st.exists().await?);
    assert_eq!(st.load_identity("a@s").await?, None);
    // A new pairing starts from a fresh, unlinked device.
    assert_eq!(st.create().await?, 1);
    assert!(st.exists().await? && !st.is_linked() && st.path().exists());
    Ok(())
}
