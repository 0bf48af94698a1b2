//! `clawos secrets set|get|list|rm|rotate-key` and `clawos admin token`: the vault from the
//! command line. Values come from stdin or a hidden prompt, never from argv (argv is
//! visible to every user of the machine in `ps`).

use std::io::{IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use clawos_events::Durability;
use clawos_kernel::vault::Vault;
use clawos_replay::Home;
use zeroize::Zeroizing;

/// `clawos secrets ...`
#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value is read from stdin, or asked for without echo.
    Set {
        /// Secret name (A-Z a-z 0-9 . _ -), e.g. `openai`.
        name: String,
    },
    /// Print a secret's value.
    Get {
        /// Secret name.
        name: String,
    },
    /// Names and versions (never values).
    List,
    /// Delete a secret.
    Rm {
        /// Secret name.
        name: String,
    },
    /// Re-encrypt every secret under a new master key, atomically.
    RotateKey,
}

/// Open the state folder's vault (it reports where its key lives on stderr when that is
/// the key-file fallback).
pub async fn open_vault(home: &Home) -> Result<Vault> {
    let vault = Vault::open(home.dir()).await?;
    if let Some(why) = vault.fallback() {
        eprintln!(
            "note: {why}; the vault key is kept in {}",
            vault.key_source()
        );
    }
    Ok(vault)
}

/// The value to store: stdin when it is not a terminal (one trailing newline dropped),
/// else a hidden prompt.
fn read_value(name: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let mut value = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(format!("value for {name}: "))
                .context("cannot read the value")?,
        )
    } else {
        let mut s = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_to_string(&mut s)
            .context("cannot read the value from stdin")?;
        s
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        bail!("empty value: nothing stored");
    }
    Ok(value)
}

/// Run a `secrets` command.
pub async fn run(home: &Home, durability: Durability, cmd: SecretsCommand) -> Result<()> {
    let mut vault = open_vault(home).await?;
    match cmd {
        SecretsCommand::Set { name } => {
            clawos_kernel::vault::check_name(&name)?;
            let value = read_value(&name)?;
            let log = home.open_log(durability).await?;
            let version = vault.set_recorded(&log, &name, value.as_bytes()).await?;
            log.close().await;
            println!("stored {name} (version {version})");
        }
        SecretsCommand::Get { name } => match vault.get(&name).await? {
            Some(v) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&v)?;
                if out.is_terminal() {
                    out.write_all(b"\n")?;
                }
            }
            None => bail!("no secret named {name}"),
        },
        SecretsCommand::List => {
            let all = vault.list().await?;
            if all.is_empty() {
                println!("the vault is empty");
            }
            for s in all {
                println!("{}\tversion {}", s.name, s.version);
            }
        }
        SecretsCommand::Rm { name } => {
            let log = home.open_log(durability).await?;
            let removed = vault.remove_recorded(&log, &name).await?;
            log.close().await;
            if !removed {
                bail!("no secret named {name}");
            }
            println!("deleted {name}");
        }
        SecretsCommand::RotateKey => {
            let n = vault.rotate_key().await?;
            println!(
                "re-encrypted {n} secret(s) under a new key in {}",
                vault.key_source()
            );
        }
    }
    vault.close().await;
    Ok(())
}

/// The admin token (created in the vault at the first start of the Gateway, or here).
pub async fn admin_token(home: &Home, durability: Durability) -> Result<Zeroizing<String>> {
    let vault = open_vault(home).await?;
    let log = home.open_log(durability).await?;
    let token = vault.admin_token(&log).await?;
    log.close().await;
    vault.close().await;
    Ok(token)
}
