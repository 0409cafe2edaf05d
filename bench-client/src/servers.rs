//! The servers `compare` starts: one child process per act, and how to stop them cleanly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use joke_server::{StatsSummary, wire};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use acts::ActEntry;

/// How long a server may take from launch to `listening on`: indexing the jokes file is the
/// slow part, and it takes milliseconds.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server may take to exit after SIGTERM. Its own grace period for jokes in flight is
/// 10 s, and there are none in flight when we stop it.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How many of a server's last stderr lines we keep, to show when it fails.
const STDERR_TAIL: usize = 20;

/// A running act server.
#[derive(Debug)]
pub struct ServerProcess {
    pub act: &'static ActEntry,
    /// The address it logged as `listening on`.
    pub addr: SocketAddr,
    child: Child,
    /// Collects stdout to its end: the one JSON line of statistics printed at shutdown.
    stdout: JoinHandle<std::io::Result<String>>,
    /// The last lines of stderr. A task keeps reading stderr after start-up: if nobody did, the
    /// pipe would fill up once the server has logged 64 KiB and its next log line would block
    /// a worker thread of the very server we are measuring.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// How a server ended, and what it counted.
#[derive(Debug, Clone)]
pub struct ServerOutcome {
    /// The statistics it printed on stdout, when it printed them.
    pub stats: Option<StatsSummary>,
    /// Its exit code (`None` if it was killed by a signal).
    pub exit_code: Option<i32>,
    /// What went wrong, if anything: no clean exit, no statistics.
    pub problem: Option<String>,
}

impl ServerProcess {
    /// Starts `act` as `<this binary> serve ACT --addr 127.0.0.1:0 --jokes JOKES --io-delay D`
    /// and waits until it logs the address it listens on.
    pub async fn start(
        act: &'static ActEntry,
        jokes: &Path,
        io_delay: Duration,
    ) -> anyhow::Result<Self> {
        let me = std::env::current_exe().context("finding bench-client's own binary")?;
        let mut child = Command::new(me)
            .arg("serve")
            .arg(act.name)
            .args(["--addr", "127.0.0.1:0", "--jokes"])
            .arg(jokes)
            .arg("--io-delay")
            .arg(humantime::format_duration(io_delay).to_string())
            // We need the `listening on` line, which is logged at the info level, and we read it
            // without colours.
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Should bench-client fail or be interrupted, no server outlives it.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", act.name))?;

        let mut stdout = child.stdout.take().context("the child's stdout")?;
        let stdout = tokio::spawn(async move {
            let mut text = String::new();
            stdout.read_to_string(&mut text).await?;
            Ok(text)
        });
        let stderr = child.stderr.take().context("the child's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));

        let started = timeout(START_TIMEOUT, wait_for_address(&mut lines, &stderr_tail)).await;
        let addr = match started {
            Ok(Ok(addr)) => addr,
            Ok(Err(error)) => {
                let _ = child.kill().await;
                let status = child.wait().await.ok();
                let log = tail_text(&stderr_tail);
                bail!(
                    "{} did not start ({error}; exit status {status:?}); its log:\n{log}",
                    act.name
                );
            }
            Err(_) => {
                let _ = child.kill().await;
                let log = tail_text(&stderr_tail);
                bail!(
                    "{} did not log `listening on` within {}; its log:\n{log}",
                    act.name,
                    humantime::format_duration(START_TIMEOUT)
                );
            }
        };
        let tail = Arc::clone(&stderr_tail);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                remember(&tail, line);
            }
        });
        Ok(ServerProcess {
            act,
            addr,
            child,
            stdout,
            stderr_tail,
        })
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server the way an operator would (SIGTERM), waits for its clean exit, and
    /// reads the statistics it prints on the way out.
    pub async fn stop(mut self) -> ServerOutcome {
        let mut problems = Vec::new();
        if let Err(error) = send_sigterm(&self.child) {
            problems.push(format!("cannot send SIGTERM: {error}"));
        }
        let exit_code = match timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => {
                if !status.success() {
                    problems.push(format!("exited with {status}"));
                }
                status.code()
            }
            Ok(Err(error)) => {
                problems.push(format!("cannot wait for it: {error}"));
                None
            }
            Err(_) => {
                let _ = self.child.kill().await;
                problems.push(format!(
                    "still running {} after SIGTERM, killed",
                    humantime::format_duration(STOP_TIMEOUT)
                ));
                None
            }
        };
        let stdout = match (&mut self.stdout).await {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => {
                problems.push(format!("reading its stdout: {error}"));
                String::new()
            }
            Err(error) => {
                problems.push(format!("reading its stdout: {error}"));
                String::new()
            }
        };
        let stats = match wire::parse_stats_output(&stdout) {
            Ok(stats) => Some(stats),
            Err(error) => {
                problems.push(format!("{error:#}"));
                None
            }
        };
        let problem = (!problems.is_empty()).then(|| {
            format!(
                "{}: {}; its last log lines:\n{}",
                self.act.name,
                problems.join("; "),
                tail_text(&self.stderr_tail)
            )
        });
        ServerOutcome {
            stats,
            exit_code,
            problem,
        }
    }
}

/// Reads stderr lines until the one that says `listening on ADDR`, remembering the others.
async fn wait_for_address(
    lines: &mut Lines<BufReader<ChildStderr>>,
    tail: &Mutex<VecDeque<String>>,
) -> anyhow::Result<SocketAddr> {
    while let Some(line) = lines.next_line().await? {
        if let Some(addr) = wire::parse_ready_line(&line) {
            return Ok(addr);
        }
        remember(tail, line);
    }
    Err(anyhow!(
        "it closed its stderr before saying where it listens"
    ))
}

fn remember(tail: &Mutex<VecDeque<String>>, line: String) {
    let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if tail.len() == STDERR_TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tail.iter()
        .map(|line| format!("    {line}\n"))
        .collect::<String>()
}

/// Sends SIGTERM through rustix, which wraps kill(2) safely (the workspace forbids `unsafe`).
fn send_sigterm(child: &Child) -> std::io::Result<()> {
    let id = child
        .id()
        .ok_or_else(|| std::io::Error::other("it has already exited"))?;
    let pid = i32::try_from(id)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("{id} is not a process id")))?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
    Ok(())
}
