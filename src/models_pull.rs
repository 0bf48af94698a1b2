//! `clawos models pull`: download a model from Hugging Face (or any HTTPS URL) into the
//! state folder's `models/`. Files stream to `NAME.part` with a progress bar and are renamed
//! into place only when complete and verified, so an interrupted download never leaves a
//! file that looks like a model:
//! - resumable: a `.part` left by a broken download is continued with an HTTP range
//!   request (a server that ignores ranges sends the whole file again);
//! - verified: for Hugging Face files, the size and checksum the Hub publishes for the
//!   file (`/api/models/REPO/tree/main`: the SHA-256 of an LFS file, the git blob SHA-1
//!   of a small one) must match, or the download is removed and named as damaged.
//!
//! `HF_ENDPOINT` points at a mirror (the same variable the Hugging Face tools read).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// The default Hugging Face endpoint.
pub const HF_DEFAULT: &str = "https://huggingface.co";

/// One file of a known model: repository, file in it, and where it goes under `models/`.
struct RemoteFile {
    repo: &'static str,
    file: &'static str,
    to: &'static str,
}

/// Models `pull` knows by a short name.
fn known(name: &str) -> Option<Vec<RemoteFile>> {
    match name {
        // Pi's embedded default: a 135M instruct model, quantized (about 100 MB).
        "smollm2" => Some(vec![RemoteFile {
            repo: "bartowski/SmolLM2-135M-Instruct-GGUF",
            file: "SmolLM2-135M-Instruct-Q4_K_M.gguf",
            to: "SmolLM2-135M-Instruct-Q4_K_M.gguf",
        }]),
        // A small model trained for tool calls: Qwen2.5-0.5B-Instruct (about 490 MB); its
        // chat template teaches `<tool_call>` calls, which the local provider parses.
        "qwen" => Some(vec![RemoteFile {
            repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
            file: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
            to: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        }]),
        // The memory embedder: all-MiniLM-L6-v2 (safetensors, tokenizer, config).
        "minilm" => Some(
            ["model.safetensors", "tokenizer.json", "config.json"]
                .into_iter()
                .map(|f| RemoteFile {
                    repo: "sentence-transformers/all-MiniLM-L6-v2",
                    file: f,
                    to: match f {
                        "model.safetensors" => "all-MiniLM-L6-v2/model.safetensors",
                        "tokenizer.json" => "all-MiniLM-L6-v2/tokenizer.json",
                        _ => "all-MiniLM-L6-v2/config.json",
                    },
                })
                .collect(),
        ),
        _ => None,
    }
}

/// One file to download.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Where it comes from.
    pub url: String,
    /// Where it goes under `models/`.
    pub to: PathBuf,
    /// On Hugging Face: the repository and the file's path in it (for its checksum).
    pub hub: Option<(String, String)>,
}

/// Where `what` comes from, file by file. `what` is a known name (`smollm2`, `qwen`, `minilm`),
/// `OWNER/REPO/FILE` on Hugging Face, or an `https://` URL.
pub fn sources(what: &str, endpoint: &str) -> Result<Vec<Source>> {
    let endpoint = endpoint.trim_end_matches('/');
    let hub = |repo: &str, file: &str, to: PathBuf| Source {
        url: format!("{endpoint}/{repo}/resolve/main/{file}"),
        to,
        hub: Some((repo.to_string(), file.to_string())),
    };
    if let Some(files) = known(what) {
        return Ok(files
            .into_iter()
            .map(|f| hub(f.repo, f.file, PathBuf::from(f.to)))
            .collect());
    }
    if what.starts_with("https://") || what.starts_with("http://") {
        let name = what
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .context("the URL does not end in a file name")?;
        return Ok(vec![Source {
            url: what.to_string(),
            to: PathBuf::from(name),
            hub: None,
        }]);
    }
    let parts: Vec<&str> = what.splitn(3, '/').collect();
    match parts.as_slice() {
        [owner, repo, file] if !owner.is_empty() && !repo.is_empty() && !file.is_empty() => {
            let name = file.rsplit('/').next().unwrap_or(file);
            Ok(vec![hub(&format!("{owner}/{repo}"), file, PathBuf::from(name))])
        }
        _ => bail!(
            "`{what}`: expected smollm2, qwen, minilm, OWNER/REPO/FILE (Hugging Face) or an https:// URL"
        ),
    }
}

