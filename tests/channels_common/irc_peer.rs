//! The IRC test network (InspIRCd + Anope from Debian, run by `tests/peers/irc/start.sh`)
//! and a person on it: a raw IRC client that joins, talks and listens.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// A running test network in its own folder.
pub struct IrcNetwork {
    pub dir: tempfile::TempDir,
    pub plain_port: u16,
    pub tls_port: u16,
    pub link_port: u16,
}

fn peers_dir() -> PathBuf {
    super::peers_dir("irc")
}

impl IrcNetwork {
    /// Start the network; panics naming what is missing when the servers are not
    /// installed (`bash tests/run.sh` installs them).
    pub fn start() -> Self {
        for bin in ["/usr/sbin/inspircd", "/usr/sbin/anope"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the IRC tests need the Debian packages inspircd and anope \
                 (`bash tests/run.sh` installs them)"
            );
        }
        let net = IrcNetwork {
            dir: tempfile::tempdir().expect("temp dir"),
            plain_port: free_port(),
            tls_port: free_port(),
            link_port: free_port(),
        };
        net.up();
        net
    }

    fn up(&self) {
        let out = Command::new("bash")
            .arg(peers_dir().join("start.sh"))
            .arg(self.dir.path())
            .arg(self.plain_port.to_string())
            .arg(self.tls_port.to_string())
            .arg(self.link_port.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run start.sh");
        assert!(
            out.status.success(),
            "the IRC test network did not start:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pids(&self) -> Vec<u32> {
        ["anope.pid", "inspircd.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// Stop both servers and wait until they are gone.
    pub fn down(&self) {
        for pid in self.pids() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .pids()
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
        {
            assert!(Instant::now() < deadline, "the IRC servers did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        for f in ["anope.pid", "inspircd.pid"] {
            let _ = std::fs::remove_file(self.dir.path().join(f));
        }
    }

    /// The TLS certificate clients trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    /// Register a NickServ account (nick = account) with this password.
    pub async fn register(&self, account: &str, password: &str) {
        let mut p = IrcPerson::connect(self.plain_port, account).await;
        p.send(&format!(
            "PRIVMSG NickServ :REGISTER {password} {account}@clawos.test"
        ))
        .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = p.line(deadline).await.expect("NickServ answers REGISTER");
            if line.contains("NOTICE") && line.to_lowercase().contains("registered") {
                break;
            }
        }
        p.send("QUIT :registered").await;
    }
}

impl Drop for IrcNetwork {
    fn drop(&mut self) {
        self.down();
    }
}

/// A person on the network: a raw IRC client.
pub struct IrcPerson {
    pub nick: String,
    /// Messages read while waiting for something else, for `hear` to find.
    said: std::collections::VecDeque<String>,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl IrcPerson {
    /// Connect and register as `nick` (waits for the welcome).
    pub async fn connect(port: u16, nick: &str) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to IRC");
        let (r, w) = tcp.into_split();
        let mut p = IrcPerson {
            nick: nick.to_string(),
            said: Default::default(),
            reader: BufReader::new(r),
            writer: w,
        };
        p.send(&format!("NICK {nick}")).await;
        p.send(&format!("USER {nick} 0 * :{nick}")).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let line = p.line(deadline).await.expect("IRC welcome");
            if line.split(' ').nth(1) == Some("001") {
                break;
            }
        }
        p
    }

    pub async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write to IRC");
    }

    /// The next line before `deadline` (PINGs answered on the way), `None` at the deadline.
    pub async fn line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut buf = String::new();
            match tokio::time::timeout(left, self.reader.read_line(&mut buf)).await {
                Ok(Ok(0)) => panic!("the IRC server closed the connection of {}", self.nick),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("reading IRC: {e}"),
                Err(_) => return None,
            }
            let line = buf.trim_end().to_string();
            if let Some(arg) = line.strip_prefix("PING ") {
                self.send(&format!("PONG {arg}")).await;
                continue;
            }
            if privmsg(&line).is_some() {
                self.said.push_back(line.clone());
            }
            return Some(line);
        }
    }

    /// Join a channel and wait until the server confirms.
    pub async fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}")).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = self.line(deadline).await.expect("JOIN confirmed");
            if line.contains(" 366 ") && line.contains(channel) {
                return;
            }
        }
    }

    /// Wait until `nick` is in `channel` (the bot after a restart), polling NAMES.
    pub async fn wait_for_member(&mut self, channel: &str, nick: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            self.send(&format!("NAMES {channel}")).await;
            let step = (Instant::now() + Duration::from_millis(500)).min(deadline);
            while let Some(line) = self.line(step).await {
                if line.contains(" 353 ")
                    && line
                        .rsplit(':')
                        .next()
                        .unwrap_or("")
                        .split(' ')
                        .any(|n| n.trim_start_matches(['@', '+', '%']) == nick)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{nick} did not come back to {channel} within {within:?}"
            );
        }
    }
}

