//! Which URLs the browser may load: schemes, domains (allowed and denied, from the
//! configuration) and `file://` paths inside the workspace. Checked before every
//! navigation and download, and for every request the page makes (redirects and
//! subresources included) through the DevTools `Fetch` domain.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

/// The browser's limits, from the configuration.
#[derive(Debug, Clone)]
pub struct BrowserPolicy {
    /// The Chromium binary; `None`: `chromium` on `PATH`.
    pub binary: Option<PathBuf>,
    /// Domains that may be loaded (each with its subdomains); empty: every domain not
    /// denied.
    pub allowed_domains: Vec<String>,
    /// Domains never loaded (with their subdomains); wins over `allowed_domains`.
    pub denied_domains: Vec<String>,
    /// Page loads (opens, navigations after a click or submit, downloads) per turn.
    pub max_pages_per_turn: u32,
    /// Longest one load may take.
    pub page_timeout: Duration,
    /// Bytes of page text returned.
    pub max_text: usize,
    /// Where downloads land; `file://` URLs are allowed only inside it.
    pub workspace: PathBuf,
}

impl Default for BrowserPolicy {
    fn default() -> Self {
        BrowserPolicy {
            binary: None,
            allowed_domains: Vec::new(),
            denied_domains: Vec::new(),
            max_pages_per_turn: 10,
            page_timeout: Duration::from_secs(20),
            max_text: 16 * 1024,
            workspace: PathBuf::from("."),
        }
    }
}

/// The URL rules of one browser, shared with its request interceptors.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    allowed: Vec<String>,
    denied: Vec<String>,
    workspace: PathBuf,
}

impl Rules {
    /// The rules of `policy`, domain rules normalised (`*.example.org`, `Example.org.`
    /// and `example.org` are the same rule).
    pub(super) fn new(policy: &BrowserPolicy) -> Self {
        let norm = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|d| normalize_rule(d))
                .filter(|d| !d.is_empty())
                .collect()
        };
        Rules {
            allowed: norm(&policy.allowed_domains),
            denied: norm(&policy.denied_domains),
            workspace: policy.workspace.clone(),
        }
    }

    /// Whether a host may be contacted; the reason when not.
    pub(super) fn host(&self, host: &str) -> Result<(), String> {
        let host = normalize_host(host);
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        if let Some(rule) = self.denied.iter().find(|r| matches(&host, r)) {
            return Err(if *rule == host {
                format!("`{host}` is a denied domain")
            } else {
                format!("`{host}` is denied (as part of `{rule}`)")
            });
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|r| matches(&host, r)) {
            return Err(format!(
                "`{host}` is not among the allowed domains ({})",
                self.allowed.join(", ")
            ));
        }
        Ok(())
    }

    /// A URL the model asked to open or download: http, https or a `file://` path
    /// inside the workspace. A bare `example.org/page` is read as `https://`.
    pub(super) fn navigation(&self, raw: &str) -> Result<Url, String> {
        let raw = raw.trim();
        let parsed = if raw.contains(':') {
            Url::parse(raw)
        } else {
            Url::parse(&format!("https://{raw}"))
        };
        let url = parsed.map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => {
                self.host(url.host_str().unwrap_or(""))?;
                Ok(url)
            }
            "file" => {
                self.file(&url)?;
                Ok(url)
            }
            other => Err(format!(
                "`{other}:` URLs are not allowed; only http, https and file:// inside the workspace"
            )),
        }
    }

    /// A request the page makes (a redirect, an image, a script, a frame).
    pub(super) fn request(&self, raw: &str) -> Result<(), String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => self.host(url.host_str().unwrap_or("")),
            "file" => self.file(&url),
            "data" | "blob" | "about" => Ok(()),
            other => Err(format!("`{other}:` URLs are not allowed")),
        }
    }

    /// A `file://` URL must name an existing path inside the workspace (symlinks
    /// followed).
    fn file(&self, url: &Url) -> Result<(), String> {
        let outside = || "file:// is allowed only inside the workspace".to_string();
        if url
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
        {
            return Err(outside());
        }
        let path = url.to_file_path().map_err(|_| outside())?;
        let root = self
            .workspace
            .canonicalize()
            .unwrap_or_else(|_| self.workspace.clone());
        match path.canonicalize() {
            Ok(real) if real.starts_with(&root) => Ok(()),
            Ok(_) => Err(outside()),
            Err(_) if lexically_inside(&path, &root) => Err(format!(
                "`{}` does not exist in the workspace",
                path.display()
            )),
            Err(_) => Err(outside()),
        }
    }
}