/// What the publisher says a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its size in bytes.
    pub size: u64,
    /// Its checksum.
    pub checksum: Checksum,
}

/// A file's checksum as the Hub publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256 of the content, hex (LFS files: models, weights).
    Sha256(String),
    /// Git blob SHA-1, hex: SHA-1 of `blob SIZE\0` and the content (small files).
    GitBlobSha1(String),
}

impl Checksum {
    fn of(&self, path: &Path) -> Result<String> {
        use sha1::Digest as _;
        use std::io::Read;
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let size = file.metadata()?.len();
        let mut sha256 = sha2::Sha256::new();
        let mut sha1 = sha1::Sha1::new();
        if matches!(self, Checksum::GitBlobSha1(_)) {
            sha1.update(format!("blob {size}\0").as_bytes());
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            match self {
                Checksum::Sha256(_) => sha2::Digest::update(&mut sha256, &buf[..n]),
                Checksum::GitBlobSha1(_) => sha1.update(&buf[..n]),
            }
        }
        Ok(match self {
            Checksum::Sha256(_) => hex::encode(sha2::Digest::finalize(sha256)),
            Checksum::GitBlobSha1(_) => hex::encode(sha1.finalize()),
        })
    }

    fn expected(&self) -> &str {
        match self {
            Checksum::Sha256(h) | Checksum::GitBlobSha1(h) => h,
        }
    }
}

/// The size and checksum the Hub publishes for `file` in `repo`.
async fn published(
    client: &reqwest::Client,
    endpoint: &str,
    repo: &str,
    file: &str,
) -> Result<Published> {
    let folder = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let url = format!(
        "{}/api/models/{repo}/tree/main/{folder}",
        endpoint.trim_end_matches('/')
    );
    let what = || format!("cannot read the file list of {repo} to verify {file} ({url})");
    let response = client.get(&url).send().await.with_context(what)?;
    if !response.status().is_success() {
        bail!("{}: the server answered {}", what(), response.status());
    }
    let entries: Vec<serde_json::Value> = response.json().await.with_context(what)?;
    let entry = entries
        .iter()
        .find(|e| e["path"].as_str() == Some(file))
        .ok_or_else(|| anyhow::anyhow!("{repo} has no file {file}"))?;
    let lfs = &entry["lfs"];
    let (size, checksum) = match (lfs["oid"].as_str(), entry["oid"].as_str()) {
        (Some(sha256), _) => (
            lfs["size"].as_u64(),
            Checksum::Sha256(sha256.to_lowercase()),
        ),
        (None, Some(sha1)) => (
            entry["size"].as_u64(),
            Checksum::GitBlobSha1(sha1.to_lowercase()),
        ),
        _ => bail!("{repo} publishes no checksum for {file}"),
    };
    Ok(Published {
        size: size.ok_or_else(|| anyhow::anyhow!("{repo} publishes no size for {file}"))?,
        checksum,
    })
}

/// `target`'s partial download: `NAME.EXT.part`.
fn part_of(target: &Path) -> PathBuf {
    target.with_extension(match target.extension() {
        Some(e) => format!("{}.part", e.to_string_lossy()),
        None => "part".to_string(),
    })
}

