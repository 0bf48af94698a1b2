//! A headless Chromium driven through chromedriver (fantoccini), for the admin UI and the
//! companion app tests. A test that needs it fails with a message naming the missing
//! Debian package; it never skips (`tests/run.sh` installs `chromium` and
//! `chromium-driver`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const WAIT: Duration = Duration::from_secs(20);

/// chromedriver and a headless Chromium session; dropping it kills chromedriver (and with
/// it the browser).
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    screens: &'static str,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a headless Chromium with this window size; screenshots go
    /// to `target/SCREENS/`.
    pub async fn start(window: (u32, u32), screens: &'static str) -> Browser {
        Browser::start_with(window, screens, &[]).await
    }

    /// [`Browser::start`] with more Chromium switches (e.g. a pinned certificate).
    pub async fn start_with(
        window: (u32, u32),
        screens: &'static str,
        switches: &[String],
    ) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install the Debian package `{package}` \
                 (tests/run.sh does: apt-get install chromium chromium-driver)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", format!("--window-size={},{}", window.0, window.1),
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        if let Some(args) = caps["goog:chromeOptions"]["args"].as_array_mut() {
            args.extend(switches.iter().map(|s| json!(s)));
        }
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    panic!("cannot start a Chromium session through chromedriver: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            screens,
            driver,
            _profile: profile,
        }
    }

    /// Save a PNG of the page to `target/SCREENS/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(screens_dir(self.screens).join(format!("{name}.png")), png)
            .expect("write screenshot");
    }

    /// End the session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `target/NAME/`.
pub fn screens_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    std::fs::create_dir_all(&dir).expect("screens dir");
    dir
}

/// Click the element `css` once it is there.
pub async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Wait (at most [`WAIT`]) until `ready` holds; panics naming `what`.
pub async fn wait_for<F, Fut>(c: &Client, what: &str, ready: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !ready(c.clone()).await {
        if Instant::now() > deadline {
            let shot = screens_dir("failures").join("failure.png");
            if let Ok(png) = c.screenshot().await {
                let _ = std::fs::write(&shot, png);
            }
            let main = match c.find(Locator::Css("body")).await {
                Ok(m) => m.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!(
                "waited {WAIT:?} for {what}; screenshot {}; visible text:\n{main}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the element `css` contains `needle`.
pub async fn wait_text(c: &Client, css: &str, needle: &str) {
    let (css, needle) = (css.to_string(), needle.to_string());
    wait_for(c, &format!("{needle:?} in {css}"), |c| {
        let (css, needle) = (css.clone(), needle.clone());
        async move {
            match c.find(Locator::Css(&css)).await {
                Ok(e) => e.text().await.is_ok_and(|t| t.contains(&needle)),
                Err(_) => false,
            }
        }
    })
    .await;
}

/// Wait until exactly `n` elements match `css`.
pub async fn wait_count(c: &Client, css: &str, n: usize) {
    let css = css.to_string();
    wait_for(c, &format!("{n} × {css}"), |c| {
        let css = css.clone();
        async move {
            c.find_all(Locator::Css(&css))
                .await
                .is_ok_and(|v| v.len() == n)
        }
    })
    .await;
}