fn lexically_inside(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// `Example.ORG.` → `example.org`; `[::1]` → `::1`.
fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A configured domain: `*.example.org`, `.example.org`, `https://example.org/x` and
/// `example.org:443` all mean `example.org`.
fn normalize_rule(rule: &str) -> String {
    let rule = rule.trim();
    let host = match Url::parse(rule) {
        Ok(u) if u.host_str().is_some() => u.host_str().unwrap_or_default().to_string(),
        _ => {
            let r = rule.trim_start_matches("*.").trim_start_matches('.');
            // `host:port`, but not a bare IPv6 address.
            match r.rsplit_once(':') {
                Some((h, port)) if !h.contains(':') && port.parse::<u16>().is_ok() => h.into(),
                _ => r.to_string(),
            }
        }
    };
    normalize_host(&host)
}

/// A host matches a rule when it is the rule's domain or one of its subdomains; an IP
/// address only matches itself.
fn matches(host: &str, rule: &str) -> bool {
    if host == rule {
        return true;
    }
    if host.parse::<IpAddr>().is_ok() {
        return false;
    }
    host.len() > rule.len()
        && host.ends_with(rule)
        && host.as_bytes()[host.len() - rule.len() - 1] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allowed: &[&str], denied: &[&str], workspace: &Path) -> Rules {
        Rules::new(&BrowserPolicy {
            allowed_domains: allowed.iter().map(|s| s.to_string()).collect(),
            denied_domains: denied.iter().map(|s| s.to_string()).collect(),
            workspace: workspace.to_path_buf(),
            ..BrowserPolicy::default()
        })
    }

    #[test]
    fn domains_allow_subdomains_and_deny_wins() {
        let ws = tempfile::tempdir().unwrap();
        let r = rules(
            &["Example.org", "*.docs.rs"],
            &["bad.example.org"],
            ws.path(),
        );
        for ok in [
            "https://example.org/",
            "http://www.example.org/a?b",
            "https://EXAMPLE.ORG./",
            "https://docs.rs/x",
            "https://a.docs.rs/",
        ] {
            assert!(r.navigation(ok).is_ok(), "{ok}: {:?}", r.navigation(ok));
        }
        for bad in [
            "https://bad.example.org/",
            "https://x.bad.example.org/",
            "https://notexample.org/",
            "https://example.org.evil.com/",
            "https://127.0.0.1/",
        ] {
            assert!(r.navigation(bad).is_err(), "{bad} was allowed");
        }
        assert!(r.request("https://evil.com/pixel.gif").is_err());
        assert!(r.request("data:image/png;base64,AAAA").is_ok());
    }

    #[test]
    fn empty_allow_list_allows_all_but_denied() {
        let ws = tempfile::tempdir().unwrap();
        let r = rules(&[], &["localhost", "10.0.0.1:8080"], ws.path());
        assert!(r.navigation("http://127.0.0.1:9/").is_ok());
        assert!(r.navigation("http://localhost:9/").is_err());
        assert!(r.navigation("http://sub.localhost/").is_err());
        assert!(r.navigation("http://10.0.0.1/").is_err());
        // IP addresses match exactly, not as suffixes.
        let r = rules(&[], &["0.0.1"], ws.path());
        assert!(r.navigation("http://127.0.0.1/").is_ok());
        // A bare domain is read as https.
        let u = rules(&[], &[], ws.path())
            .navigation("example.org/a")
            .unwrap();
        assert_eq!(u.as_str(), "https://example.org/a");
    }

    #[test]
    fn schemes_and_files() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("page.html"), "<p>hi</p>").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("s.html"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join("link")).unwrap();
        let r = rules(&[], &[], ws.path());
        for bad in [
            "chrome://settings",
            "javascript:alert(1)",
            "data:text/html,<p>x</p>",
            "file:///etc/passwd",
            "ftp://example.org/",
            "about:blank",
        ] {
            let e = r.navigation(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        let inside = Url::from_file_path(ws.path().join("page.html")).unwrap();
        assert!(r.navigation(inside.as_str()).is_ok());
        let via_link = Url::from_file_path(ws.path().join("link/s.html")).unwrap();
        assert!(r.navigation(via_link.as_str()).is_err());
        let missing = Url::from_file_path(ws.path().join("nope.html")).unwrap();
        assert!(r
            .navigation(missing.as_str())
            .unwrap_err()
            .contains("does not exist"));
        assert!(r
            .navigation("file:///etc/passwd")
            .unwrap_err()
            .contains("workspace"));
    }
}
