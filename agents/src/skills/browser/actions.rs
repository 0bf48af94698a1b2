//! What the model does in its tab: open, read text and links, click, fill and type,
//! take screenshots. Every DevTools call is bounded by the page timeout.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, InsertTextParams,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventFrameStartedLoading, EventFrameStoppedLoading, StopLoadingParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::chrome::{first_line, Tab};
use super::error::BrowserError;
use super::js;
use crate::skills::cap;

/// Most links listed.
pub(super) const MAX_LINKS: usize = 100;
/// Most characters `type` sends as keystrokes (use `fill` for long text).
pub(super) const MAX_TYPED: usize = 2000;
/// How long after a click or submit a page load must start to be waited for.
const NAVIGATION_GRACE: Duration = Duration::from_millis(800);

/// The page's readable text, as [`js::EXTRACT`] returns it.
#[derive(Deserialize)]
struct Extract {
    title: String,
    url: String,
    text: String,
    total: u64,
    cut: bool,
}

/// Title and URL.
#[derive(Deserialize)]
struct Info {
    title: String,
    url: String,
}

/// The outcome of [`js::CLICK`] or [`js::FOCUS_FIELD`].
#[derive(Deserialize)]
struct Target {
    error: Option<String>,
    #[serde(default)]
    count: u32,
    #[serde(default)]
    desc: String,
    #[serde(default)]
    how: String,
}

/// A DevTools failure: the browser stopped, or the call failed.
pub(super) fn cdp_error(tab: &Tab, what: &str, e: CdpError) -> BrowserError {
    if !tab.browser_alive() {
        BrowserError::Stopped(format!("{what}: {}", first_line(&e.to_string())))
    } else {
        BrowserError::Failed(format!("{what}: {}", first_line(&e.to_string())))
    }
}

/// Run `script` in the page and read its JSON result.
async fn eval<T: DeserializeOwned>(
    tab: &Tab,
    script: String,
    limit: Duration,
) -> Result<T, BrowserError> {
    let mut params = EvaluateParams::new(script);
    params.return_by_value = Some(true);
    params.await_promise = Some(true);
    let resp = tokio::time::timeout(limit, tab.page.execute(params))
        .await
        .map_err(|_| BrowserError::Timeout {
            what: "the page's script".into(),
            limit,
        })?
        .map_err(|e| cdp_error(tab, "running a script in the page", e))?;
    if let Some(ex) = &resp.result.exception_details {
        let detail = ex
            .exception
            .as_ref()
            .and_then(|e| e.description.clone())
            .unwrap_or_else(|| ex.text.clone());
        return Err(BrowserError::Failed(format!(
            "the page's script failed: {}",
            first_line(&detail)
        )));
    }
    let value = resp.result.result.value.clone().unwrap_or_default();
    serde_json::from_value(value)
        .map_err(|e| BrowserError::Failed(format!("unexpected answer from the page: {e}")))
}

/// The lines naming requests the policy blocked, if any.
fn blocked_note(tab: &Tab) -> String {
    let blocked = tab.blocked();
    if blocked.is_empty() {
        return String::new();
    }
    let mut note = String::from("blocked by the browser policy:\n");
    for b in blocked {
        note.push_str(&format!("- {b}\n"));
    }
    note
}

/// Navigate the tab to `url` and return its title, final URL and text. A load that
/// does not finish within `limit` is a [`BrowserError::Timeout`] (the caller replaces
/// the tab).
pub(super) async fn open(
    tab: &Tab,
    url: &str,
    limit: Duration,
    max_text: usize,
) -> Result<String, BrowserError> {
    tab.clear_blocked();
    match tokio::time::timeout(limit, tab.page.goto(url)).await {
        Err(_) => {
            return Err(BrowserError::Timeout {
                what: format!("loading {url}"),
                limit,
            })
        }
        Ok(Err(e)) => {
            let note = blocked_note(tab);
            if !note.is_empty() {
                return Err(BrowserError::Refused(format!(
                    "{url} was not loaded; {note}"
                )));
            }
            return Err(cdp_error(tab, &format!("loading {url}"), e));
        }
        Ok(Ok(_)) => {}
    }
    let x = extract(tab, limit, max_text).await?;
    if x.url.starts_with("chrome-error://") {
        let note = blocked_note(tab);
        return Err(BrowserError::Failed(format!(
            "{url} could not be loaded{}",
            if note.is_empty() {
                String::new()
            } else {
                format!("; {note}")
            }
        )));
    }
    Ok(render(tab, x, max_text))
}

async fn extract(tab: &Tab, limit: Duration, max_text: usize) -> Result<Extract, BrowserError> {
    eval(tab, js::call(js::EXTRACT, &json!(max_text.max(1))), limit).await
}

fn render(tab: &Tab, x: Extract, max_text: usize) -> String {
    let max = max_text.max(1);
    let mut out = format!("title: {}\nurl: {}\n", x.title, x.url);
    out.push_str(&blocked_note(tab));
    out.push('\n');
    out.push_str(&cap(x.text, max));
    if x.cut {
        out.push_str(&format!(
            "\n[page text cut: about {} characters in all, the first {max} bytes shown]",
            x.total
        ));
    }
    out
}

