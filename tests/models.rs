//! Model downloads against a Hugging Face Hub stand-in (`HF_ENDPOINT`), written from the
//! Hub's public API: `GET /api/models/REPO/tree/main[/FOLDER]` lists files with their size
//! and checksum (`lfs.oid`, the SHA-256, for large files; `oid`, the git blob SHA-1, for
//! small ones), and `GET /REPO/resolve/main/FILE` serves the bytes, honouring `Range`
//! (206 with `Content-Range`, 416 past the end). `clawos models pull` verifies, resumes a
//! broken download and refuses a damaged one; `clawos up --yes` on a first run downloads
//! the real default model and embedder from it, and Pi answers with them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::Digest;

/// One file the stand-in serves.
#[derive(Clone)]
struct HubFile {
    bytes: Arc<Vec<u8>>,
    /// Large files are LFS files: their checksum is a SHA-256.
    lfs: bool,
    /// Publish this SHA-256 instead of the real one (a damaged download).
    published_sha256: Option<String>,
}

#[derive(Default)]
struct HubState {
    /// `REPO/PATH` → file.
    files: BTreeMap<String, HubFile>,
    /// Files whose next download breaks off halfway.
    cut_next: Vec<String>,
    /// Every request: path and `Range` header.
    requests: Vec<(String, Option<String>)>,
}

#[derive(Clone, Default)]
struct Hub(Arc<Mutex<HubState>>);

