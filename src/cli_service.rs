//! `clawos service install|uninstall|status`: run the Gateway as a user service that
//! starts at login and restarts on failure: a systemd user unit on Linux (its output goes
//! to the journal: `journalctl --user -u clawos`), a launchd agent on macOS.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use clawos_replay::Home;

/// The systemd unit's name.
pub const UNIT: &str = "clawos.service";
/// The launchd agent's label.
pub const LAUNCHD_LABEL: &str = "dev.clawos.gateway";

/// `clawos service ...`
#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Install the Gateway as a user service for this state folder, enable and start it.
    Install {
        /// Only write the unit (or agent) file; do not enable or start it.
        #[arg(long)]
        no_start: bool,
        /// Print the unit (or agent) file and change nothing.
        #[arg(long)]
        print: bool,
    },
    /// Stop and disable the service and remove its file (the state folder stays).
    Uninstall,
    /// Whether the service is installed and running.
    Status,
}

/// `clawos service ...`
pub fn service(home: &Home, cmd: ServiceCommand) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the clawos binary")?;
    let home_dir = std::path::absolute(home.dir()).context("cannot resolve the state folder")?;
    let manager = Manager::here()?;
    match cmd {
        ServiceCommand::Install { print: true, .. } => {
            print!("{}", manager.file_text(&exe, &home_dir));
            Ok(())
        }
        ServiceCommand::Install { no_start, .. } => install(&manager, &exe, &home_dir, no_start),
        ServiceCommand::Uninstall => uninstall(&manager),
        ServiceCommand::Status => status(&manager),
    }
}

/// The service manager of this system.
enum Manager {
    /// systemd, user instance; the unit goes to `$XDG_CONFIG_HOME/systemd/user/`.
    Systemd { unit_dir: PathBuf },
    /// launchd; the agent goes to `~/Library/LaunchAgents/`.
    Launchd { agent_dir: PathBuf },
}

impl Manager {
    fn here() -> Result<Manager> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if cfg!(target_os = "macos") {
            let home = home.ok_or_else(|| anyhow!("HOME is not set"))?;
            return Ok(Manager::Launchd {
                agent_dir: home.join("Library/LaunchAgents"),
            });
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".config")))
            .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
        Ok(Manager::Systemd {
            unit_dir: config.join("systemd/user"),
        })
    }

    fn file(&self) -> PathBuf {
        match self {
            Manager::Systemd { unit_dir } => unit_dir.join(UNIT),
            Manager::Launchd { agent_dir } => agent_dir.join(format!("{LAUNCHD_LABEL}.plist")),
        }
    }

    fn file_text(&self, exe: &Path, home: &Path) -> String {
        match self {
            Manager::Systemd { .. } => systemd_unit(exe, home),
            Manager::Launchd { .. } => launchd_agent(exe, home),
        }
    }
}

/// The systemd user unit that runs `clawos --home HOME gateway`.
pub fn systemd_unit(exe: &Path, home: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=clawos Gateway (state in {home})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={exe} --home {home_arg} gateway\n\
         Environment=CLAWOS_LOG=info\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         # The Gateway stops its channel processes and records their exits on SIGTERM.\n\
         KillMode=mixed\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        home = systemd_escape_text(&home.display().to_string()),
        exe = systemd_quote(&exe.display().to_string()),
        home_arg = systemd_quote(&home.display().to_string()),
    )
}

/// One command-line word for `ExecStart=`: double-quoted, with `\`, `"` and `%` escaped.
fn systemd_quote(word: &str) -> String {
    format!(
        "\"{}\"",
        word.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('%', "%%")
    )
}

/// Free text in a unit (a description): only `%` is special.
fn systemd_escape_text(text: &str) -> String {
    text.replace('%', "%%")
}

/// The launchd agent that runs `clawos --home HOME gateway`, kept alive on failure.
pub fn launchd_agent(exe: &Path, home: &Path) -> String {
    let xml = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let logs = home.join("gateway.log");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
    <string>{exe}</string><string>--home</string><string>{home}</string><string>gateway</string>
  </array>
  <key>EnvironmentVariables</key><dict><key>CLAWOS_LOG</key><string>info</string></dict>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>StandardErrorPath</key><string>{logs}</string>
</dict>
</plist>
"#,
        exe = xml(&exe.display().to_string()),
        home = xml(&home.display().to_string()),
        logs = xml(&logs.display().to_string()),
    )
}