/// Download one URL to `target` through `target.part`, continuing a `.part` a broken
/// download left, then checking it against `expected` (when known) before it is renamed
/// into place. A damaged download is removed.
async fn download(
    client: &reqwest::Client,
    url: &str,
    target: &Path,
    expected: Option<&Published>,
) -> Result<u64> {
    use reqwest::header::{CONTENT_LENGTH, RANGE};
    use reqwest::StatusCode;
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let part = part_of(target);
    let have = tokio::fs::metadata(&part)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let complete = expected.is_some_and(|e| have == e.size);
    if !complete {
        let mut request = client.get(url);
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let resumed = status == StatusCode::PARTIAL_CONTENT && have > 0;
        if status != StatusCode::RANGE_NOT_SATISFIABLE {
            if !status.is_success() {
                bail!("{url}: the server answered {status}");
            }
            let start = if resumed { have } else { 0 };
            let total = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(|n| n + start);
            if resumed {
                println!(
                    "continuing {} from {:.1} MB",
                    target.display(),
                    start as f64 / 1e6
                );
            }
            receive(response, &part, start, total, url, target).await?;
        }
    }
    let got = tokio::fs::metadata(&part).await?.len();
    if let Some(e) = expected {
        let actual = if got == e.size {
            e.checksum.of(&part)?
        } else {
            format!("{got} bytes instead of {}", e.size)
        };
        if actual != e.checksum.expected() {
            let _ = tokio::fs::remove_file(&part).await;
            bail!(
                "{url}: the download is damaged (expected {} {}, got {actual}); it was \
                 removed, run the command again",
                match e.checksum {
                    Checksum::Sha256(_) => "SHA-256",
                    Checksum::GitBlobSha1(_) => "git blob SHA-1",
                },
                e.checksum.expected()
            );
        }
    }
    tokio::fs::rename(&part, target)
        .await
        .with_context(|| format!("cannot move {} into place", part.display()))?;
    Ok(got)
}

/// Stream a response body into `part` from byte `start` (appending when resuming), with a
/// progress bar. A body that breaks off leaves `part` for the next run to continue.
async fn receive(
    response: reqwest::Response,
    part: &Path,
    start: u64,
    total: Option<u64>,
    url: &str,
    target: &Path,
) -> Result<()> {
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    bar.set_position(start);
    let result = async {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(start > 0)
            .truncate(start == 0)
            .open(part)
            .await
            .with_context(|| format!("cannot write {}", part.display()))?;
        let mut body = response.bytes_stream();
        let mut got = start;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.with_context(|| {
                format!(
                    "{url}: the download broke off at {:.1} MB; run the command again to \
                     continue it",
                    got as f64 / 1e6
                )
            })?;
            file.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", part.display()))?;
            got += chunk.len() as u64;
            bar.set_position(got);
        }
        file.sync_all().await?;
        if let Some(n) = total {
            if got != n {
                bail!("{url}: got {got} of {n} bytes; run the command again to continue");
            }
        }
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    result
}

/// `clawos models pull WHAT` into `models_dir`.
pub async fn pull(models_dir: &Path, what: &str) -> Result<()> {
    fetch(models_dir, what).await?;
    println!("restart the Gateway to use it");
    Ok(())
}

/// Download every file of `what` into `models_dir` (what is there already is kept).
pub async fn fetch(models_dir: &Path, what: &str) -> Result<()> {
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| HF_DEFAULT.to_string());
    let files = sources(what, &endpoint)?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()?;
    for source in files {
        let target = models_dir.join(&source.to);
        if target.exists() {
            println!("{} is already there", target.display());
            continue;
        }
        let expected = match &source.hub {
            Some((repo, file)) => Some(published(&client, &endpoint, repo, file).await?),
            None => {
                println!(
                    "note: {} publishes no checksum; the download is not verified",
                    source.url
                );
                None
            }
        };
        let bytes = download(&client, &source.url, &target, expected.as_ref()).await?;
        println!(
            "downloaded {} ({:.1} MB{})",
            target.display(),
            bytes as f64 / 1e6,
            if expected.is_some() {
                ", checksum verified"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_repos_and_urls_map_to_files() {
        let s = sources("smollm2", "http://mirror/").unwrap();
        assert_eq!(
            s[0].url,
            "http://mirror/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q4_K_M.gguf"
        );
        assert_eq!(sources("minilm", HF_DEFAULT).unwrap().len(), 3);
        let s = sources("me/repo/sub/model.gguf", HF_DEFAULT).unwrap();
        assert_eq!(
            s[0].url,
            "https://huggingface.co/me/repo/resolve/main/sub/model.gguf"
        );
        assert_eq!(s[0].to, PathBuf::from("model.gguf"));
        assert_eq!(s[0].hub, Some(("me/repo".into(), "sub/model.gguf".into())));
        let s = sources("https://example.com/x/m.gguf", HF_DEFAULT).unwrap();
        assert_eq!(s[0].to, PathBuf::from("m.gguf"));
        assert_eq!(s[0].hub, None);
        assert!(sources("nonsense", HF_DEFAULT).is_err());
    }
}
