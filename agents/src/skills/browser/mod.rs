//! The `browser` skill: a headless Chromium driven over the DevTools protocol
//! (`chromiumoxide`). The model opens pages and reads them as clean text, lists links,
//! clicks, fills and types into inputs, takes screenshots (handed to the person as
//! attachments) and downloads files into the workspace.
//!
//! Chromium is started on first use with a fresh profile folder and kept for later turns;
//! if it died, the next call starts a new one. Each session gets its own tab, so two
//! conversations never share a page.
//!
//! The limits come from the configuration ([`BrowserPolicy`]), never from the prompt:
//! only http, https and `file://` inside the workspace; allowed and denied domains,
//! checked before navigating and for every request the page makes (redirects and
//! subresources, through the `Fetch` domain); a page budget per turn; a timeout per load;
//! a cap on the text returned.
//!
//! # Layout
//! - this file: [`BrowserPolicy`], [`BrowserSkill`], the actions' dispatch, the budget.
//! - `policy.rs`: the URL rules. `chrome.rs`: the process, its tabs, request
//!   interception. `actions.rs`: what is done in a tab. `js.rs`: the scripts run in
//!   pages. `download.rs`: the `download` action.

mod actions;
mod chrome;
mod download;
mod error;
mod js;
mod policy;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use super::{Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;
use actions::NavigationWatch;
use chrome::{Running, Tab};
pub(crate) use error::BrowserError;
pub use policy::BrowserPolicy;
use policy::Rules;

/// Turns whose page budget is remembered.
const BUDGET_TURNS: usize = 256;

/// Page loads used per turn.
#[derive(Default)]
struct Budgets {
    used: HashMap<uuid::Uuid, u32>,
    order: VecDeque<uuid::Uuid>,
}

impl Budgets {
    fn used(&self, turn: uuid::Uuid) -> u32 {
        self.used.get(&turn).copied().unwrap_or(0)
    }

    fn take(&mut self, turn: uuid::Uuid) {
        if !self.used.contains_key(&turn) {
            self.order.push_back(turn);
            while self.order.len() > BUDGET_TURNS {
                if let Some(old) = self.order.pop_front() {
                    self.used.remove(&old);
                }
            }
        }
        *self.used.entry(turn).or_insert(0) += 1;
    }
}

/// The `browser` skill: one Chromium, one tab per session.
pub struct BrowserSkill {
    policy: BrowserPolicy,
    rules: Arc<Rules>,
    chrome: tokio::sync::Mutex<Option<Running>>,
    budgets: Mutex<Budgets>,
}

impl BrowserSkill {
    /// A skill under `policy`. Chromium starts on the first call that needs it.
    pub fn new(policy: BrowserPolicy) -> Self {
        BrowserSkill {
            rules: Arc::new(Rules::new(&policy)),
            policy,
            chrome: tokio::sync::Mutex::new(None),
            budgets: Mutex::new(Budgets::default()),
        }
    }

    /// The process id of the running Chromium, if one runs (for supervision and tests).
    pub async fn browser_pid(&self) -> Option<u32> {
        self.chrome.lock().await.as_mut().and_then(|r| r.pid())
    }

    /// Count one page load of `turn`, refusing past the budget.
    fn take_page(&self, turn: uuid::Uuid) -> Result<(), BrowserError> {
        let max = self.policy.max_pages_per_turn;
        let mut b = self
            .budgets
            .lock()
            .map_err(|_| BrowserError::Failed("the page budget is unavailable".into()))?;
        if b.used(turn) >= max {
            return Err(BrowserError::Budget(max));
        }
        b.take(turn);
        Ok(())
    }

    /// Whether `turn` may still load a page.
    fn page_left(&self, turn: uuid::Uuid) -> Result<(), BrowserError> {
        let max = self.policy.max_pages_per_turn;
        let used = self
            .budgets
            .lock()
            .map(|b| b.used(turn))
            .unwrap_or(u32::MAX);
        if used >= max {
            return Err(BrowserError::Budget(max));
        }
        Ok(())
    }