/// The current page: title, URL, blocked requests and readable text, capped.
pub(super) async fn read(
    tab: &Tab,
    limit: Duration,
    max_text: usize,
) -> Result<String, BrowserError> {
    let x = extract(tab, limit, max_text).await?;
    Ok(render(tab, x, max_text))
}

/// Whether a page is open (not the blank start page).
pub(super) async fn has_page(tab: &Tab, limit: Duration) -> Result<bool, BrowserError> {
    let info: Info = eval(tab, js::call(js::INFO, &json!(null)), limit).await?;
    Ok(info.url != "about:blank")
}

/// Numbered visible links: text → absolute URL.
pub(super) async fn links(tab: &Tab, limit: Duration) -> Result<String, BrowserError> {
    #[derive(Deserialize)]
    struct Links {
        links: Vec<(String, String)>,
        count: usize,
    }
    let l: Links = eval(tab, js::call(js::LINKS, &json!(MAX_LINKS)), limit).await?;
    if l.links.is_empty() {
        return Ok("no visible links".into());
    }
    let mut out = String::new();
    for (i, (text, href)) in l.links.iter().enumerate() {
        let text = if text.is_empty() { "(no text)" } else { text };
        out.push_str(&format!("{}. {text} → {href}\n", i + 1));
    }
    if l.count > l.links.len() {
        out.push_str(&format!(
            "[{} links in all, first {} shown]\n",
            l.count,
            l.links.len()
        ));
    }
    Ok(out)
}

/// Watches the main frame for a load started by a click or a submit.
pub(super) struct NavigationWatch {
    started: EventStream<EventFrameStartedLoading>,
    stopped: EventStream<EventFrameStoppedLoading>,
    main: Option<chromiumoxide::cdp::browser_protocol::page::FrameId>,
}

impl NavigationWatch {
    /// Start watching (before the action that may navigate).
    pub(super) async fn start(tab: &Tab, limit: Duration) -> Result<Self, BrowserError> {
        let setup = async {
            let started = tab
                .page
                .event_listener::<EventFrameStartedLoading>()
                .await?;
            let stopped = tab
                .page
                .event_listener::<EventFrameStoppedLoading>()
                .await?;
            let main = tab.page.mainframe().await?;
            Ok::<_, CdpError>(NavigationWatch {
                started,
                stopped,
                main,
            })
        };
        tokio::time::timeout(limit, setup)
            .await
            .map_err(|_| BrowserError::Timeout {
                what: "watching the page".into(),
                limit,
            })?
            .map_err(|e| cdp_error(tab, "watching the page", e))
    }

    fn is_main(&self, frame: &chromiumoxide::cdp::browser_protocol::page::FrameId) -> bool {
        self.main.as_ref().is_none_or(|m| m == frame)
    }

    /// Whether a load started within the grace period; if one did, wait (up to `limit`)
    /// for it to finish. A load that does not finish is stopped and is a timeout.
    pub(super) async fn wait(mut self, tab: &Tab, limit: Duration) -> Result<bool, BrowserError> {
        let grace = tokio::time::Instant::now() + NAVIGATION_GRACE;
        loop {
            match tokio::time::timeout_at(grace, self.started.next()).await {
                Err(_) => return Ok(false),
                Ok(None) => {
                    return Err(BrowserError::Stopped("the tab went away".into()));
                }
                Ok(Some(ev)) if self.is_main(&ev.frame_id) => break,
                Ok(Some(_)) => {}
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.stopped.next()).await {
                Err(_) => {
                    let stop = tab.page.execute(StopLoadingParams::default());
                    let _ = tokio::time::timeout(Duration::from_secs(2), stop).await;
                    return Err(BrowserError::Timeout {
                        what: "the page it opened".into(),
                        limit,
                    });
                }
                Ok(None) => return Err(BrowserError::Stopped("the tab went away".into())),
                Ok(Some(ev)) if self.is_main(&ev.frame_id) => return Ok(true),
                Ok(Some(_)) => {}
            }
        }
    }
}

/// What follows an action that may have loaded a page: the new title and URL.
pub(super) async fn after_action(
    tab: &Tab,
    navigated: bool,
    limit: Duration,
) -> Result<String, BrowserError> {
    let info: Info = eval(tab, js::call(js::INFO, &json!(null)), limit).await?;
    if info.url.starts_with("chrome-error://") {
        return Err(BrowserError::Failed(format!(
            "the page it opened could not be loaded (the tab shows an error page){}",
            match blocked_note(tab) {
                n if n.is_empty() => String::new(),
                n => format!("; {n}"),
            }
        )));
    }
    let mut out = if navigated {
        format!("a page loaded\ntitle: {}\nurl: {}\n", info.title, info.url)
    } else {
        format!(
            "no page load followed\ntitle: {}\nurl: {}\n",
            info.title, info.url
        )
    };
    out.push_str(&blocked_note(tab));
    out.push_str("(use `text` to read the page)");
    Ok(out)
}

