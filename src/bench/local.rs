//! `clawos bench local`: tokens per second of the local GGUF provider.

use std::path::Path;

use anyhow::Result;

/// Load `model`, generate `tokens` tokens, print the table row.
pub(super) async fn bench_local(model: &Path, tokens: usize) -> Result<()> {
    let t = clawos_agents::provider::local::bench(model, tokens).await?;
    println!(
        "| local model | load | tokens generated | tokens/s |\n|---|---:|---:|---:|\n| {} | {:.2} s | {} | {:.1} |",
        model.display(),
        t.load_secs,
        t.completion_tokens,
        t.tokens_per_second()
    );
    Ok(())
}
