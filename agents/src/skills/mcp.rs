//! MCP servers as skills: each tool a Model Context Protocol server offers (over stdio or
//! streamable HTTP, through the official SDK `rmcp`) becomes a skill named
//! `SERVER__TOOL` for the agents that list the server. Which tools are offered is the
//! configuration's choice (an allowlist per server), never the server's or the prompt's.
//!
//! Calls and results go through Pi's loop like any skill, so each is a `ToolCalled` and a
//! `ToolReturned` in the log. Images a tool returns are kept in the media store and carried
//! by the reply. A server process that died is started again on the next call.
//!
//! To keep every request small, a tool's description is cut to its first sentence; the
//! whole description comes back with any failed call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents, Tool};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::sync::Mutex;

use super::{cap, Skill, SkillContext, SkillOutput};
use crate::provider::ToolSpec;

/// Separator between a server's name and its tool's in a skill name.
pub const SEPARATOR: &str = "__";
/// Longest description offered in every request.
pub const MAX_DESCRIPTION: usize = 160;
/// Largest text of a tool result given back to the model.
pub const MAX_OUTPUT: usize = 16 * 1024;

/// How the Gateway reaches a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking JSON-RPC on its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Environment variables set for it (on top of the Gateway's).
        env: BTreeMap<String, String>,
        /// Its working folder.
        cwd: Option<PathBuf>,
    },
    /// A streamable HTTP endpoint (`http://host:port/mcp`).
    Http {
        /// The endpoint.
        url: String,
        /// A bearer token sent as `Authorization`.
        bearer: Option<String>,
    },
}

/// One `[mcp_servers.NAME]` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerSpec {
    /// The server's name (the prefix of its skills).
    pub name: String,
    /// How to reach it.
    pub transport: McpTransport,
    /// The tools offered; `None` offers every tool the server lists.
    pub tools: Option<Vec<String>>,
    /// Longest wait for the connection and for one call.
    pub timeout: Duration,
}

/// Why a server cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The process did not start or the endpoint is unreachable.
    #[error("MCP server `{server}` cannot be started or reached: {reason}")]
    Connect {
        /// The server.
        server: String,
        /// What failed.
        reason: String,
    },
    /// It did not answer in time.
    #[error("MCP server `{server}` did not answer within {secs} s")]
    Timeout {
        /// The server.
        server: String,
        /// The limit.
        secs: u64,
    },
    /// It answered with an error.
    #[error("MCP server `{server}`: {reason}")]
    Protocol {
        /// The server.
        server: String,
        /// Its error.
        reason: String,
    },
}

type Client = RunningService<RoleClient, ()>;

/// A connected server and the tools it offers.
pub struct McpServer {
    spec: McpServerSpec,
    client: Mutex<Option<Client>>,
    tools: Vec<Tool>,
}

