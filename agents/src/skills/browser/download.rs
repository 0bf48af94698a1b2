//! The `download` action: fetch an http(s) URL into a workspace path, the domain rules
//! applied to the URL and to every redirect, the size capped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::error::BrowserError;
use super::policy::{BrowserPolicy, Rules};
use crate::skills::fs::FsSkill;

/// Largest file downloaded.
pub(super) const MAX_DOWNLOAD: u64 = 50 * 1024 * 1024;
/// Redirects followed.
const MAX_REDIRECTS: usize = 10;
/// Longest a whole download may take.
const MAX_DURATION: Duration = Duration::from_secs(600);

/// Download `url` to the workspace-relative `path`; what was written.
pub(super) async fn download(
    policy: &BrowserPolicy,
    rules: &Arc<Rules>,
    url: &reqwest::Url,
    path: &str,
) -> Result<String, BrowserError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BrowserError::Refused(
            "download takes an http(s) URL (a file:// path is already in the workspace)".into(),
        ));
    }
    let fs = FsSkill::new(&policy.workspace)
        .map_err(|e| BrowserError::Failed(format!("the workspace is not usable: {e}")))?;
    let dest = fs.resolve(path).map_err(BrowserError::Refused)?;
    if dest.is_symlink() || dest.is_dir() {
        return Err(BrowserError::Refused(format!(
            "`{path}` is a symlink or a folder; name a file"
        )));
    }
    let blocked: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (r, b) = (rules.clone(), blocked.clone());
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        match r.request(attempt.url().as_str()) {
            Ok(()) => attempt.follow(),
            Err(why) => {
                if let Ok(mut b) = b.lock() {
                    *b = Some(format!("{} ({why})", attempt.url()));
                }
                attempt.stop()
            }
        }
    });
    let client = reqwest::Client::builder()
        .redirect(redirects)
        .connect_timeout(policy.page_timeout)
        .read_timeout(policy.page_timeout)
        .build()
        .map_err(|e| BrowserError::Failed(format!("cannot make an HTTP client: {e}")))?;
    let resp = tokio::time::timeout(policy.page_timeout, client.get(url.clone()).send())
        .await
        .map_err(|_| BrowserError::Timeout {
            what: format!("the download of {url}"),
            limit: policy.page_timeout,
        })?
        .map_err(|e| BrowserError::Failed(format!("download of {url} failed: {e}")))?;
    if let Some(b) = blocked.lock().ok().and_then(|b| b.clone()) {
        return Err(BrowserError::Refused(format!(
            "{url} redirected to {b}; blocked by the browser policy"
        )));
    }
    if !resp.status().is_success() {
        return Err(BrowserError::Failed(format!(
            "download of {url}: the server answered {}",
            resp.status()
        )));
    }
    if resp.content_length().is_some_and(|n| n > MAX_DOWNLOAD) {
        return Err(BrowserError::Refused(format!(
            "{url} is larger than the download limit of {} MB",
            MAX_DOWNLOAD / (1024 * 1024)
        )));
    }
    let mime = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown type")
        .to_string();
    let final_url = resp.url().to_string();
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| {
            BrowserError::Failed(format!("cannot create folders for `{path}`: {e}"))
        })?;
    }
    let part = dest.with_file_name(format!(
        ".{}.{}.part",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = tokio::time::timeout(MAX_DURATION, write_body(resp, &part)).await;
    let result = match written {
        Err(_) => Err(BrowserError::Timeout {
            what: format!("the download of {url}"),
            limit: MAX_DURATION,
        }),
        Ok(r) => r,
    };
    let size = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    if let Err(e) = tokio::fs::rename(&part, &dest).await {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(BrowserError::Failed(format!("cannot write `{path}`: {e}")));
    }
    Ok(format!(
        "downloaded {size} bytes ({mime}) from {final_url} to {path}"
    ))
}

/// Stream the body into `part`, stopping past [`MAX_DOWNLOAD`].
async fn write_body(
    mut resp: reqwest::Response,
    part: &std::path::Path,
) -> Result<u64, BrowserError> {
    let io = |e: std::io::Error| BrowserError::Failed(format!("cannot write the download: {e}"));
    let mut file = tokio::fs::File::create(part).await.map_err(io)?;
    let mut size: u64 = 0;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BrowserError::Failed(format!("the download broke off: {e}")))?
    {
        size += chunk.len() as u64;
        if size > MAX_DOWNLOAD {
            return Err(BrowserError::Refused(format!(
                "the file is larger than the download limit of {} MB",
                MAX_DOWNLOAD / (1024 * 1024)
            )));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(size)
}
