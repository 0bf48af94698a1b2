//! `clawos models pull` against a local mirror (`HF_ENDPOINT`): a known name lands in
//! `models/` byte for byte; a missing file and a download cut short fail with a clear
//! error and leave nothing that looks like a model.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP/1.1 mirror: `/ok/...` serves `body`, `/cut/...` announces twice its length
/// and closes after half, anything else is 404.
async fn mirror(body: Vec<u8>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.starts_with("/bartowski/") {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                } else if path.starts_with("/cut/") {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len() * 2
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body[..body.len() / 2]).await;
                } else {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

async fn pull(home: &Path, endpoint: &str, what: &str) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawos"))
        .arg("--home")
        .arg(home)
        .args(["models", "pull", what])
        .env("HF_ENDPOINT", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("models pull finished within 60s")
        .unwrap()
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
async fn pull_downloads_whole_files_only() {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let addr = mirror(body.clone()).await;
    let endpoint = format!("http://{addr}");
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");

    let out = pull(home.path(), &endpoint, "smollm2").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = models.join("SmolLM2-135M-Instruct-Q4_K_M.gguf");
    assert_eq!(std::fs::read(&file).unwrap(), body);
    assert_eq!(files_under(&models), ["SmolLM2-135M-Instruct-Q4_K_M.gguf"]);
    let list = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawos"))
        .arg("--home")
        .arg(home.path())
        .args(["models", "list"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("SmolLM2-135M-Instruct-Q4_K_M.gguf"));

    // A file the mirror does not have: a clear error, nothing written.
    let out = pull(home.path(), &endpoint, "nobody/none/missing.gguf").await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("404"), "{err}");
    // A download cut short: an error naming it, and no partial file left.
    let out = pull(home.path(), &endpoint, &format!("{endpoint}/cut/half.gguf")).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("broke off") || err.contains("of 600000 bytes"),
        "{err}"
    );
    assert_eq!(files_under(&models), ["SmolLM2-135M-Instruct-Q4_K_M.gguf"]);
}
