//! Usage, cost and budgets.
//!
//! Tokens come from the `usage` read model (one row per LLM call, as the provider
//! reported them). Cost is computed when read, from a price table: built-in prices of
//! common models, overridden by `[prices."MODEL"]` in `clawos.toml`, so a price change
//! never rewrites history. A budget (`[[budgets]]`) caps what one agent, one identity or
//! both spend per UTC day or month, in dollars, tokens or both; a turn that would start
//! past it does not reach the model: the person is told, and `BudgetExceeded` is logged.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Utc};
use clawos_projections::views::{self, UsageKey, UsageRow};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::KernelError;

/// `[prices."MODEL"]`: US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt (input) tokens.
    pub input: f64,
    /// Per million completion (output) tokens.
    pub output: f64,
}

/// Built-in prices, USD per million tokens (input, output), as the providers published
/// them in 2025. `[prices]` overrides any of them; a model not here and not configured
/// has no known cost (its tokens still count).
pub const DEFAULT_PRICES: &[(&str, f64, f64)] = &[
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("o3", 2.0, 8.0),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4-5", 3.0, 15.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.80, 4.0),
];

/// Providers that run on this machine: their tokens cost nothing.
pub const LOCAL_PROVIDERS: &[&str] = &["local"];

/// The prices in force: the configured ones over the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    configured: BTreeMap<String, Price>,
}

impl PriceTable {
    /// The built-in table with `configured` over it.
    pub fn new(configured: &BTreeMap<String, Price>) -> PriceTable {
        PriceTable {
            configured: configured.clone(),
        }
    }

    /// The price of `model` from `provider`: a local provider is free; then the exact
    /// model id, configured before built-in; then the longest known id the model starts
    /// with (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`). `None`: unknown.
    pub fn price(&self, provider: &str, model: &str) -> Option<Price> {
        if LOCAL_PROVIDERS.contains(&provider) {
            return Some(Price {
                input: 0.0,
                output: 0.0,
            });
        }
        let model = model.rsplit('/').next().unwrap_or(model);
        if let Some(p) = self.configured.get(model) {
            return Some(*p);
        }
        // Built-in first, configured last: among names of the same length the last one
        // wins, so a configured price beats the built-in one for a dated id too.
        let built_in = DEFAULT_PRICES.iter().map(|(id, input, output)| {
            (
                *id,
                Price {
                    input: *input,
                    output: *output,
                },
            )
        });
        let configured = self.configured.iter().map(|(id, p)| (id.as_str(), *p));
        built_in
            .chain(configured)
            .filter(|(id, _)| {
                model
                    .strip_prefix(id)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
            })
            .max_by_key(|(id, _)| id.len())
            .map(|(_, p)| p)
    }

    /// What a row of usage cost, in US dollars, when its model's price is known.
    pub fn cost(&self, row: &UsageRow) -> Option<f64> {
        self.price(&row.provider, &row.model).map(|p| {
            (row.prompt_tokens as f64 * p.input + row.completion_tokens as f64 * p.output) / 1e6
        })
    }
}

/// Usage of one group (agent, session, identity or model) with its cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageLine {
    /// The group.
    pub key: String,
    /// LLM calls.
    pub calls: u64,
    /// Turns.
    pub turns: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Dollars, over the models with a known price.
    pub cost_usd: f64,
    /// Tokens of models without a known price (not in `cost_usd`).
    pub unpriced_tokens: u64,
}

/// Usage since `since_ms` grouped by `by`, each group with its cost, most expensive (then
/// most tokens) first.
pub async fn report(
    pool: &SqlitePool,
    prices: &PriceTable,
    since_ms: i64,
    by: UsageKey,
) -> Result<Vec<UsageLine>, KernelError> {
    let rows = views::usage(pool, since_ms, by, None, None).await?;
    let mut lines: BTreeMap<String, UsageLine> = BTreeMap::new();
    for r in rows {
        let line = lines.entry(r.key.clone()).or_insert_with(|| UsageLine {
            key: r.key.clone(),
            calls: 0,
            turns: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            unpriced_tokens: 0,
        });
        line.calls += r.calls;
        line.turns += r.turns;
        line.prompt_tokens += r.prompt_tokens;
        line.completion_tokens += r.completion_tokens;
        match prices.cost(&r) {
            Some(c) => line.cost_usd += c,
            None => line.unpriced_tokens += r.prompt_tokens + r.completion_tokens,
        }
    }
    let mut lines: Vec<UsageLine> = lines.into_values().collect();
    lines.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(
                (b.prompt_tokens + b.completion_tokens)
                    .cmp(&(a.prompt_tokens + a.completion_tokens)),
            )
            .then(a.key.cmp(&b.key))
    });
    Ok(lines)
}

