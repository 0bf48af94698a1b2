//! `clawos models add|list|pull`: local model files in the state folder.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use clawos_replay::Home;

/// `clawos models ...`
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Copy a GGUF model file into the state folder's models/ (Pi's embedded default), or
    /// an all-MiniLM-L6-v2 folder (model.safetensors, tokenizer.json, config.json) into
    /// models/all-MiniLM-L6-v2 (the memory embedder's default).
    Add {
        /// The .gguf file, or the sentence-transformer folder.
        path: std::path::PathBuf,
    },
    /// Models in the state folder.
    List,
    /// Download a model: `smollm2` (Pi's embedded default), `minilm` (the memory embedder),
    /// `OWNER/REPO/FILE` from Hugging Face, or an https:// URL. `HF_ENDPOINT` picks a mirror.
    Pull {
        /// What to download.
        what: String,
    },
}

/// `clawos models ...`
pub async fn models(home: &Home, cmd: ModelsCommand) -> Result<()> {
    let dir = home.dir().join("models");
    match cmd {
        ModelsCommand::Pull { what } => crate::models_pull::pull(&dir, &what).await?,
        ModelsCommand::Add { path } if path.is_dir() => {
            use clawos_agents::embed::minilm;
            if !minilm::installed(&path) {
                bail!(
                    "{} does not hold model.safetensors, tokenizer.json and config.json",
                    path.display()
                );
            }
            let target = dir.join(minilm::FOLDER);
            std::fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            for f in ["model.safetensors", "tokenizer.json", "config.json"] {
                std::fs::copy(path.join(f), target.join(f))
                    .with_context(|| format!("cannot copy {f} to {}", target.display()))?;
            }
            minilm::MiniLmEmbedder::load(&target)?;
            println!(
                "added {}; the memory index uses it (embedder \"auto\") from the next Gateway \
                 start, which re-embeds every memory",
                target.display()
            );
        }
        ModelsCommand::Add { path } => {
            if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
                bail!("{} is not a .gguf file", path.display());
            }
            let name = path.file_name().context("no file name")?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let target = dir.join(name);
            std::fs::copy(&path, &target).with_context(|| {
                format!("cannot copy {} to {}", path.display(), target.display())
            })?;
            println!(
                "added {}; Pi uses it when no provider is configured (restart the Gateway)",
                target.display()
            );
        }
        ModelsCommand::List => {
            let mut found = false;
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
                names.sort();
                for p in names
                    .iter()
                    .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("gguf"))
                {
                    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                    println!("{}  {:.1} MB", p.display(), size as f64 / 1e6);
                    found = true;
                }
            }
            if !found {
                println!(
                    "no models in {} (`clawos models add PATH.gguf`)",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}