/// `:nick!user@host PRIVMSG target :text` as (nick, target, text).
pub fn privmsg(line: &str) -> Option<(String, String, String)> {
    let rest = line.strip_prefix(':')?;
    let (prefix, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix("PRIVMSG ")?;
    let (target, text) = rest.split_once(" :")?;
    let nick = prefix.split('!').next()?.to_string();
    Some((nick, target.to_string(), text.to_string()))
}

/// The conformance suite's view of IRC.
pub struct IrcPeer {
    pub net: IrcNetwork,
    pub bot: String,
}

impl Peer for IrcPeer {
    type P = IrcPerson;

    fn kind(&self) -> &'static str {
        "irc"
    }

    fn channel_section(&self, name: &str, groups: &[&str]) -> String {
        let channels: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
        format!(
            "[channels.{name}]\nkind = \"irc\"\nserver = \"127.0.0.1:{}\"\ntls = true\n\
             tls_ca_file = \"{}\"\nnick = \"{}\"\nchannels = [{}]\nnetwork = \"clawostest\"\n\
             dm_policy = \"open\"\n\n",
            self.net.tls_port,
            self.net.ca_file().display(),
            self.bot,
            channels.join(", ")
        )
    }

    fn bot(&self) -> &str {
        &self.bot
    }

    fn max_len(&self) -> usize {
        clawos_channels::irc::MAX_TEXT_BYTES
    }

    async fn person(&self, name: &str) -> IrcPerson {
        IrcPerson::connect(self.net.plain_port, name).await
    }

    fn stop_server(&mut self) {
        self.net.down();
    }

    fn attachments(&self) -> bool {
        false
    }

    fn catches_up(&self) -> bool {
        false
    }

    fn groups(&self) -> bool {
        true
    }

    fn start_server(&mut self) {
        self.net.up();
    }
}

impl Person for IrcPerson {
    async fn send_file(&mut self, _bot: &str, _name: &str, _mime: &str, _bytes: &[u8]) {
        panic!("IRC carries no files (the peer says so)");
    }

    fn address(&self) -> String {
        format!("irc:{}@clawostest", self.nick)
    }

    async fn join(&mut self, group: &str, bot: &str) {
        IrcPerson::join(self, group).await;
        self.wait_for_member(group, bot, Duration::from_secs(30))
            .await;
    }

    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str) {
        let target = group.unwrap_or(bot).to_string();
        self.send(&format!("PRIVMSG {target} :{text}")).await;
    }

    async fn hear(&mut self, bot: &str, within: Duration) -> Option<Heard> {
        let deadline = Instant::now() + within;
        loop {
            if self.said.is_empty() {
                self.line(deadline).await?;
            }
            let Some(line) = self.said.pop_front() else {
                continue;
            };
            if let Some((nick, target, text)) = privmsg(&line) {
                if nick == bot {
                    let group = (target != self.nick).then_some(target);
                    return Some(Heard {
                        group,
                        text,
                        file: None,
                    });
                }
            }
        }
    }

    async fn wait_for_bot(&mut self, group: Option<&str>, bot: &str, within: Duration) {
        match group {
            Some(g) => self.wait_for_member(g, bot, within).await,
            None => {
                let deadline = Instant::now() + within;
                loop {
                    self.send(&format!("ISON {bot}")).await;
                    let step = (Instant::now() + Duration::from_millis(500)).min(deadline);
                    while let Some(line) = self.line(step).await {
                        if line.contains(" 303 ")
                            && line
                                .rsplit(':')
                                .next()
                                .unwrap_or("")
                                .split(' ')
                                .any(|n| n == bot)
                        {
                            return;
                        }
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{bot} did not come back within {within:?}"
                    );
                }
            }
        }
    }
}
