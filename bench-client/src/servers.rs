//! The servers `compare` starts: one child process per act, run by joke-server's supervisor.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use joke_server::supervisor::{Launch, Supervised};
use joke_server::{Flavor, StatsSummary};

use acts::ActEntry;

/// A running act server.
#[derive(Debug)]
pub struct ServerProcess {
    pub act: &'static ActEntry,
    /// The address it logged as `listening on`.
    pub addr: SocketAddr,
    /// The child process. The supervisor keeps reading its stderr (remembering the last
    /// lines), so the server never blocks on a full pipe while we measure it, and kills it
    /// should this handle be dropped without [`stop`](Self::stop).
    server: Supervised,
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
    /// Starts `act` as `<this binary> serve ACT --addr 127.0.0.1:0 --jokes JOKES --io-delay D
    /// --flavor F` and waits until it logs the address it listens on.
    pub async fn start(
        act: &'static ActEntry,
        jokes: &Path,
        io_delay: Duration,
        flavor: Flavor,
    ) -> anyhow::Result<Self> {
        let flavor = [OsString::from("--flavor"), OsString::from(flavor.name())];
        Self::start_with(act, jokes, io_delay, &[], &flavor).await
    }

    /// [`start`](Self::start), run through `wrapper` (a program and its arguments that then
    /// run ours, such as `taskset -c 1`), with `extra` arguments for the server.
    pub async fn start_with(
        act: &'static ActEntry,
        jokes: &Path,
        io_delay: Duration,
        wrapper: &[OsString],
        extra: &[OsString],
    ) -> anyhow::Result<Self> {
        // An act of a separate build (Act VIII) runs as that build's binary; every other act
        // as `<this binary> serve ACT`.
        let (program, serve): (_, &[&str]) = match crate::separate_build::binary(act) {
            Some(binary) => (binary, &[]),
            None => (
                std::env::current_exe().context("finding bench-client's own binary")?,
                &["serve", act.name],
            ),
        };
        let launch = match wrapper.split_first() {
            Some((wrapper, args)) => Launch::new(wrapper).args(args).arg(program),
            None => Launch::new(program),
        };
        let server = launch
            .name(act.name)
            .args(serve)
            .args(["--addr", "127.0.0.1:0", "--jokes"])
            .arg(jokes)
            .arg("--io-delay")
            .arg(humantime::format_duration(io_delay).to_string())
            .args(extra)
            .start()
            .await?;
        Ok(ServerProcess {
            act,
            addr: server.addr(),
            server,
        })
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Stops the server the way an operator would (SIGTERM), waits for its clean exit, and
    /// reads the statistics it prints on the way out.
    pub async fn stop(self) -> ServerOutcome {
        let stopped = self.server.stop().await;
        let mut problems = stopped.problems.clone();
        if let Some(status) = stopped.status.filter(|status| !status.success()) {
            problems.push(format!("exited with {status}"));
        }
        let stats = match stopped.statistics() {
            Ok(stats) => Some(stats),
            Err(error) => {
                problems.push(error.to_string());
                None
            }
        };
        let problem = (!problems.is_empty()).then(|| {
            let log: String = stopped
                .stderr
                .lines()
                .map(|line| format!("    {line}\n"))
                .collect();
            format!(
                "{}: {}; its last log lines:\n{log}",
                self.act.name,
                problems.join("; "),
            )
        });
        ServerOutcome {
            stats,
            exit_code: stopped.code(),
            problem,
        }
    }
}
