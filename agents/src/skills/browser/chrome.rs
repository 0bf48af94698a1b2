//! The Chromium process and its tabs: launched headless on first use with a fresh
//! profile folder, its DevTools `Handler` polled in a spawned task, one tab per
//! session whose every request goes through the URL rules (`Fetch` interception).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::browser::{
    SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, SetBypassServiceWorkerParams};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, DialogType, EventJavascriptDialogOpening,
    HandleJavaScriptDialogParams,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::Page;
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::error::BrowserError;
use super::js;
use super::policy::{BrowserPolicy, Rules};

/// Most tabs kept open at once (one per session); the least recently used is closed.
const MAX_TABS: usize = 8;
/// Blocked URLs remembered per load.
const MAX_BLOCKED: usize = 20;
/// Time to start Chromium and reach its DevTools socket.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for a DevTools command that loads nothing (create a tab, enable a domain).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// A running Chromium.
pub(super) struct Running {
    browser: Browser,
    alive: Arc<AtomicBool>,
    handler: JoinHandle<()>,
    tabs: HashMap<String, Arc<Tab>>,
    _profile: ProfileDir,
}

impl Running {
    /// Start Chromium as `policy` says, headless, with a fresh profile.
    pub(super) async fn launch(policy: &BrowserPolicy) -> Result<Running, BrowserError> {
        let binary = match &policy.binary {
            Some(b) => b.clone(),
            None => find_on_path("chromium").ok_or_else(|| {
                BrowserError::Launch(
                    "`chromium` was not found on PATH; install the Debian package `chromium` \
                     or configure the browser binary"
                        .into(),
                )
            })?,
        };
        let profile = ProfileDir::new()
            .map_err(|e| BrowserError::Launch(format!("cannot create a profile folder: {e}")))?;
        let viewport = Viewport {
            width: 1280,
            height: 800,
            device_scale_factor: None,
            emulating_mobile: false,
            is_landscape: false,
            has_touch: false,
        };
        let config = BrowserConfig::builder()
            .chrome_executable(&binary)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(&profile.0)
            .viewport(viewport)
            .window_size(1280, 800)
            .launch_timeout(LAUNCH_TIMEOUT)
            .request_timeout(policy.page_timeout + COMMAND_TIMEOUT)
            .args([
                "disable-gpu",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "no-first-run",
            ])
            // Frames of other sites stay in the tab's process, so the tab's request
            // interception sees their requests (merged with chromiumoxide's own list).
            .arg((
                "disable-features",
                &["IsolateOrigins", "site-per-process"][..],
            ))
            .build()
            .map_err(|e| BrowserError::Launch(format!("`{}`: {e}", binary.display())))?;
        let launched =
            tokio::time::timeout(LAUNCH_TIMEOUT + COMMAND_TIMEOUT, Browser::launch(config))
                .await
                .map_err(|_| {
                    BrowserError::Launch(format!(
                        "`{}` did not start within {}s",
                        binary.display(),
                        LAUNCH_TIMEOUT.as_secs()
                    ))
                })?;
        let (browser, mut handler) = launched.map_err(|e| {
            BrowserError::Launch(format!(
                "`{}`: {}",
                binary.display(),
                first_line(&e.to_string())
            ))
        })?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!("browser connection closed: {e}");
                    break;
                }
            }
            flag.store(false, Ordering::SeqCst);
        });
        let running = Running {
            browser,
            alive,
            handler,
            tabs: HashMap::new(),
            _profile: profile,
        };
        // Downloads go through the `download` action, never into Chromium's folder.
        let deny = SetDownloadBehaviorParams::new(SetDownloadBehaviorBehavior::Deny);
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, running.browser.execute(deny)).await;
        Ok(running)
    }

    /// Whether the process and its DevTools connection are still up.
    pub(super) fn is_alive(&mut self) -> bool {
        self.alive.load(Ordering::SeqCst) && matches!(self.browser.try_wait(), Ok(None))
    }

    /// The process id of Chromium.
    pub(super) fn pid(&mut self) -> Option<u32> {
        self.browser
            .get_mut_child()
            .and_then(|c| c.as_mut_inner().id())
    }

    /// Stop Chromium and wait for it.
    pub(super) async fn shutdown(mut self) {
        self.tabs.clear();
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, self.browser.kill()).await;
        self.handler.abort();
    }

    /// The tab of `session`, opened (on `about:blank`) if it has none.
    pub(super) async fn tab(
        &mut self,
        session: &str,
        rules: &Arc<Rules>,
    ) -> Result<Arc<Tab>, BrowserError> {
        if let Some(tab) = self.tabs.get(session) {
            tab.touch();
            return Ok(tab.clone());
        }
        if self.tabs.len() >= MAX_TABS {
            let oldest = self
                .tabs
                .iter()
                .min_by_key(|(_, t)| t.last_used())
                .map(|(k, _)| k.clone());
            if let Some(key) = oldest {
                self.close_tab(&key).await;
            }
        }
        let tab = Arc::new(self.open_tab(rules).await?);
        self.tabs.insert(session.to_string(), tab.clone());
        Ok(tab)
    }

    /// Close the tab of `session` (after a load that never finished, the next call gets
    /// a fresh one).
    pub(super) async fn close_tab(&mut self, session: &str) {
        if let Some(tab) = self.tabs.remove(session) {
            let page = tab.page.clone();
            let _ = tokio::time::timeout(COMMAND_TIMEOUT, page.close()).await;
        }
    }

    async fn open_tab(&self, rules: &Arc<Rules>) -> Result<Tab, BrowserError> {
        let stopped = |e: chromiumoxide::error::CdpError| {
            BrowserError::Stopped(format!("cannot open a tab: {}", first_line(&e.to_string())))
        };
        let timed = || BrowserError::Failed("opening a tab timed out".into());
        let page = tokio::time::timeout(COMMAND_TIMEOUT, self.browser.new_page("about:blank"))
            .await
            .map_err(|_| timed())?
            .map_err(stopped)?;
        let setup = async {
            let paused = page.event_listener::<EventRequestPaused>().await?;
            let dialogs = page
                .event_listener::<EventJavascriptDialogOpening>()
                .await?;
            let every = RequestPattern {
                url_pattern: Some("*".into()),
                resource_type: None,
                request_stage: Some(RequestStage::Request),
            };
            page.execute(fetch::EnableParams {
                patterns: Some(vec![every]),
                handle_auth_requests: None,
            })
            .await?;
            page.execute(SetBypassServiceWorkerParams::new(true))
                .await?;
            page.execute(AddScriptToEvaluateOnNewDocumentParams::new(js::INIT))
                .await?;
            Ok::<_, chromiumoxide::error::CdpError>((paused, dialogs))
        };
        let (paused, dialogs) = tokio::time::timeout(COMMAND_TIMEOUT, setup)
            .await
            .map_err(|_| timed())?
            .map_err(stopped)?;
        let blocked = Arc::new(Mutex::new(Vec::new()));
        let intercept = tokio::spawn(intercept(
            page.clone(),
            paused,
            rules.clone(),
            blocked.clone(),
        ));
        let dismiss = tokio::spawn(dismiss_dialogs(page.clone(), dialogs));
        Ok(Tab {
            page,
            alive: self.alive.clone(),
            blocked,
            busy: tokio::sync::Mutex::new(()),
            last_used: Mutex::new(Instant::now()),
            tasks: vec![intercept, dismiss],
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The browser process is killed when `Browser` drops (kill on drop).
        self.handler.abort();
    }
}

/// One session's tab.
pub(super) struct Tab {
    /// The page.
    pub(super) page: Page,
    /// False once the browser's connection is gone.
    alive: Arc<AtomicBool>,
    /// Requests the rules refused since [`Tab::clear_blocked`].
    blocked: Arc<Mutex<Vec<String>>>,
    /// Held while an action runs, so one session's actions do not interleave.
    pub(super) busy: tokio::sync::Mutex<()>,
    last_used: Mutex<Instant>,
    tasks: Vec<JoinHandle<()>>,
}

impl Tab {
    /// Whether the browser behind the tab is still connected.
    pub(super) fn browser_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Forget the blocked requests (before a load).
    pub(super) fn clear_blocked(&self) {
        if let Ok(mut b) = self.blocked.lock() {
            b.clear();
        }
    }

    /// The requests blocked since the last [`Tab::clear_blocked`].
    pub(super) fn blocked(&self) -> Vec<String> {
        self.blocked.lock().map(|b| b.clone()).unwrap_or_default()
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    fn last_used(&self) -> Instant {
        self.last_used
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|_| Instant::now())
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Let every request of the tab through the rules: continue it or fail it as blocked by
/// the client, remembering what was blocked.
async fn intercept(
    page: Page,
    mut paused: chromiumoxide::listeners::EventStream<EventRequestPaused>,
    rules: Arc<Rules>,
    blocked: Arc<Mutex<Vec<String>>>,
) {
    while let Some(event) = paused.next().await {
        let id = event.request_id.clone();
        let result = match rules.request(&event.request.url) {
            Ok(()) => page
                .execute(ContinueRequestParams::new(id))
                .await
                .map(|_| ()),
            Err(why) => {
                if let Ok(mut b) = blocked.lock() {
                    if b.len() < MAX_BLOCKED {
                        let mut url = event.request.url.clone();
                        url.truncate(300);
                        b.push(format!("{url} ({why})"));
                    }
                }
                let fail = FailRequestParams::new(id, ErrorReason::BlockedByClient);
                page.execute(fail).await.map(|_| ())
            }
        };
        if let Err(e) = result {
            tracing::debug!("request interception: {e}");
        }
    }
}

/// Dismiss `alert`/`confirm`/`prompt` dialogs (they would block the page), and let
/// `beforeunload` pass so navigation goes on.
async fn dismiss_dialogs(
    page: Page,
    mut dialogs: chromiumoxide::listeners::EventStream<EventJavascriptDialogOpening>,
) {
    while let Some(d) = dialogs.next().await {
        let accept = d.r#type == DialogType::Beforeunload;
        let _ = page
            .execute(HandleJavaScriptDialogParams::new(accept))
            .await;
    }
}

/// A fresh Chromium profile folder, removed when the browser is gone.
struct ProfileDir(PathBuf);

impl ProfileDir {
    const PREFIX: &'static str = "clawos-browser-";

    fn new() -> std::io::Result<Self> {
        Self::remove_stale();
        let dir = std::env::temp_dir().join(format!(
            "{}{}-{}",
            Self::PREFIX,
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(ProfileDir(dir))
    }

    /// Remove the profile folders of processes that are gone (a crash, a kill, or a
    /// Chromium that wrote into its folder after it was removed).
    fn remove_stale() {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(Self::PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let gone = pid != std::process::id()
                && Path::new("/proc/self").exists()
                && !Path::new(&format!("/proc/{pid}")).exists();
            if gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

impl Drop for ProfileDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `name` in a folder of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The first line of an error (Chromium's stderr can follow it).
pub(super) fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    let mut line = line.to_string();
    if line.len() > 300 {
        let mut end = 300;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}
