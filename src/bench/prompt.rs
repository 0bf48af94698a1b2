//! `clawos bench prompt`: the size of Pi's request for a one-word message.

use std::time::Duration;

use anyhow::Result;
use uuid::Uuid;

use super::common::tempfile_dir;

/// The bytes Pi sends for a one-word message in a fresh session with every skill, for both
/// provider dialects, beside the bare request (the message alone, no system prompt, no
/// tools).
pub(super) fn bench_prompt() -> Result<()> {
    use clawos_agents::pi::Pi;
    use clawos_agents::provider::{build, ChatMessage, ChatRequest, ProviderConfig, ProviderKind};
    use clawos_agents::skills::shell::ShellPolicy;
    use clawos_agents::TurnInput;
    let dir = tempfile_dir()?;
    println!("| request for the message \"hi\" | bytes | ~tokens (bytes/4) | ratio to bare |");
    println!("|---|---:|---:|---:|");
    // A calendar account, so that every skill is offered (none is reached).
    let every_skill = clawos_kernel::config::Config::parse(
        "[calendar.accounts.home]\nurl = \"http://127.0.0.1:9/dav/\"\n",
    )?;
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let config = ProviderConfig {
            kind,
            base_url: "http://127.0.0.1:9".into(),
            model: "model".into(),
            api_key: None,
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::from_millis(1),
        };
        let skills = clawos_kernel::assembly::pi_skills(
            "pi",
            &dir.join("ws"),
            ShellPolicy::Allowlist(vec!["ls".into()]),
            &clawos_kernel::assembly::SkillEnv {
                config: &every_skill,
                secrets: &Default::default(),
                mcp: &Default::default(),
            },
        )?;
        let count = skills.names().len();
        let pi = Pi::new("pi", build(&config), skills, dir.join("ws"), 8);
        let input = TurnInput {
            turn_id: Uuid::now_v7(),
            session_id: "s".into(),
            branch: "main".into(),
            trigger_seq: 1,
            message: "hi".into(),
            history: vec![],
            summary: None,
            attachments: vec![],
        };
        let full = pi.request_body(&pi.first_request(&input)).to_string().len();
        let bare = build(&config)
            .request_body(&ChatRequest {
                system: String::new(),
                messages: vec![ChatMessage::user("hi")],
                tools: vec![],
                max_tokens: None,
            })
            .to_string()
            .len();
        println!(
            "| {kind} bare (message only) | {bare} | {} | 1.00 |",
            bare / 4
        );
        println!(
            "| {kind} Pi: system prompt + {count} skill schemas | {full} | {} | {:.1} |",
            full / 4,
            full as f64 / bare as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