/// `agent`, `session`, `identity` or `model` as a [`UsageKey`].
pub fn usage_key(by: &str) -> Result<UsageKey, String> {
    match by {
        "agent" => Ok(UsageKey::Agent),
        "session" => Ok(UsageKey::Session),
        "identity" => Ok(UsageKey::Identity),
        "model" => Ok(UsageKey::Model),
        other => Err(format!(
            "`{other}`: usage is grouped by agent, session, identity or model"
        )),
    }
}

/// How long a budget runs before it starts again (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// From 00:00 UTC.
    Day,
    /// From the first of the month, 00:00 UTC.
    Month,
}

impl Period {
    /// The start of the period that `now_ms` falls in, and of the next one (ms).
    pub fn bounds(self, now_ms: i64) -> (i64, i64) {
        let now = Utc
            .timestamp_millis_opt(now_ms)
            .single()
            .unwrap_or_else(Utc::now);
        let day = now.date_naive();
        let (start, next) = match self {
            Period::Day => (day, day.succ_opt().unwrap_or(day)),
            Period::Month => {
                let first = day.with_day(1).unwrap_or(day);
                let next = if first.month() == 12 {
                    first
                        .with_year(first.year() + 1)
                        .and_then(|d| d.with_month(1))
                } else {
                    first.with_month(first.month() + 1)
                };
                (first, next.unwrap_or(first))
            }
        };
        let ms = |d: chrono::NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap_or(now_ms)
        };
        (ms(start), ms(next))
    }

    /// `day` or `month`, as in `clawos.toml` and `BudgetExceeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
        }
    }
}

/// `[[budgets]]`: a cap on what an agent, an identity, or an identity with one agent spends
/// per period.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The agent it caps (every identity's turns with it).
    #[serde(default)]
    pub agent: Option<String>,
    /// The identity it caps (its turns with every agent).
    #[serde(default)]
    pub identity: Option<String>,
    /// `day` or `month` (UTC).
    pub per: Period,
    /// Dollars per period (models with a known price).
    #[serde(default)]
    pub usd: Option<f64>,
    /// Tokens per period (prompt and completion, every model).
    #[serde(default)]
    pub tokens: Option<u64>,
}

impl Budget {
    /// Who it caps, for people: `agent pi`, `alice`, `alice with agent pi`.
    pub fn subject(&self) -> String {
        match (&self.identity, &self.agent) {
            (Some(i), Some(a)) => format!("{i} with agent {a}"),
            (Some(i), None) => i.clone(),
            (None, Some(a)) => format!("agent {a}"),
            (None, None) => "everyone".into(),
        }
    }

    fn applies(&self, agent: &str, identity: &str) -> bool {
        self.agent.as_deref().is_none_or(|a| a == agent)
            && self.identity.as_deref().is_none_or(|i| i == identity)
    }
}

/// Check `[[budgets]]`: each names an agent or an identity that can exist, a limit, and
/// sane numbers.
pub fn validate(budgets: &[Budget], agents: &[&str]) -> Result<(), String> {
    for (i, b) in budgets.iter().enumerate() {
        let at = format!("budgets[{i}]");
        if b.agent.is_none() && b.identity.is_none() {
            return Err(format!("{at}: name an `agent`, an `identity`, or both"));
        }
        if let Some(a) = &b.agent {
            if !agents.is_empty() && !agents.contains(&a.as_str()) {
                return Err(format!("{at}: agent \"{a}\" is not defined under [agents]"));
            }
        }
        if b.usd.is_none() && b.tokens.is_none() {
            return Err(format!("{at}: give a limit: `usd`, `tokens`, or both"));
        }
        if b.usd.is_some_and(|u| !u.is_finite() || u < 0.0) {
            return Err(format!(
                "{at}: `usd` must be a number of dollars, 0 or more"
            ));
        }
    }
    Ok(())
}

/// A budget a turn ran into.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetHit {
    /// The budget.
    pub budget: Budget,
    /// Start of the period (ms).
    pub period_start_ms: i64,
    /// Start of the next period, when it opens again (ms).
    pub resets_at_ms: i64,
    /// Tokens spent in the period.
    pub spent_tokens: u64,
    /// Dollars spent in the period (priced models).
    pub spent_usd: f64,
}

impl BudgetHit {
    /// What the person is told instead of an answer.
    pub fn message(&self) -> String {
        let b = &self.budget;
        let limit = match (b.usd, b.tokens) {
            (Some(u), Some(t)) => format!("${u:.2} or {t} tokens"),
            (Some(u), None) => format!("${u:.2}"),
            (None, Some(t)) => format!("{t} tokens"),
            (None, None) => String::new(),
        };
        let resets = Utc
            .timestamp_millis_opt(self.resets_at_ms)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        format!(
            "The {} budget of {} for {} is used up (${:.2} and {} tokens spent this {}). \
             It starts again at {resets}; the owner can raise it under [[budgets]] in \
             clawos.toml.",
            b.per.word(),
            limit,
            b.subject(),
            self.spent_usd,
            self.spent_tokens,
            b.per.as_str()
        )
    }
}