impl Hub {
    fn add(&self, repo_path: &str, bytes: Vec<u8>, lfs: bool) {
        self.0.lock().unwrap().files.insert(
            repo_path.into(),
            HubFile {
                bytes: Arc::new(bytes),
                lfs,
                published_sha256: None,
            },
        );
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.0.lock().unwrap().requests.clone()
    }

    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = self.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let hub = hub.clone();
            async move { hub.answer(uri, headers) }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    fn answer(&self, uri: Uri, headers: HeaderMap) -> Response {
        let path = uri.path().to_string();
        let range = headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let mut state = self.0.lock().unwrap();
        state.requests.push((path.clone(), range.clone()));
        if let Some(rest) = path.strip_prefix("/api/models/") {
            // REPO = OWNER/NAME, then /tree/main[/FOLDER].
            let parts: Vec<&str> = rest.splitn(5, '/').collect();
            let (repo, folder) = match parts.as_slice() {
                [o, n, "tree", "main"] => (format!("{o}/{n}"), String::new()),
                [o, n, "tree", "main", f] => {
                    (format!("{o}/{n}"), f.trim_end_matches('/').to_string())
                }
                _ => return StatusCode::NOT_FOUND.into_response(),
            };
            let prefix = format!("{repo}/");
            let entries: Vec<serde_json::Value> = state
                .files
                .iter()
                .filter_map(|(k, f)| k.strip_prefix(&prefix).map(|p| (p.to_string(), f)))
                .filter(|(p, _)| {
                    let dir = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    dir == folder
                })
                .map(|(p, f)| {
                    let size = f.bytes.len();
                    let mut blob = sha1::Sha1::new();
                    blob.update(format!("blob {size}\0").as_bytes());
                    blob.update(f.bytes.as_slice());
                    let mut entry = serde_json::json!({
                        "type": "file", "path": p, "size": size,
                        "oid": hex::encode(blob.finalize()),
                    });
                    if f.lfs {
                        let sha = f.published_sha256.clone().unwrap_or_else(|| {
                            hex::encode(sha2::Sha256::digest(f.bytes.as_slice()))
                        });
                        entry["size"] = serde_json::json!(134);
                        entry["lfs"] =
                            serde_json::json!({"oid": sha, "size": size, "pointerSize": 134});
                    }
                    entry
                })
                .collect();
            if entries.is_empty() {
                return (StatusCode::NOT_FOUND, r#"{"error":"Repository not found"}"#)
                    .into_response();
            }
            return axum::Json(entries).into_response();
        }
        let Some((repo, file)) = path
            .trim_start_matches('/')
            .split_once("/resolve/main/")
            .map(|(r, f)| (r.to_string(), f.to_string()))
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let key = format!("{repo}/{file}");
        let Some(f) = state.files.get(&key).cloned() else {
            return (StatusCode::NOT_FOUND, "Entry not found").into_response();
        };
        let len = f.bytes.len();
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        if let Some(s) = start {
            if s >= len {
                return Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header("content-range", format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap();
            }
        }
        let from = start.unwrap_or(0);
        let cut = state
            .cut_next
            .iter()
            .position(|k| *k == key)
            .map(|i| state.cut_next.remove(i));
        let body = Bytes::copy_from_slice(&f.bytes[from..]);
        let mut response = Response::builder()
            .header("content-length", (len - from).to_string())
            .header("accept-ranges", "bytes");
        response = if start.is_some() {
            response
                .status(StatusCode::PARTIAL_CONTENT)
                .header("content-range", format!("bytes {from}-{}/{len}", len - 1))
        } else {
            response.status(StatusCode::OK)
        };
        let body = if cut.is_some() {
            // Half the body, then the connection breaks.
            let half = body.slice(..body.len() / 2);
            Body::from_stream(futures::stream::iter([
                Ok(half),
                Err(std::io::Error::other("connection dropped")),
            ]))
        } else {
            Body::from(body)
        };
        response.body(body).unwrap()
    }
}

async fn clawos(home: &Path, endpoint: &str, args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawos"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("HF_ENDPOINT", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("clawos finished within 120 s")
        .unwrap()
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_verifies_checksums_resumes_and_refuses_damage() {
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let hub = Hub::default();
    hub.add("me/models/tiny.gguf", body.clone(), true);
    hub.add("me/models/damaged.gguf", body.clone(), true);
    hub.0
        .lock()
        .unwrap()
        .files
        .get_mut("me/models/damaged.gguf")
        .unwrap()
        .published_sha256 = Some("00".repeat(32));
    hub.add(
        "sentence-transformers/all-MiniLM-L6-v2/model.safetensors",
        body[..1000].to_vec(),
        true,
    );
    hub.add(
        "sentence-transformers/all-MiniLM-L6-v2/tokenizer.json",
        b"{\"t\":1}".to_vec(),
        false,
    );
    hub.add(
        "sentence-transformers/all-MiniLM-L6-v2/config.json",
        b"{\"c\":2}".to_vec(),
        false,
    );
    hub.0
        .lock()
        .unwrap()
        .cut_next
        .push("me/models/tiny.gguf".into());
    let endpoint = hub.start().await;
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");

    // The first download breaks off: an error that says how to go on, a `.part` and no model.
    let out = clawos(
        home.path(),
        &endpoint,
        &["models", "pull", "me/models/tiny.gguf"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("run the command again to"),
        "{}",
        said(&out)
    );
    assert_eq!(files_under(&models), ["tiny.gguf.part"]);
    let partial = std::fs::metadata(models.join("tiny.gguf.part"))
        .unwrap()
        .len();
    assert!(partial > 0 && partial < body.len() as u64, "{partial}");

    // The second continues from there and checks the published SHA-256.
    let out = clawos(
        home.path(),
        &endpoint,
        &["models", "pull", "me/models/tiny.gguf"],
    )
    .await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("checksum verified"), "{}", said(&out));
    assert_eq!(std::fs::read(models.join("tiny.gguf")).unwrap(), body);
    let ranged: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|(p, _)| p.ends_with("/tiny.gguf") && !p.starts_with("/api/"))
        .collect();
    assert_eq!(ranged.len(), 2, "{ranged:?}");
    assert_eq!(
        ranged[1].1.as_deref(),
        Some(format!("bytes={partial}-").as_str())
    );

    // Bytes that are not what the Hub published are refused and removed.
    let out = clawos(
        home.path(),
        &endpoint,
        &["models", "pull", "me/models/damaged.gguf"],
    )
    .await;
    assert!(!out.status.success());
    assert!(said(&out).contains("damaged"), "{}", said(&out));
    assert_eq!(files_under(&models), ["tiny.gguf"]);

    // A small file is checked by its git blob SHA-1; a missing one is a clear error.
    let out = clawos(home.path(), &endpoint, &["models", "pull", "minilm"]).await;
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(
        files_under(&models.join("all-MiniLM-L6-v2")),
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    let out = clawos(
        home.path(),
        &endpoint,
        &["models", "pull", "nobody/none/missing.gguf"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("404") || said(&out).contains("no file"),
        "{}",
        said(&out)
    );
}

fn repo_models() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".models");
    assert!(
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf").exists()
            && dir.join("all-MiniLM-L6-v2/model.safetensors").exists(),
        "the test models are missing in {}: run `bash tests/fetch-models.sh`",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_downloads_only_with_consent_and_then_pi_answers() {
    let local = repo_models();
    let hub = Hub::default();
    // The default model's place on the Hub holds the small model a package registry ships
    // (SmolLM2): no registry here ships the Qwen file, and the architecture is read from
    // the file, not its name.
    hub.add(
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
        std::fs::read(local.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap(),
        true,
    );
    for (name, lfs) in [
        ("model.safetensors", true),
        ("tokenizer.json", true),
        ("config.json", false),
    ] {
        hub.add(
            &format!("sentence-transformers/all-MiniLM-L6-v2/{name}"),
            std::fs::read(local.join("all-MiniLM-L6-v2").join(name)).unwrap(),
            lfs,
        );
    }
    let endpoint = hub.start().await;
    let config = "[gateway]\ndurability = \"normal\"\nlisten = \"127.0.0.1:0\"\n\n[agents.pi]\nkind = \"pi\"\n\n\
                  [channels.terminal]\nkind = \"terminal\"\n";

    // Without a terminal to ask on and without --yes: nothing is downloaded, the way to
    // get a model is named, and the question stays unasked.
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("clawos.toml"), config).unwrap();
    let out = clawos(home.path(), &endpoint, &["up"]).await;
    assert!(said(&out).contains("clawos up --yes"), "{}", said(&out));
    assert!(hub.requests().is_empty(), "no download without consent");
    assert!(!home.path().join("first-run.asked").exists());

    // `up --yes`: both downloads, verified, and Pi answers with the model.
    let (reply, out) = chat_once(
        home.path(),
        &["up", "--yes"],
        &endpoint,
        "What is the capital of France?",
        240,
    )
    .await;
    assert!(said(&out).contains("checksum verified"), "{}", said(&out));
    assert!(
        !reply.contains("No language model is configured"),
        "Pi answered with the downloaded model: {reply}"
    );
    assert!(!reply.trim().is_empty());
    let models = home.path().join("models");
    assert_eq!(
        files_under(&models),
        ["all-MiniLM-L6-v2", "qwen2.5-0.5b-instruct-q4_k_m.gguf"]
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("first-run.asked")).unwrap(),
        "yes\n"
    );

    // A later start asks nothing and downloads nothing.
    let before = hub.requests().len();
    let out = clawos(home.path(), &endpoint, &["up"]).await;
    assert!(!said(&out).contains("clawos up --yes"), "{}", said(&out));
    assert_eq!(hub.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_does_not_load_is_said_by_pi_not_a_gateway_that_will_not_start() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("models")).unwrap();
    std::fs::write(
        home.path().join("models/broken.gguf"),
        b"GGUF but not really",
    )
    .unwrap();
    std::fs::write(home.path().join("first-run.asked"), "no\n").unwrap();
    std::fs::write(
        home.path().join("clawos.toml"),
        "[gateway]\ndurability = \"normal\"\nlisten = \"127.0.0.1:0\"\n\n[agents.pi]\nkind = \"pi\"\n\n\
         [channels.terminal]\nkind = \"terminal\"\n",
    )
    .unwrap();
    let (reply, _) = chat_once(home.path(), &["up"], "http://127.0.0.1:9", "hello", 60).await;
    assert!(
        reply.contains("broken.gguf") && reply.contains("could not load it"),
        "{reply}"
    );
}

/// Run `clawos ARGS` (the Gateway with the terminal attached), type `message`, wait up to
/// `secs` for Pi's first reply in the log, end the input; the reply and the run's output.
async fn chat_once(
    home: &Path,
    args: &[&str],
    endpoint: &str,
    message: &str,
    secs: u64,
) -> (String, std::process::Output) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawos"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("HF_ENDPOINT", endpoint)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{message}\n").as_bytes())
        .await
        .unwrap();
    let log = home.join("clawos.db");
    let answered = async {
        loop {
            if let Some(text) = reply_in(&log).await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let reply = tokio::time::timeout(Duration::from_secs(secs), answered)
        .await
        .unwrap_or_else(|_| panic!("Pi answered within {secs} s"));
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the Gateway exits at the end of input")
        .unwrap();
    (reply, out)
}

/// The text of the first reply Pi recorded in the log at `path`, if any.
async fn reply_in(path: &Path) -> Option<String> {
    use sqlx::ConnectOptions;
    if !path.exists() {
        return None;
    }
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .ok()?;
    let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT kind, schema_version, payload FROM events WHERE kind = 'MessageSent' ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .ok()?;
    rows.into_iter().find_map(|(kind, version, payload)| {
        match clawos_events::codec::decode(&kind, version as u16, &payload) {
            Ok(clawos_events::EventPayload::MessageSent(m)) => Some(m.text),
            _ => None,
        }
    })
}