fn install(manager: &Manager, exe: &Path, home: &Path, no_start: bool) -> Result<()> {
    let file = manager.file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&file, manager.file_text(exe, home))
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("wrote {}", file.display());
    if no_start {
        return Ok(());
    }
    let steps: Vec<Vec<String>> = match manager {
        Manager::Systemd { .. } => vec![
            words(&["systemctl", "--user", "daemon-reload"]),
            words(&["systemctl", "--user", "enable", "--now", UNIT]),
        ],
        Manager::Launchd { .. } => vec![vec![
            "launchctl".into(),
            "bootstrap".into(),
            format!("gui/{}", current_uid()),
            file.display().to_string(),
        ]],
    };
    for step in &steps {
        if let Err(e) = run(step) {
            return Err(anyhow!(
                "{e}\nthe service file is written; start it from your login session with: {}",
                steps
                    .iter()
                    .map(|s| s.join(" "))
                    .collect::<Vec<_>>()
                    .join(" && ")
            ));
        }
    }
    match manager {
        Manager::Systemd { .. } => println!(
            "the Gateway runs as the user service {UNIT}: logs with `journalctl --user -u \
             clawos`; to keep it running while you are logged out: `loginctl enable-linger`"
        ),
        Manager::Launchd { .. } => {
            println!("the Gateway runs as the launchd agent {LAUNCHD_LABEL}")
        }
    }
    Ok(())
}

fn uninstall(manager: &Manager) -> Result<()> {
    let file = manager.file();
    let stop = match manager {
        Manager::Systemd { .. } => words(&["systemctl", "--user", "disable", "--now", UNIT]),
        Manager::Launchd { .. } => vec![
            "launchctl".into(),
            "bootout".into(),
            format!("gui/{}/{LAUNCHD_LABEL}", current_uid()),
        ],
    };
    if let Err(e) = run(&stop) {
        eprintln!("note: {e}");
    }
    match std::fs::remove_file(&file) {
        Ok(()) => println!("removed {}", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("not installed ({} does not exist)", file.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
    }
    if matches!(manager, Manager::Systemd { .. }) {
        let _ = run(&words(&["systemctl", "--user", "daemon-reload"]));
    }
    Ok(())
}

fn status(manager: &Manager) -> Result<()> {
    let file = manager.file();
    if !file.exists() {
        println!(
            "not installed (no {}); `clawos service install`",
            file.display()
        );
        return Ok(());
    }
    println!("installed: {}", file.display());
    let query = match manager {
        Manager::Systemd { .. } => words(&["systemctl", "--user", "is-active", UNIT]),
        Manager::Launchd { .. } => vec![
            "launchctl".into(),
            "print".into(),
            format!("gui/{}/{LAUNCHD_LABEL}", current_uid()),
        ],
    };
    match Command::new(&query[0]).args(&query[1..]).output() {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stdout);
            println!("state: {}", said.lines().next().unwrap_or("unknown").trim());
        }
        Err(e) => println!("state: unknown ({} cannot run: {e})", query[0]),
    }
    Ok(())
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

fn run(step: &[String]) -> Result<()> {
    let out = Command::new(&step[0])
        .args(&step[1..])
        .output()
        .with_context(|| format!("cannot run {}", step[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(anyhow!(
            "`{}` failed: {}",
            step.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// This user's id (for launchd's `gui/UID` domain).
fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `systemd-analyze verify --user` on `text` written as the unit in `dir`.
    fn verify(dir: &Path, text: &str) -> std::process::Output {
        let unit = dir.join(UNIT);
        std::fs::write(&unit, text).unwrap();
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(&unit)
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .expect("systemd-analyze (Debian package `systemd`, installed by tests/run.sh)")
    }

    #[test]
    fn the_systemd_unit_passes_systemd_analyze_verify() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let home = dir.path().join("state with space % and \"quote\"");
        let out = verify(dir.path(), &systemd_unit(&exe, &home));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(
            !said.contains(UNIT),
            "systemd has something to say about the unit: {said}"
        );
        // The quoted arguments come back as the words they were.
        let text = systemd_unit(&exe, &home);
        assert!(text.contains("%%"), "a % in a path is escaped");
        assert!(text.contains(r#"\"quote\""#));
    }

    #[test]
    fn a_broken_unit_is_caught_by_the_same_check() {
        let dir = tempfile::tempdir().unwrap();
        let text = systemd_unit(Path::new("/nonexistent/clawos"), Path::new("/tmp"));
        let out = verify(dir.path(), &text);
        assert!(!out.status.success(), "a missing binary is an error");
    }

    #[test]
    fn the_launchd_agent_escapes_paths_and_restarts_on_failure() {
        let text = launchd_agent(Path::new("/opt/claw&os/clawos"), Path::new("/Users/a<b>"));
        assert!(text.contains("/opt/claw&amp;os/clawos"));
        assert!(text.contains("/Users/a&lt;b&gt;"));
        assert!(text.contains("<key>SuccessfulExit</key><false/>"));
        assert!(!text.contains("a<b>"));
    }
}
