//! `clawos usage [--since 30d] [--by agent|session|identity|model] [--json]`: tokens and
//! cost from the `usage` read model, priced with the configuration's price table.

use anyhow::{anyhow, Result};
use clawos_events::Durability;
use clawos_kernel::usage::{self, PriceTable};
use clawos_replay::{rebuild, Home};

/// `clawos usage`.
pub async fn usage(
    home: &Home,
    durability: Durability,
    since: Option<humantime::Duration>,
    by: &str,
    json: bool,
) -> Result<()> {
    let key = usage::usage_key(by).map_err(|e| anyhow!(e))?;
    let config = crate::cli_gateway::load_config(home)?;
    let now = clawos_kernel::clock::now_ms();
    let since_ms = match since {
        Some(d) => now - d.as_millis() as i64,
        None => usage::Period::Month.bounds(now).0,
    };
    let store = home.open_log(durability).await?;
    let pool = home.open_projections().await?;
    let result = async {
        rebuild::catch_up(&store, &pool).await?;
        let prices = PriceTable::new(&config.prices);
        let lines = usage::report(&pool, &prices, since_ms, key).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&lines)?);
            return Ok(());
        }
        let since_text = since
            .map(|d| format!("the last {d}"))
            .unwrap_or_else(|| "this month (UTC)".into());
        if lines.is_empty() {
            println!("no LLM calls in {since_text}");
            return Ok(());
        }
        println!("usage in {since_text}, by {by}:");
        println!(
            "{:<40} {:>6} {:>6} {:>12} {:>12} {:>10}",
            by, "turns", "calls", "prompt", "completion", "cost"
        );
        let mut total = 0.0;
        for l in &lines {
            total += l.cost_usd;
            let unpriced = if l.unpriced_tokens > 0 {
                format!("  (+{} tokens without a price)", l.unpriced_tokens)
            } else {
                String::new()
            };
            println!(
                "{:<40} {:>6} {:>6} {:>12} {:>12} {:>10}{unpriced}",
                l.key,
                l.turns,
                l.calls,
                l.prompt_tokens,
                l.completion_tokens,
                format!("${:.4}", l.cost_usd)
            );
        }
        println!("total ${total:.4}");
        Ok(())
    }
    .await;
    store.close().await;
    result
}