/// Click the element matching `selector`, or the link or button showing `text`; the
/// description of what was clicked.
pub(super) async fn click(
    tab: &Tab,
    selector: Option<&str>,
    text: Option<&str>,
    limit: Duration,
) -> Result<String, BrowserError> {
    let arg = json!({"selector": selector, "text": text});
    let t: Target = eval(tab, js::call(js::CLICK, &arg), limit).await?;
    if let Some(e) = t.error {
        return Err(BrowserError::Refused(e));
    }
    let mut out = format!("clicked {}", t.desc);
    if t.count > 1 {
        out.push_str(&format!(
            " ({} elements match the {}; clicked the first)",
            t.count, t.how
        ));
    }
    out.push('\n');
    Ok(out)
}

/// Focus the field matching `selector`; `fill` replaces its value, otherwise `text`
/// is typed after what it holds. The description of the field.
pub(super) async fn fill(
    tab: &Tab,
    selector: &str,
    text: &str,
    replace: bool,
    limit: Duration,
) -> Result<String, BrowserError> {
    let mode = if replace { "fill" } else { "type" };
    let arg = json!({"selector": selector, "text": text, "mode": mode});
    let t: Target = eval(tab, js::call(js::FOCUS_FIELD, &arg), limit).await?;
    if let Some(e) = t.error {
        return Err(BrowserError::Refused(e));
    }
    if !replace {
        let typing = async {
            for ch in text.chars() {
                type_char(tab, ch).await?;
            }
            Ok::<_, CdpError>(())
        };
        tokio::time::timeout(limit, typing)
            .await
            .map_err(|_| BrowserError::Timeout {
                what: "typing".into(),
                limit,
            })?
            .map_err(|e| cdp_error(tab, "typing", e))?;
    }
    let verb = if replace { "filled" } else { "typed into" };
    let mut out = format!("{verb} {} ({} characters)", t.desc, text.chars().count());
    if t.count > 1 {
        out.push_str(&format!(" ({} elements match; used the first)", t.count));
    }
    out.push('\n');
    Ok(out)
}

/// One keystroke: a key of the US layout when there is one, else inserted text.
async fn type_char(tab: &Tab, ch: char) -> Result<(), CdpError> {
    let s = if ch == '\n' {
        "Enter".to_string()
    } else {
        ch.to_string()
    };
    let Some(def) = chromiumoxide::keys::get_key_definition(&s) else {
        tab.page.execute(InsertTextParams::new(s)).await?;
        return Ok(());
    };
    press(tab, def).await
}

/// Press and release a key of the US layout.
async fn press(tab: &Tab, def: &chromiumoxide::keys::KeyDefinition) -> Result<(), CdpError> {
    let text = def.text.or(if def.key.chars().count() == 1 {
        Some(def.key)
    } else {
        None
    });
    let mut down = DispatchKeyEventParams::builder()
        .r#type(if text.is_some() {
            DispatchKeyEventType::KeyDown
        } else {
            DispatchKeyEventType::RawKeyDown
        })
        .key(def.key)
        .code(def.code)
        .windows_virtual_key_code(def.key_code)
        .native_virtual_key_code(def.key_code);
    if let Some(t) = text {
        down = down.text(t);
    }
    let up = down.clone().r#type(DispatchKeyEventType::KeyUp);
    let (down, up) = match (down.build(), up.build()) {
        (Ok(d), Ok(u)) => (d, u),
        (Err(e), _) | (_, Err(e)) => return Err(CdpError::msg(e)),
    };
    tab.page.execute(down).await?;
    tab.page.execute(up).await?;
    Ok(())
}

/// Submit the form of the field matching `selector` (or press Enter in it).
pub(super) async fn submit(tab: &Tab, selector: &str, limit: Duration) -> Result<(), BrowserError> {
    let how: String = eval(
        tab,
        js::call(js::SUBMIT, &json!({"selector": selector})),
        limit,
    )
    .await?;
    if how == "enter" {
        if let Some(def) = chromiumoxide::keys::get_key_definition("Enter") {
            tokio::time::timeout(limit, press(tab, def))
                .await
                .map_err(|_| BrowserError::Timeout {
                    what: "pressing Enter".into(),
                    limit,
                })?
                .map_err(|e| cdp_error(tab, "pressing Enter", e))?;
        }
    }
    Ok(())
}

/// A PNG of the visible part of the page.
pub(super) async fn screenshot(tab: &Tab, limit: Duration) -> Result<Vec<u8>, BrowserError> {
    let params = ScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .build();
    tokio::time::timeout(limit, tab.page.screenshot(params))
        .await
        .map_err(|_| BrowserError::Timeout {
            what: "the screenshot".into(),
            limit,
        })?
        .map_err(|e| cdp_error(tab, "taking the screenshot", e))
}
