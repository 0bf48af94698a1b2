//! `clawos agent NAME`: the runtime process of an isolated agent. It says its hello on
//! stdout, takes the vault secrets its configuration names from the welcome, builds the
//! agent as the Gateway would in-process (provider, skills, MCP servers) and serves its
//! turns. It opens neither the log nor the vault.

use std::os::fd::{FromRawFd, OwnedFd};

use clawos_agents::remote::protocol::{Encoding, Hello, ENV_AGENT_TOKEN, PROTOCOL_VERSION};
use clawos_agents::remote::serve::handshake;
use clawos_replay::Home;
use tokio::net::unix::pipe;

use crate::assembly::{build_agent, ConfigSecrets, SkillEnv};
use crate::config::Config;
use crate::KernelError;

/// A duplicate of file descriptor `fd`.
fn duplicate(fd: i32, what: &str) -> Result<OwnedFd, KernelError> {
    // SAFETY: dup on one of this process's own descriptors; the new one is owned here.
    let new = unsafe { libc::dup(fd) };
    if new < 0 {
        return Err(KernelError::io(
            format!("cannot duplicate {what}"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The protocol's pipes: stdin, and stdout taken for the protocol alone; whatever else
/// writes to stdout afterwards (a library's print) lands on stderr instead.
fn protocol_pipes() -> Result<(pipe::Receiver, pipe::Sender), KernelError> {
    let not_a_pipe = |e| KernelError::io("`clawos agent` talks over pipes the Gateway gives it", e);
    let input = pipe::Receiver::from_owned_fd(duplicate(0, "stdin")?).map_err(not_a_pipe)?;
    let output = pipe::Sender::from_owned_fd(duplicate(1, "stdout")?).map_err(not_a_pipe)?;
    // SAFETY: makes descriptor 1 a copy of 2; both belong to this process.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(KernelError::io(
            "cannot point stdout at stderr",
            std::io::Error::last_os_error(),
        ));
    }
    Ok((input, output))
}

/// Serve the agent `name` of `config` on this process's stdin and stdout until the
/// Gateway says `shutdown` or goes away.
pub async fn run(home: &Home, config: &Config, name: &str) -> Result<(), KernelError> {
    let Some(agent_config) = config.agents.get(name) else {
        return Err(KernelError::Config(format!(
            "no agent `{name}` in the configuration"
        )));
    };
    let token = std::env::var(ENV_AGENT_TOKEN).map_err(|_| {
        KernelError::Config(format!(
            "`clawos agent {name}` is started by the Gateway for agents with \
             isolation = \"process\" ({ENV_AGENT_TOKEN} is not set)"
        ))
    })?;
    let (input, output) = protocol_pipes()?;
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        agent: name.to_string(),
        token,
        encoding: Encoding::Bincode,
    };
    let session = handshake(input, output, &hello).await?;
    let secrets: ConfigSecrets = session
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), zeroize::Zeroizing::new(v.clone())))
        .collect();
    let mcp =
        crate::mcp_connect::connect_mcp_servers(config, home.dir(), &secrets, &[name.to_string()])
            .await;
    let env = SkillEnv {
        config,
        secrets: &secrets,
        mcp: &mcp,
    };
    let agent = build_agent(home, name, agent_config, &env)?;
    session.serve(agent).await?;
    Ok(())
}
