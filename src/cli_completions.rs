//! `clawos completions SHELL` and `clawos man`: shell completions and man pages, both
//! generated from the CLI definition itself, so they never drift from it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Print the completion script of `shell` for `cli` to `out`.
pub fn completions(cli: &mut clap::Command, shell: clap_complete::Shell, out: &mut dyn Write) {
    let name = cli.get_name().to_string();
    clap_complete::generate(shell, cli, name, out);
}

/// Print the man page of `cli` (the top-level page, listing every command) to `out`.
pub fn man_page(cli: &clap::Command, out: &mut dyn Write) -> Result<()> {
    clap_mangen::Man::new(cli.clone())
        .render(out)
        .context("cannot write the man page")
}

/// Write `clawos.1` and one page per visible command (`clawos-devices-pair.1`, ...) into
/// `dir`; returns how many pages it holds.
pub fn man_pages(cli: &clap::Command, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(cli.clone(), dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    let pages = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count();
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_bash_completion_loads_and_knows_the_commands() {
        let mut script = Vec::new();
        completions(
            &mut crate::Cli::command(),
            clap_complete::Shell::Bash,
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("devices") && script.contains("completions"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clawos.bash");
        std::fs::write(&file, &script).unwrap();
        // Bash itself loads it and registers the completion for `clawos`.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && complete -p clawos", file.display()))
            .output()
            .expect("bash");
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("clawos"));
    }

    #[test]
    fn every_shell_gets_a_script() {
        for shell in [
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut script = Vec::new();
            completions(&mut crate::Cli::command(), shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("devices"), "{shell}: {script}");
        }
    }

    #[test]
    fn man_pages_cover_every_visible_command_and_no_hidden_one() {
        let dir = tempfile::tempdir().unwrap();
        let written = man_pages(&crate::Cli::command(), dir.path()).unwrap();
        assert!(written > 40, "{written} pages");
        let top = std::fs::read_to_string(dir.path().join("clawos.1")).unwrap();
        assert!(
            top.starts_with(".ie") || top.contains(".TH clawos"),
            "{top}"
        );
        assert!(top.contains("devices"));
        let pair = std::fs::read_to_string(dir.path().join("clawos-devices-pair.1")).unwrap();
        assert!(pair.contains("\\-\\-ttl"), "{pair}");
        assert!(
            !dir.path().join("clawos-debug.1").exists(),
            "hidden commands stay hidden"
        );
    }
}
