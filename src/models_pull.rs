//! `clawos models pull`: download a model from Hugging Face (or any HTTPS URL) into the
//! state folder's `models/`. Files stream to `NAME.part` with a progress bar and are renamed
//! into place only when complete, so an interrupted download never leaves a file that
//! looks like a model. `HF_ENDPOINT` points at a mirror (the same variable the Hugging Face
//! tools read).

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

/// Where `what` comes from: (URL, path under `models/`) for every file. `what` is a known
/// name (`smollm2`, `minilm`), `OWNER/REPO/FILE` on Hugging Face, or an `https://` URL.
pub fn sources(what: &str, endpoint: &str) -> Result<Vec<(String, PathBuf)>> {
    let endpoint = endpoint.trim_end_matches('/');
    if let Some(files) = known(what) {
        return Ok(files
            .into_iter()
            .map(|f| {
                (
                    format!("{endpoint}/{}/resolve/main/{}", f.repo, f.file),
                    PathBuf::from(f.to),
                )
            })
            .collect());
    }
    if what.starts_with("https://") || what.starts_with("http://") {
        let name = what
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .context("the URL does not end in a file name")?;
        return Ok(vec![(what.to_string(), PathBuf::from(name))]);
    }
    let parts: Vec<&str> = what.splitn(3, '/').collect();
    match parts.as_slice() {
        [owner, repo, file] if !owner.is_empty() && !repo.is_empty() && !file.is_empty() => {
            let name = file.rsplit('/').next().unwrap_or(file);
            Ok(vec![(
                format!("{endpoint}/{owner}/{repo}/resolve/main/{file}"),
                PathBuf::from(name),
            )])
        }
        _ => bail!(
            "`{what}`: expected smollm2, minilm, OWNER/REPO/FILE (Hugging Face) or an https:// URL"
        ),
    }
}

/// Download one URL to `target` through `target.part`.
async fn download(client: &reqwest::Client, url: &str, target: &Path) -> Result<u64> {
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let part = target.with_extension(match target.extension() {
        Some(e) => format!("{}.part", e.to_string_lossy()),
        None => "part".to_string(),
    });
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url}: the server answered {status}");
    }
    let total = response.content_length();
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
    let result = async {
        let mut file = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("cannot write {}", part.display()))?;
        let mut body = response.bytes_stream();
        let mut got = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.with_context(|| format!("{url}: the download broke off"))?;
            file.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", part.display()))?;
            got += chunk.len() as u64;
            bar.set_position(got);
        }
        if let Some(n) = total {
            if got != n {
                bail!("{url}: got {got} of {n} bytes");
            }
        }
        file.sync_all().await?;
        Ok(got)
    }
    .await;
    bar.finish_and_clear();
    match result {
        Ok(got) => {
            tokio::fs::rename(&part, target)
                .await
                .with_context(|| format!("cannot move {} into place", part.display()))?;
            Ok(got)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

/// `clawos models pull WHAT` into `models_dir`.
pub async fn pull(models_dir: &Path, what: &str) -> Result<()> {
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| HF_DEFAULT.to_string());
    let files = sources(what, &endpoint)?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()?;
    for (url, rel) in files {
        let target = models_dir.join(&rel);
        if target.exists() {
            println!("{} is already there", target.display());
            continue;
        }
        let bytes = download(&client, &url, &target).await?;
        println!(
            "downloaded {} ({:.1} MB)",
            target.display(),
            bytes as f64 / 1e6
        );
    }
    println!("restart the Gateway to use it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_repos_and_urls_map_to_files() {
        let s = sources("smollm2", "http://mirror/").unwrap();
        assert_eq!(
            s[0].0,
            "http://mirror/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q4_K_M.gguf"
        );
        assert_eq!(sources("minilm", HF_DEFAULT).unwrap().len(), 3);
        let s = sources("me/repo/sub/model.gguf", HF_DEFAULT).unwrap();
        assert_eq!(
            s[0].0,
            "https://huggingface.co/me/repo/resolve/main/sub/model.gguf"
        );
        assert_eq!(s[0].1, PathBuf::from("model.gguf"));
        let s = sources("https://example.com/x/m.gguf", HF_DEFAULT).unwrap();
        assert_eq!(s[0].1, PathBuf::from("m.gguf"));
        assert!(sources("nonsense", HF_DEFAULT).is_err());
    }
}