    /// The tab of `session`, starting (or restarting) Chromium if needed; with a note
    /// when the browser had to be restarted.
    async fn tab(&self, session: &str) -> Result<(Arc<Tab>, Option<&'static str>), BrowserError> {
        let mut chrome = self.chrome.lock().await;
        let mut note = None;
        if let Some(running) = chrome.as_mut() {
            if !running.is_alive() {
                if let Some(dead) = chrome.take() {
                    dead.shutdown().await;
                }
                note = Some(
                    "(the browser had stopped and was started again; earlier pages are gone)\n",
                );
            }
        }
        let running = match chrome.as_mut() {
            Some(r) => r,
            None => chrome.insert(Running::launch(&self.policy).await?),
        };
        let tab = running.tab(session, &self.rules).await?;
        Ok((tab, note))
    }

    /// Close the tab of `session` (after a load that never finished).
    async fn reset_tab(&self, session: &str) {
        if let Some(running) = self.chrome.lock().await.as_mut() {
            running.close_tab(session).await;
        }
    }

    async fn run(
        &self,
        ctx: &SkillContext<'_>,
        args: &serde_json::Value,
    ) -> Result<SkillOutput, BrowserError> {
        let s = |k: &str| {
            args.get(k)
                .and_then(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let action = s("action").unwrap_or("");
        // Check the arguments and the policy before touching the browser.
        let url = match action {
            "open" | "download" => {
                let raw = s("url")
                    .ok_or_else(|| BrowserError::Refused(format!("`{action}` needs `url`")))?;
                Some(self.rules.navigation(raw).map_err(BrowserError::Refused)?)
            }
            "text" | "links" | "screenshot" => None,
            "click" => {
                if s("selector").is_none() && s("text").is_none() {
                    return Err(BrowserError::Refused(
                        "`click` needs `selector` or `text`".into(),
                    ));
                }
                None
            }
            "fill" | "type" => {
                if s("selector").is_none() {
                    return Err(BrowserError::Refused(format!(
                        "`{action}` needs `selector`"
                    )));
                }
                let text = args.get("text").and_then(|v| v.as_str()).unwrap_or("");
                if action == "type" && text.chars().count() > actions::MAX_TYPED {
                    return Err(BrowserError::Refused(format!(
                        "`type` sends at most {} characters; use `fill` for longer text",
                        actions::MAX_TYPED
                    )));
                }
                None
            }
            other => {
                return Err(BrowserError::Refused(format!(
                    "unknown action {other:?}; use open, text, links, click, fill, type, \
                     screenshot or download"
                )))
            }
        };
        if action == "download" {
            self.take_page(ctx.turn_id)?;
            let (Some(url), Some(path)) = (url.as_ref(), s("path")) else {
                return Err(BrowserError::Refused(
                    "`download` needs `url` and `path`".into(),
                ));
            };
            return download::download(&self.policy, &self.rules, url, path)
                .await
                .map(SkillOutput::ok);
        }
        if action == "open" {
            self.take_page(ctx.turn_id)?;
        }
        let submit = args
            .get("submit")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if action == "click" || (submit && matches!(action, "fill" | "type")) {
            // A click or a submit may load a page: it needs a page left in the budget.
            self.page_left(ctx.turn_id)?;
        }

        let (tab, note) = self.tab(ctx.session_id).await?;
        let busy = tab.busy.lock().await;
        let url = url.map(|u| u.to_string()).unwrap_or_default();
        let result = self.act_in_tab(ctx, &tab, action, &url, args).await;
        drop(busy);
        let navigating = action == "click" || submit;
        let mut out = match result {
            // A tab whose page or script hung is replaced; a load a click or submit
            // started was stopped already.
            Err(e @ BrowserError::Timeout { .. }) if !navigating => {
                self.reset_tab(ctx.session_id).await;
                return Err(BrowserError::Failed(format!(
                    "{e}; the tab was reset for the next call"
                )));
            }
            r => r?,
        };
        if let Some(note) = note {
            out.output.insert_str(0, note);
        }
        Ok(out)
    }

    /// Run `action` (already checked) in `tab`.
    async fn act_in_tab(
        &self,
        ctx: &SkillContext<'_>,
        tab: &Tab,
        action: &str,
        url: &str,
        args: &serde_json::Value,
    ) -> Result<SkillOutput, BrowserError> {
        let s = |k: &str| {
            args.get(k)
                .and_then(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let limit = self.policy.page_timeout;
        match action {
            "open" => actions::open(tab, url, limit, self.policy.max_text)
                .await
                .map(SkillOutput::ok),
            "text" | "links" | "screenshot" => {
                if !actions::has_page(tab, limit).await? {
                    return Err(BrowserError::Refused(
                        "no page is open in this conversation; use `open` first".into(),
                    ));
                }
                match action {
                    "text" => actions::read(tab, limit, self.policy.max_text)
                        .await
                        .map(SkillOutput::ok),
                    "links" => actions::links(tab, limit).await.map(SkillOutput::ok),
                    _ => self.screenshot(ctx, tab).await,
                }
            }
            "click" => {
                let watch = NavigationWatch::start(tab, limit).await?;
                tab.clear_blocked();
                let clicked = actions::click(tab, s("selector"), s("text"), limit).await?;
                self.settle(ctx, tab, watch, clicked).await
            }
            _ => {
                let selector = s("selector").unwrap_or_default();
                let text = args.get("text").and_then(|v| v.as_str()).unwrap_or("");
                let replace = action == "fill";
                let done = actions::fill(tab, selector, text, replace, limit).await?;
                if args
                    .get("submit")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false)
                {
                    let watch = NavigationWatch::start(tab, limit).await?;
                    tab.clear_blocked();
                    actions::submit(tab, selector, limit).await?;
                    self.settle(ctx, tab, watch, done).await
                } else {
                    Ok(SkillOutput::ok(done))
                }
            }
        }
    }

    /// After a click or submit: wait for the load it started (counted in the budget).
    async fn settle(
        &self,
        ctx: &SkillContext<'_>,
        tab: &Tab,
        watch: NavigationWatch,
        done: String,
    ) -> Result<SkillOutput, BrowserError> {
        let limit = self.policy.page_timeout;
        let navigated = match watch.wait(tab, limit).await {
            Err(e @ BrowserError::Timeout { .. }) => {
                return Err(BrowserError::Failed(format!(
                    "{done}{e}; its load was stopped and the tab stays usable"
                )))
            }
            r => r?,
        };
        if navigated {
            // Counted after the fact; `page_left` made sure there was room.
            if let Ok(mut b) = self.budgets.lock() {
                b.take(ctx.turn_id);
            }
        }
        match actions::after_action(tab, navigated, limit).await {
            Ok(after) => Ok(SkillOutput::ok(done + &after)),
            Err(BrowserError::Failed(e)) => Err(BrowserError::Failed(done + &e)),
            Err(e) => Err(e),
        }
    }

    async fn screenshot(
        &self,
        ctx: &SkillContext<'_>,
        tab: &Tab,
    ) -> Result<SkillOutput, BrowserError> {
        let png = actions::screenshot(tab, self.policy.page_timeout).await?;
        let size = png.len();
        match ctx
            .recorder
            .store_media("screenshot.png", "image/png", png)
            .await
        {
            Ok(att) => Ok(SkillOutput::ok(format!(
                "took a screenshot of the visible page ({size} bytes PNG); it is attached to \
                 your reply"
            ))
            .with_attachment(att)),
            Err(crate::AgentError::Unsupported(what)) => Err(BrowserError::Refused(format!(
                "screenshots need {what}, which this host does not offer"
            ))),
            Err(e) => Err(BrowserError::Failed(format!(
                "cannot keep the screenshot: {e}"
            ))),
        }
    }
}

#[async_trait]
impl Skill for BrowserSkill {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "browser".into(),
            description: "Web browser, one tab per chat: open a URL (gives its text), text, \
                          links, click, fill/type inputs, screenshot, download to workspace."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"enum": ["open", "text", "links", "click", "fill", "type",
                                        "screenshot", "download"]},
                    "url": {"type": "string"},
                    "selector": {"type": "string", "description": "CSS"},
                    "text": {"type": "string", "description": "click: visible text; fill/type: value"},
                    "submit": {"type": "boolean"},
                    "path": {"type": "string", "description": "download: workspace-relative"}
                },
                "required": ["action"]
            }),
        }
    }

    async fn call(&self, _args: &serde_json::Value) -> SkillOutput {
        SkillOutput::err("the browser belongs to a conversation: it works only in a turn")
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        match self.run(ctx, args).await {
            Ok(out) => out,
            Err(e) => SkillOutput::err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_short() {
        let spec = BrowserSkill::new(BrowserPolicy::default()).spec();
        let bytes = spec.description.len() + spec.parameters.to_string().len();
        assert!(bytes < 600, "description + schema are {bytes} bytes");
    }

    #[test]
    fn budget_counts_per_turn() {
        let skill = BrowserSkill::new(BrowserPolicy {
            max_pages_per_turn: 2,
            ..BrowserPolicy::default()
        });
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert!(skill.take_page(a).is_ok());
        assert!(skill.take_page(a).is_ok());
        let e = skill.take_page(a).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused: the page budget of 2 per turn spent"
        );
        assert!(skill.page_left(a).is_err());
        assert!(skill.take_page(b).is_ok());
    }

    #[tokio::test]
    async fn refusals_need_no_browser() {
        struct NoHost;
        #[async_trait]
        impl crate::TurnRecorder for NoHost {
            async fn record(
                &self,
                _p: clawos_events::EventPayload,
            ) -> Result<u64, crate::AgentError> {
                Ok(0)
            }
        }
        let ws = tempfile::tempdir().unwrap();
        let skill = BrowserSkill::new(BrowserPolicy {
            binary: Some("/nonexistent/chromium".into()),
            denied_domains: vec!["evil.example".into()],
            workspace: ws.path().to_path_buf(),
            ..BrowserPolicy::default()
        });
        let ctx = SkillContext {
            session_id: "s",
            turn_id: uuid::Uuid::new_v4(),
            recorder: &NoHost,
        };
        for (args, want) in [
            (
                json!({"action": "open", "url": "chrome://settings"}),
                "not allowed",
            ),
            (
                json!({"action": "open", "url": "file:///etc/passwd"}),
                "workspace",
            ),
            (
                json!({"action": "open", "url": "https://a.evil.example/"}),
                "denied",
            ),
            (json!({"action": "open"}), "needs `url`"),
            (json!({"action": "fly"}), "unknown action"),
            (json!({"action": "click"}), "needs `selector` or `text`"),
            (
                json!({"action": "download", "url": "http://127.0.0.1:9/x", "path": "../x"}),
                "`..`",
            ),
        ] {
            let out = skill.call_in(&ctx, &args).await;
            assert_eq!(out.exit_status, 1, "{args}: {out:?}");
            assert!(out.output.contains(want), "{args}: {}", out.output);
        }
        // A browser that cannot start is a clear error, not a panic or a hang.
        let out = skill
            .call_in(
                &ctx,
                &json!({"action": "open", "url": "http://127.0.0.1:9/"}),
            )
            .await;
        assert!(
            out.output.starts_with("cannot start the browser"),
            "{out:?}"
        );
        assert!(skill.call(&json!({"action": "text"})).await.exit_status != 0);
    }
}