impl McpServer {
    /// Start (or reach) the server, list its tools and keep the offered ones.
    pub async fn connect(spec: McpServerSpec) -> Result<Arc<McpServer>, McpError> {
        let client = open(&spec).await?;
        let listed = within(&spec, client.list_all_tools()).await?;
        let tools = listed
            .into_iter()
            .filter(|t| match &spec.tools {
                Some(allowed) => allowed.iter().any(|a| a == t.name.as_ref()),
                None => true,
            })
            .collect();
        Ok(Arc::new(McpServer {
            spec,
            client: Mutex::new(Some(client)),
            tools,
        }))
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Names of the offered tools, as the server calls them.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name.to_string()).collect()
    }

    /// Allowed tools the server does not have (a typo in the allowlist, or a server
    /// version that dropped them).
    pub fn missing_tools(&self) -> Vec<String> {
        let have = self.tool_names();
        self.spec
            .tools
            .iter()
            .flatten()
            .filter(|t| !have.contains(t))
            .cloned()
            .collect()
    }

    /// One skill per offered tool.
    pub fn skills(self: &Arc<Self>) -> Vec<Arc<dyn Skill>> {
        self.tools
            .iter()
            .map(|tool| {
                Arc::new(McpToolSkill {
                    server: self.clone(),
                    tool: tool.name.to_string(),
                    full_description: tool.description.clone().unwrap_or_default().to_string(),
                    spec: ToolSpec {
                        name: skill_name(&self.spec.name, &tool.name),
                        description: first_sentence(tool.description.as_deref().unwrap_or("")),
                        parameters: serde_json::Value::Object((*tool.input_schema).clone()),
                    },
                }) as Arc<dyn Skill>
            })
            .collect()
    }

    /// Call `tool`; a server that went away is reached again once.
    async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<CallToolResult, McpError> {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let mut client = self.client.lock().await;
        if let Some(c) = client.as_ref().filter(|c| !c.is_transport_closed()) {
            match within(&self.spec, c.call_tool(params.clone())).await {
                Err(McpError::Protocol { reason, .. }) if !c.is_transport_closed() => {
                    return Err(McpError::Protocol {
                        server: self.spec.name.clone(),
                        reason,
                    })
                }
                Err(McpError::Timeout { server, secs }) => {
                    return Err(McpError::Timeout { server, secs })
                }
                Ok(result) => return Ok(result),
                Err(_) => {}
            }
        }
        tracing::warn!(server = %self.spec.name, "the MCP server went away; starting it again");
        *client = None;
        let fresh = open(&self.spec).await?;
        let result = within(&self.spec, fresh.call_tool(params)).await;
        *client = Some(fresh);
        result
    }
}

/// The skill name of `tool` of `server`.
pub fn skill_name(server: &str, tool: &str) -> String {
    format!("{server}{SEPARATOR}{tool}")
}

async fn open(spec: &McpServerSpec) -> Result<Client, McpError> {
    let failed = |reason: String| McpError::Connect {
        server: spec.name.clone(),
        reason,
    };
    let connecting = async {
        match &spec.transport {
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).envs(env).kill_on_drop(true);
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                let (process, _) = TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| failed(format!("`{command}`: {e}")))?;
                ().serve(process).await.map_err(|e| failed(e.to_string()))
            }
            McpTransport::Http { url, bearer } => {
                // The SDK's HTTP client takes rustls' process-wide crypto provider.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut config =
                    rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                        url.as_str(),
                    );
                config.auth_header = bearer.clone();
                let transport = StreamableHttpClientTransport::from_config(config);
                ().serve(transport).await.map_err(|e| failed(e.to_string()))
            }
        }
    };
    match tokio::time::timeout(spec.timeout, connecting).await {
        Ok(r) => r,
        Err(_) => Err(McpError::Timeout {
            server: spec.name.clone(),
            secs: spec.timeout.as_secs(),
        }),
    }
}

async fn within<T>(
    spec: &McpServerSpec,
    call: impl std::future::Future<Output = Result<T, rmcp::ServiceError>>,
) -> Result<T, McpError> {
    match tokio::time::timeout(spec.timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(McpError::Protocol {
            server: spec.name.clone(),
            reason: e.to_string(),
        }),
        Err(_) => Err(McpError::Timeout {
            server: spec.name.clone(),
            secs: spec.timeout.as_secs(),
        }),
    }
}

