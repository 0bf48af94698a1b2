//! `clawos onboard`: set up Pi's model provider and a first channel, asking on the
//! terminal (or reading the answers from stdin). Every answer is checked before anything
//! is kept: a key is tried against the provider with a real request, and only a key that
//! works goes into the vault; the configuration is checked before it is written. It can be
//! run again: the current settings are the defaults.

use anyhow::{bail, Context, Result};
use clawos_agents::provider::{self, ChatMessage, ChatRequest, ProviderConfig, ProviderKind};
use clawos_events::Durability;
use clawos_kernel::config::{Config, DEFAULT_CONFIG};
use clawos_replay::Home;

use crate::cli_channels::Asker;

/// How many keys are tried before onboarding gives up.
const KEY_TRIES: usize = 3;

/// A provider onboarding knows, with its defaults.
struct Choice {
    name: &'static str,
    kind: Option<ProviderKind>,
    base_url: &'static str,
    model: &'static str,
    /// Vault secret name of its key; `None`: no key (a local server).
    secret: Option<&'static str>,
}

const CHOICES: &[Choice] = &[
    Choice {
        name: "local",
        kind: None,
        base_url: "",
        model: "",
        secret: None,
    },
    Choice {
        name: "openai",
        kind: Some(ProviderKind::OpenAi),
        base_url: "https://api.openai.com/v1",
        model: "gpt-4o-mini",
        secret: Some("openai"),
    },
    Choice {
        name: "anthropic",
        kind: Some(ProviderKind::Anthropic),
        base_url: "https://api.anthropic.com",
        model: "claude-haiku-4-5",
        secret: Some("anthropic"),
    },
    Choice {
        name: "ollama",
        kind: Some(ProviderKind::OpenAi),
        base_url: "http://127.0.0.1:11434/v1",
        model: "llama3.2",
        secret: None,
    },
];

/// `clawos onboard`.
pub async fn onboard(home: &Home, durability: Durability) -> Result<()> {
    let path = home.dir().join("clawos.toml");
    let current = if path.exists() {
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
    } else {
        DEFAULT_CONFIG.to_string()
    };
    let config = Config::parse(&current)?;
    let agent = config.gateway.default_agent.clone();
    let now = config.agents.get(&agent);
    let mut ask = Asker::stdin();
    let names: Vec<&str> = CHOICES.iter().map(|c| c.name).collect();
    let was = match now.and_then(|a| a.provider.as_deref()) {
        None | Some("local") => "local",
        Some("anthropic") => "anthropic",
        Some(_) => "openai",
    };
    let picked = ask.ask(
        &format!(
            "Pi's model provider: {} (local runs a small model on this machine)",
            names.join(", ")
        ),
        Some(was),
    )?;
    let Some(choice) = CHOICES.iter().find(|c| c.name == picked) else {
        bail!("`{picked}`: expected one of {}", names.join(", "));
    };
    let mut table = toml_edit::Table::new();
    table["kind"] = toml_edit::value("pi");
    let mut key_to_store = None;
    if let Some(kind) = choice.kind {
        let default_url = now
            .and_then(|a| a.base_url.clone())
            .filter(|_| was == choice.name)
            .unwrap_or_else(|| choice.base_url.to_string());
        let base_url = ask.ask("base URL", Some(&default_url))?;
        let default_model = now
            .and_then(|a| a.model.clone())
            .filter(|_| was == choice.name)
            .unwrap_or_else(|| choice.model.to_string());
        let model = ask.ask("model", Some(&default_model))?;
        let mut tries = 0;
        let key = loop {
            let key = match choice.secret {
                Some(_) => Some(ask.secret("API key (kept in the vault, never in clawos.toml)")?),
                None => None,
            };
            tries += 1;
            match try_provider(kind, &base_url, &model, key.clone()).await {
                Ok(reply) => {
                    println!("{} answered: {}", choice.name, reply.trim());
                    break key;
                }
                Err(e) if tries < KEY_TRIES && choice.secret.is_some() => {
                    eprintln!("that did not work: {e:#}; try again")
                }
                Err(e) => bail!(
                    "{} at {base_url} did not answer: {e:#}; nothing was changed",
                    choice.name
                ),
            }
        };
        table["provider"] = toml_edit::value(match kind {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
        });
        table["base_url"] = toml_edit::value(&base_url);
        table["model"] = toml_edit::value(&model);
        if let (Some(secret), Some(key)) = (choice.secret, key) {
            table["api_key_secret"] = toml_edit::value(secret);
            key_to_store = Some((secret, key));
        }
    }
    // Keep what was set besides the provider (shell policy, steps, skills...).
    let mut doc = toml_doc(&current)?;
    if let Some(old) = doc
        .get("agents")
        .and_then(|a| a.get(&agent))
        .and_then(|t| t.as_table())
    {
        for (k, v) in old.iter() {
            let provider_key = matches!(
                k,
                "kind" | "provider" | "base_url" | "model" | "api_key_secret" | "api_key_env"
            );
            if !provider_key {
                table[k] = v.clone();
            }
        }
    }
    if doc.get("agents").is_none() {
        doc["agents"] = toml_edit::Item::Table(toml_edit::Table::new());
    }
    doc["agents"][agent.as_str()] = toml_edit::Item::Table(table);
    let updated = doc.to_string();
    let written =
        Config::parse(&updated).context("the answers do not make a valid configuration")?;

    if let Some((name, key)) = key_to_store {
        let vault = crate::cli_secrets::open_vault(home).await?;
        let log = home.open_log(durability).await?;
        vault.set_recorded(&log, name, key.as_bytes()).await?;
        log.close().await;
        vault.close().await;
        println!("stored the key in the vault as `{name}`");
    }
    std::fs::create_dir_all(home.dir())?;
    std::fs::write(&path, &updated).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote [agents.{agent}] to {}", path.display());
    if choice.kind.is_none() {
        crate::first_run::run(home, &written, true).await?;
    }

    let channel = ask.ask(
        "add a first channel besides the terminal (irc, matrix, xmpp, email, telegram, discord, \
         slack, signal, whatsapp, whatsapp-web, imessage; empty: none)",
        Some(""),
    )?;
    drop(ask);
    if !channel.is_empty() {
        crate::cli_channels::add(home, durability, channel, None).await?;
    }
    println!("done: `clawos up` starts the Gateway; `clawos onboard` changes these answers");
    Ok(())
}

fn toml_doc(text: &str) -> Result<toml_edit::DocumentMut> {
    text.parse::<toml_edit::DocumentMut>()
        .context("clawos.toml is not valid TOML")
}

/// One short request to the provider: its answer, or why it failed (a refused key, a
/// wrong URL or model, no server).
async fn try_provider(
    kind: ProviderKind,
    base_url: &str,
    model: &str,
    api_key: Option<String>,
) -> Result<String> {
    let p = provider::build(&ProviderConfig {
        kind,
        base_url: base_url.to_string(),
        model: model.to_string(),
        api_key,
        timeout: std::time::Duration::from_secs(30),
        retries: 0,
        backoff: std::time::Duration::from_millis(250),
    });
    let request = ChatRequest {
        system: String::new(),
        messages: vec![ChatMessage::user("Say hello in five words or fewer.")],
        tools: Vec::new(),
        max_tokens: Some(16),
    };
    let answer = p.chat(&request, &|_: &str| {}).await?;
    Ok(answer.content)
}