/// The first budget that a turn of `agent` for `identity` would run past at `now_ms`.
pub async fn budget_hit(
    pool: &SqlitePool,
    budgets: &[Budget],
    prices: &PriceTable,
    agent: &str,
    identity: &str,
    now_ms: i64,
) -> Result<Option<BudgetHit>, KernelError> {
    for b in budgets.iter().filter(|b| b.applies(agent, identity)) {
        let (start, next) = b.per.bounds(now_ms);
        let rows = views::usage(
            pool,
            start,
            UsageKey::Model,
            b.agent.as_deref(),
            b.identity.as_deref(),
        )
        .await?;
        let spent_tokens: u64 = rows
            .iter()
            .map(|r| r.prompt_tokens + r.completion_tokens)
            .sum();
        let spent_usd: f64 = rows.iter().filter_map(|r| prices.cost(r)).sum();
        let over =
            b.tokens.is_some_and(|t| spent_tokens >= t) || b.usd.is_some_and(|u| spent_usd >= u);
        if over {
            return Ok(Some(BudgetHit {
                budget: b.clone(),
                period_start_ms: start,
                resets_at_ms: next,
                spent_tokens,
                spent_usd,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(provider: &str, model: &str, p: u64, c: u64) -> UsageRow {
        UsageRow {
            key: String::new(),
            provider: provider.into(),
            model: model.into(),
            calls: 1,
            turns: 1,
            prompt_tokens: p,
            completion_tokens: c,
        }
    }

    #[test]
    fn prices_match_dated_ids_the_longest_name_and_configured_first() {
        let table = PriceTable::new(&BTreeMap::new());
        let mini = table.price("openai", "gpt-4o-mini-2024-07-18").unwrap();
        assert_eq!(mini.input, 0.15, "gpt-4o-mini, not gpt-4o");
        assert!(table.price("openai", "gpt-4o").is_some());
        assert!(
            table.price("openai", "gpt-4ox").is_none(),
            "a prefix is a whole name"
        );
        assert!(table.price("openai", "llama3.2").is_none());
        assert_eq!(table.price("local", "SmolLM2").unwrap().output, 0.0);
        let cost = table
            .cost(&row("openai", "gpt-4o-mini", 1_000_000, 500_000))
            .unwrap();
        assert!((cost - 0.45).abs() < 1e-9, "{cost}");
        let mut own = BTreeMap::new();
        own.insert(
            "gpt-4o-mini".to_string(),
            Price {
                input: 1.0,
                output: 1.0,
            },
        );
        own.insert(
            "llama3.2".to_string(),
            Price {
                input: 0.0,
                output: 0.0,
            },
        );
        let table = PriceTable::new(&own);
        assert_eq!(table.price("openai", "gpt-4o-mini").unwrap().input, 1.0);
        assert_eq!(
            table
                .price("openai", "gpt-4o-mini-2024-07-18")
                .unwrap()
                .input,
            1.0,
            "a configured price beats the built-in one for a dated id too"
        );
        assert_eq!(table.price("ollama", "llama3.2:3b").map(|p| p.input), None);
        assert_eq!(table.price("openai", "llama3.2").unwrap().input, 0.0);
    }

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let at = |y, m, d, h| {
            Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        let now = at(2026, 12, 31, 15);
        assert_eq!(
            Period::Day.bounds(now),
            (at(2026, 12, 31, 0), at(2027, 1, 1, 0))
        );
        assert_eq!(
            Period::Month.bounds(now),
            (at(2026, 12, 1, 0), at(2027, 1, 1, 0))
        );
        assert_eq!(
            Period::Month.bounds(at(2027, 2, 10, 9)),
            (at(2027, 2, 1, 0), at(2027, 3, 1, 0))
        );
    }

    #[test]
    fn budgets_need_a_subject_and_a_limit() {
        let b = |agent: Option<&str>, usd: Option<f64>, tokens: Option<u64>| Budget {
            agent: agent.map(String::from),
            identity: None,
            per: Period::Day,
            usd,
            tokens,
        };
        assert!(validate(&[b(Some("pi"), Some(1.0), None)], &["pi"]).is_ok());
        assert!(validate(&[b(None, Some(1.0), None)], &["pi"]).is_err());
        assert!(validate(&[b(Some("pi"), None, None)], &["pi"]).is_err());
        assert!(validate(&[b(Some("nobody"), Some(1.0), None)], &["pi"]).is_err());
        assert!(validate(&[b(Some("pi"), Some(f64::NAN), None)], &["pi"]).is_err());
    }
}
