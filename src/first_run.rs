//! The first run of `clawos up`: when Pi has no language model (no provider configured and
//! no `.gguf` in `models/`), offer once to download the default local model, and the
//! memory embedder all-MiniLM-L6-v2 when the index would otherwise use the built-in one.
//! Nothing is downloaded without a yes (the answer at the prompt, or `--yes`); the question
//! is asked once per state folder (`first-run.asked`), never at a later start. Declined,
//! offline, or without a terminal to ask on: the Gateway starts as before (Pi explains how
//! to configure a model; memory uses the built-in embedder).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clawos_kernel::config::Config;
use clawos_replay::Home;

/// The model `clawos up` offers (a `clawos models pull` name): Qwen2.5-0.5B-Instruct, a
/// small model trained for tool calls (its chat template teaches `<tool_call>`).
pub const DEFAULT_MODEL: &str = "qwen";
/// Its name and size, for the question.
pub const DEFAULT_MODEL_TEXT: &str = "Qwen2.5-0.5B-Instruct, about 490 MB";
/// The memory embedder's size, for the question.
pub const EMBEDDER_MB: u32 = 91;
/// Written once the question was asked.
pub const ASKED_MARKER: &str = "first-run.asked";

/// What the first run would download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The default local model.
    pub model: bool,
    /// The memory embedder.
    pub embedder: bool,
}

/// What this state folder lacks: a model for Pi when its default agent is Pi without a
/// provider and `models/` has no `.gguf`; the embedder when memory would fall back to the
/// built-in one. `None` when Pi has a model.
pub fn offer_for(home: &Home, config: &Config) -> Option<Offer> {
    let models = home.dir().join("models");
    let default = config.agents.get(&config.gateway.default_agent);
    let pi_without_provider = match default {
        Some(a) => {
            a.kind == "pi"
                && (a.provider.is_none()
                    || a.provider.as_deref() == Some("local") && a.model.is_none())
        }
        None => config.agents.is_empty(),
    };
    let has_model = clawos_agents::provider::local::find_model(&models).is_some();
    if !pi_without_provider || has_model {
        return None;
    }
    let auto = config.memory.embedder.as_deref().unwrap_or("auto") == "auto";
    let embedder =
        auto && !clawos_agents::embed::minilm::installed(&models.join("all-MiniLM-L6-v2"));
    Some(Offer {
        model: true,
        embedder,
    })
}

/// Ask (or take `yes`), then download what the answer allows. Errors of the download are
/// reported and the Gateway starts anyway.
pub async fn run(home: &Home, config: &Config, yes: bool) -> Result<()> {
    let Some(offer) = offer_for(home, config) else {
        return Ok(());
    };
    let marker = home.dir().join(ASKED_MARKER);
    if marker.exists() && !yes {
        return Ok(());
    }
    let what = if offer.embedder {
        format!(
            "the default local model ({DEFAULT_MODEL_TEXT}) and the memory embedder \
             (all-MiniLM-L6-v2, about {EMBEDDER_MB} MB)"
        )
    } else {
        format!("the default local model ({DEFAULT_MODEL_TEXT})")
    };
    let answer = if yes {
        true
    } else if std::io::stdin().is_terminal() {
        eprint!(
            "Pi has no language model yet. Download {what} from Hugging Face into {} now? [Y/n] ",
            home.dir().join("models").display()
        );
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim().to_lowercase();
        line.is_empty() || line == "y" || line == "yes"
    } else {
        eprintln!(
            "Pi has no language model yet: `clawos up --yes` downloads {what}; or configure a \
             provider in clawos.toml (see the README)"
        );
        return Ok(());
    };
    std::fs::create_dir_all(home.dir())?;
    std::fs::write(&marker, if answer { "yes\n" } else { "no\n" })?;
    if !answer {
        eprintln!(
            "nothing downloaded; `clawos models pull {DEFAULT_MODEL}` (and `minilm`) does it later"
        );
        return Ok(());
    }
    let models = home.dir().join("models");
    let mut wanted = vec![DEFAULT_MODEL];
    if offer.embedder {
        wanted.push("minilm");
    }
    for name in wanted {
        if let Err(e) = crate::models_pull::fetch(&models, name).await {
            eprintln!(
                "could not download {name}: {e:#}\nstarting without it; `clawos models pull \
                 {name}` continues the download later"
            );
            break;
        }
    }
    Ok(())
}