/// The first sentence of `text`, at most [`MAX_DESCRIPTION`] bytes.
pub fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let end = text
        .find(". ")
        .map(|i| i + 1)
        .or_else(|| text.find('\n'))
        .unwrap_or(text.len());
    let mut s = text[..end].trim().to_string();
    if s.len() > MAX_DESCRIPTION {
        let mut cut = MAX_DESCRIPTION - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// One tool of one server.
pub struct McpToolSkill {
    server: Arc<McpServer>,
    tool: String,
    full_description: String,
    spec: ToolSpec,
}

impl McpToolSkill {
    /// What a failed call tells the model, with the tool's whole description.
    fn failed(&self, reason: String) -> SkillOutput {
        let mut text = reason;
        if self.full_description.len() > self.spec.description.len() {
            text.push_str(&format!(
                "\n\nAbout `{}`: {}",
                self.spec.name, self.full_description
            ));
        }
        SkillOutput::err(cap(text, MAX_OUTPUT))
    }

    async fn run(&self, ctx: Option<&SkillContext<'_>>, args: &serde_json::Value) -> SkillOutput {
        let arguments = match args {
            serde_json::Value::Object(map) => map.clone(),
            serde_json::Value::Null => Default::default(),
            _ => return self.failed("the arguments are a JSON object".into()),
        };
        let result = match self.server.call(&self.tool, arguments).await {
            Ok(r) => r,
            Err(e) => return self.failed(e.to_string()),
        };
        let mut text = Vec::new();
        let mut images = Vec::new();
        for block in &result.content {
            match block {
                ContentBlock::Text(t) => text.push(t.text.clone()),
                ContentBlock::Image(i) => images.push((i.mime_type.clone(), i.data.clone())),
                ContentBlock::Audio(a) => text.push(format!("[audio: {}]", a.mime_type)),
                ContentBlock::Resource(r) => match &r.resource {
                    ResourceContents::TextResourceContents { uri, text: t, .. } => {
                        text.push(format!("[{uri}]\n{t}"))
                    }
                    ResourceContents::BlobResourceContents { uri, mime_type, .. } => {
                        text.push(format!(
                            "[resource {uri}: {}]",
                            mime_type.as_deref().unwrap_or("binary")
                        ))
                    }
                    _ => text.push("[a resource of a kind this Gateway does not know]".into()),
                },
                ContentBlock::ResourceLink(l) => text.push(format!("[link: {}]", l.uri)),
                _ => text.push("[content of a kind this Gateway does not know]".into()),
            }
        }
        if text.is_empty() {
            if let Some(structured) = &result.structured_content {
                text.push(structured.to_string());
            }
        }
        let mut out = if result.is_error == Some(true) {
            self.failed(text.join("\n"))
        } else {
            SkillOutput::ok(cap(text.join("\n"), MAX_OUTPUT))
        };
        for (n, (mime, data)) in images.into_iter().enumerate() {
            let Some(ctx) = ctx else { break };
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.as_bytes())
            else {
                out.output
                    .push_str("\n[an image came back that is not valid base64]");
                continue;
            };
            let ext = mime.rsplit('/').next().unwrap_or("bin");
            let name = format!("{}-{}.{ext}", self.tool, n + 1);
            match ctx.recorder.store_media(&name, &mime, bytes).await {
                Ok(att) => {
                    out.output
                        .push_str(&format!("\n[image {name} is sent with the reply]"));
                    out = out.with_attachment(att);
                }
                Err(e) => out
                    .output
                    .push_str(&format!("\n[image {name} not kept: {e}]")),
            }
        }
        out
    }
}

#[async_trait]
impl Skill for McpToolSkill {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    async fn call(&self, args: &serde_json::Value) -> SkillOutput {
        self.run(None, args).await
    }

    async fn call_in(&self, ctx: &SkillContext<'_>, args: &serde_json::Value) -> SkillOutput {
        self.run(Some(ctx), args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cut_to_their_first_sentence() {
        assert_eq!(
            first_sentence("Echoes back. Longer text here."),
            "Echoes back."
        );
        assert_eq!(first_sentence("One line\nsecond line"), "One line");
        let long = "x".repeat(500);
        let cut = first_sentence(&long);
        assert_eq!(cut.len(), MAX_DESCRIPTION);
        assert!(cut.ends_with("..."));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_connect_error_naming_the_server() {
        let spec = McpServerSpec {
            name: "ghost".into(),
            transport: McpTransport::Stdio {
                command: "/nonexistent/mcp-server".into(),
                args: vec![],
                env: BTreeMap::new(),
                cwd: None,
            },
            tools: None,
            timeout: Duration::from_secs(5),
        };
        let err = McpServer::connect(spec).await.err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("`ghost`") && err.contains("cannot be started"),
            "{err}"
        );
    }
}
