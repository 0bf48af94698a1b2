//! Connecting the MCP servers (`[mcp_servers.NAME]`) the agents of a process use: the
//! Gateway connects those of its in-process agents, `clawos agent NAME` those of its
//! agent.

use crate::assembly::ConfigSecrets;
use crate::config::Config;
use crate::skill_config::McpServers;

/// Start or reach every MCP server one of `agents` lists, all at once. A server that fails is
/// logged and left out (its agents go on without its tools): a broken tool server must not
/// keep the Gateway from serving.
pub async fn connect_mcp_servers(
    config: &Config,
    home: &std::path::Path,
    secrets: &ConfigSecrets,
    agents: &[String],
) -> McpServers {
    use clawos_agents::skills::mcp::McpServer;
    let used: std::collections::BTreeSet<&String> = config
        .agents
        .iter()
        .filter(|(name, _)| agents.contains(name))
        .flat_map(|(_, a)| &a.mcp_servers)
        .collect();
    let starts = config
        .mcp_servers
        .iter()
        .filter(|(name, _)| used.contains(name))
        .map(|(name, s)| {
            let spec = s.spec(name, home, |n| secrets.get(n).map(|v| v.to_string()));
            async move { (spec.name.clone(), McpServer::connect(spec).await) }
        });
    let mut out = McpServers::new();
    for (name, result) in futures::future::join_all(starts).await {
        match result {
            Ok(server) => {
                let missing = server.missing_tools();
                if !missing.is_empty() {
                    tracing::warn!(server = %name, ?missing, "the MCP server lacks allowed tools");
                }
                tracing::info!(server = %name, tools = ?server.tool_names(), "MCP server ready");
                out.insert(name, server);
            }
            Err(e) => tracing::error!(server = %name, error = %e, "MCP server left out"),
        }
    }
    out
}
