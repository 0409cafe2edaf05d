//! Runs a joke server as a child process and speaks the [`wire`](crate::wire) contract with it:
//! what `bench-client compare` and the tests that start real binaries share.
//!
//! [`Launch`] describes the command; [`Launch::start`] spawns it and waits (with a timeout) for
//! its ready line, and gives back a [`Supervised`] server with the address it listens on;
//! [`Supervised::stop`] sends SIGTERM, waits (with a timeout) for the exit and hands back
//! everything the server printed, its statistics included ([`Stopped::statistics`]).
//!
//! Three things a supervisor must get right, and why:
//!
//! - **Keep reading stderr.** A pipe holds 64 KiB. If nobody read the server's stderr after its
//!   ready line, the server's next log line after the pipe filled up would block the worker
//!   thread that logs it: the supervisor would be measuring its own neglect. A task reads every
//!   line for as long as the server runs, and keeps only the last ones ([`Launch::stderr_lines`]),
//!   so a chatty server costs a bounded amount of memory.
//! - **No orphans.** The child is killed when its [`Supervised`] is dropped (a failing test, an
//!   error in `compare`). And should the supervising process itself die without running any
//!   destructor (SIGKILL), the server notices anyway: see "Dying with the parent" below.
//! - **Signal the right process.** [`Supervised::signal`] uses the pid of a child that has not
//!   been waited for yet; until it is reaped, a process that exited stays a zombie under that
//!   pid, so the number cannot have been reused by a stranger.
//!
//! # Dying with the parent
//!
//! The supervisor gives the server a pipe as stdin, keeps the write end, and sets
//! [`wire::STOP_ON_STDIN_EOF`](crate::wire::STOP_ON_STDIN_EOF) in its environment. A harness that
//! sees that variable watches its stdin, and shuts down as on SIGTERM when it reads end-of-file.
//! The kernel closes the write end when the supervising process ends, however it ends, so the
//! server learns of it even after a SIGKILL.
//!
//! Linux's `PR_SET_PDEATHSIG` would also do, but only on Linux, set by the child on itself, and
//! with two races: a parent that dies before the child's `prctl` is never reported (the child
//! must re-check its parent by hand), and the signal fires when the *thread* that spawned the
//! child exits, which in a Tokio program may be a blocking-pool thread retired after ten idle
//! seconds. The pipe has neither: end-of-file stays readable, so a parent that died before
//! the server started watching (while it was still indexing its jokes, say) is seen as soon as
//! the watch begins. What remains is a delay, not a race: the server then shuts down politely,
//! within its grace period, rather than at once. Std opens the pipe with `O_CLOEXEC`, so
//! sibling servers started by the same parent do not hold each other's write ends open.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::StatsSummary;
use crate::wire::{self, WireError};

/// How long a server gets by default to print its ready line: indexing the jokes file is the
/// slow part, and it takes milliseconds; the rest is room for a loaded machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server gets by default to exit after SIGTERM. Its own grace period for jokes in
/// flight is 10 s.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How many of a server's last stderr lines are kept by default.
pub const STDERR_LINES: usize = 20;

/// How long the pipes may stay open after the process exited (a grandchild holding them, say)
/// before we stop waiting for their last bytes.
const PIPES_AFTER_EXIT: Duration = Duration::from_secs(5);

/// A server to start: a program, its arguments and environment, and the supervisor's limits.
///
/// The child logs at `info` without colours (`RUST_LOG=info`, `NO_COLOR=1`) unless
/// [`env`](Self::env) says otherwise, since the ready line is an `info` line.
#[derive(Debug, Clone)]
pub struct Launch {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    name: String,
    ready_timeout: Duration,
    stop_timeout: Duration,
    stderr_lines: usize,
}

/// Why a server could not be started, or did not do what was awaited.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("starting {name}: {source}")]
    Spawn {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{name} exited ({status}) before saying `listening on`; its last log lines:\n{stderr}")]
    ExitedBeforeReady {
        name: String,
        status: String,
        stderr: String,
    },
    #[error(
        "{name} did not say `listening on` within {}, killed it; its last log lines:\n{stderr}",
        humantime::format_duration(*timeout)
    )]
    ReadyTimeout {
        name: String,
        timeout: Duration,
        stderr: String,
    },
    #[error(
        "{name} was still running after {}, killed it; its last log lines:\n{stderr}",
        humantime::format_duration(*timeout)
    )]
    ExitTimeout {
        name: String,
        timeout: Duration,
        stderr: String,
    },
    #[error(
        "{name} wrote no stderr line containing {needle:?} ({why}); its last log lines:\n{stderr}"
    )]
    NoSuchLine {
        name: String,
        needle: String,
        why: String,
        stderr: String,
    },
}

impl Launch {
    /// `program`, with no arguments yet, named after itself in messages.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref().to_owned();
        Launch {
            name: program.to_string_lossy().into_owned(),
            program,
            args: Vec::new(),
            envs: vec![
                ("RUST_LOG".into(), "info".into()),
                ("NO_COLOR".into(), "1".into()),
            ],
            ready_timeout: READY_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
            stderr_lines: STDERR_LINES,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable of the child (after the defaults, so it wins).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The name used in messages (default: the program).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long [`start`](Self::start) waits for the ready line ([`READY_TIMEOUT`]).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long [`Supervised::stop`] waits for the exit after SIGTERM ([`STOP_TIMEOUT`]).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// How many of the last stderr lines to keep ([`STDERR_LINES`]; at least one).
    pub fn stderr_lines(mut self, lines: usize) -> Self {
        self.stderr_lines = lines.max(1);
        self
    }

    /// Spawns the child with its three pipes and the tasks that drain stdout and stderr.
    fn spawn(&self) -> Result<Running, SuperviseError> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env(wire::STOP_ON_STDIN_EOF, "1")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Should the supervisor fail or be dropped, no server outlives its handle.
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| SuperviseError::Spawn {
            name: self.name.clone(),
            source,
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = tokio::spawn(read_to_end(stdout));
        let (log, log_reader) = watch::channel(StderrLog::new(self.stderr_lines));
        let stderr = tokio::spawn(drain_stderr(stderr, log));
        Ok(Running {
            name: self.name.clone(),
            child,
            _stdin: stdin,
            stdout,
            stderr,
            log: log_reader,
            stop_timeout: self.stop_timeout,
        })
    }

    /// Starts the server and waits for its ready line. On failure the child is killed and the
    /// error carries its last stderr lines.
    pub async fn start(self) -> Result<Supervised, SuperviseError> {
        let mut running = self.spawn()?;
        let log = &mut running.log;
        let ready = timeout(self.ready_timeout, async move {
            match log.wait_for(|log| log.ready.is_some() || log.closed).await {
                Ok(log) => log.ready,
                // The reading task ended without a word: treated as a closed stderr.
                Err(_) => None,
            }
        })
        .await;
        let Ok(ready) = ready else {
            let _ = running.child.kill().await;
            return Err(SuperviseError::ReadyTimeout {
                name: running.name.clone(),
                timeout: self.ready_timeout,
                stderr: running.tail(),
            });
        };
        let Some((addr, ready_line)) = ready else {
            // Stderr closed: the process is exiting or gone. Kill it in case it only closed
            // its stderr, and say how it ended.
            let _ = running.child.start_kill();
            let status = match timeout(self.stop_timeout, running.child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                Ok(Err(error)) => format!("cannot wait for it: {error}"),
                Err(_) => "did not exit".to_owned(),
            };
            return Err(SuperviseError::ExitedBeforeReady {
                name: running.name.clone(),
                status,
                stderr: running.tail(),
            });
        };
        Ok(Supervised {
            addr,
            next_line: ready_line + 1,
            running,
        })
    }

    /// Runs the command until it exits by itself (a start-up that must fail, say), killing it
    /// if it still runs after `limit`.
    pub async fn run_to_exit(self, limit: Duration) -> Result<Stopped, SuperviseError> {
        let mut running = self.spawn()?;
        match timeout(limit, running.child.wait()).await {
            Ok(status) => Ok(running
                .finish(status.map_err(|e| e.to_string()), Vec::new())
                .await),
            Err(_elapsed) => {
                let _ = running.child.kill().await;
                Err(SuperviseError::ExitTimeout {
                    name: running.name.clone(),
                    timeout: limit,
                    stderr: running.tail(),
                })
            }
        }
    }
}

/// A child process and the tasks reading its output.
#[derive(Debug)]
struct Running {
    name: String,
    child: Child,
    /// The write end of the child's stdin, held for as long as we supervise it: when it closes
    /// (we are dropped, or our process dies), the server shuts down.
    _stdin: Option<ChildStdin>,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<()>,
    log: watch::Receiver<StderrLog>,
    stop_timeout: Duration,
}

impl Running {
    /// The kept stderr lines, each ending in a newline.
    fn tail(&self) -> String {
        self.log.borrow().text()
    }

    /// After the exit: the rest of stdout and stderr.
    async fn finish(
        self,
        status: Result<ExitStatus, String>,
        mut problems: Vec<String>,
    ) -> Stopped {
        let status = match status {
            Ok(status) => Some(status),
            Err(error) => {
                problems.push(format!("cannot wait for it: {error}"));
                None
            }
        };
        let stdout = match timeout(PIPES_AFTER_EXIT, self.stdout).await {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => {
                problems.push(format!("reading its stdout: {error}"));
                String::new()
            }
            Err(_) => {
                problems.push("its stdout stayed open after it exited".to_owned());
                String::new()
            }
        };
        if timeout(PIPES_AFTER_EXIT, self.stderr).await.is_err() {
            problems.push("its stderr stayed open after it exited".to_owned());
        }
        let stderr = self.log.borrow().text();
        Stopped {
            status,
            stdout,
            stderr,
            problems,
        }
    }
}

/// A server that said where it listens, running until [`stop`](Self::stop) (or killed when
/// dropped).
#[derive(Debug)]
pub struct Supervised {
    addr: SocketAddr,
    /// The number of the first stderr line [`wait_for_stderr`](Self::wait_for_stderr) has not
    /// looked at yet.
    next_line: u64,
    running: Running,
}

/// How a server ended, and everything it printed.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Its exit status; `None` when it could not be waited for.
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout (the statistics line, for a joke server).
    pub stdout: String,
    /// The last lines it printed on stderr, each ending in a newline (all of them when there
    /// were no more than [`Launch::stderr_lines`]).
    pub stderr: String,
    /// What went wrong while stopping it: SIGTERM not delivered, no exit in time (then it was
    /// killed), pipes left open. Empty after a clean stop.
    pub problems: Vec<String>,
}

impl Stopped {
    /// The exit code; `None` when a signal ended it or it could not be waited for.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// The statistics line it printed on stdout.
    pub fn statistics(&self) -> Result<StatsSummary, WireError> {
        wire::parse_stats_output(&self.stdout)
    }
}

impl Supervised {
    /// The address from the ready line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name given to [`Launch::name`].
    pub fn name(&self) -> &str {
        &self.running.name
    }

    /// The process id, until the process has been waited for.
    pub fn pid(&self) -> Option<u32> {
        self.running.child.id()
    }

    /// Sends `signal` to the process (through rustix's safe kill(2): the workspace forbids
    /// `unsafe`).
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        send_signal(&self.running.child, signal)
    }

    /// The stderr lines kept so far, each ending in a newline.
    pub fn stderr_tail(&self) -> String {
        self.running.tail()
    }

    /// Waits up to `within` for a stderr line containing `needle`, and returns it. It looks at
    /// the lines after the ready line, and after the line a previous call returned.
    pub async fn wait_for_stderr(
        &mut self,
        needle: &str,
        within: Duration,
    ) -> Result<String, SuperviseError> {
        let next_line = &mut self.next_line;
        let log = &mut self.running.log;
        let search = async {
            loop {
                let closed = {
                    let log = log.borrow_and_update();
                    if let Some((number, line)) = log.find_from(*next_line, needle) {
                        *next_line = number + 1;
                        return Ok(line.to_owned());
                    }
                    *next_line = log.end();
                    log.closed
                };
                if closed || log.changed().await.is_err() {
                    return Err("it closed its stderr".to_owned());
                }
            }
        };
        let why = match timeout(within, search).await {
            Ok(Ok(line)) => return Ok(line),
            Ok(Err(why)) => why,
            Err(_) => format!("waited {}", humantime::format_duration(within)),
        };
        Err(SuperviseError::NoSuchLine {
            name: self.running.name.clone(),
            needle: needle.to_owned(),
            why,
            stderr: self.running.tail(),
        })
    }

    /// Closes the server's stdin, as the death of this process would: a harness that watches
    /// it ([`wire::STOP_ON_STDIN_EOF`](crate::wire::STOP_ON_STDIN_EOF)) shuts down.
    pub fn close_stdin(&mut self) {
        self.running._stdin = None;
    }

    /// Waits (up to the stop timeout, then kills it) for the server to exit by itself, without
    /// signalling it; then collects what it printed.
    pub async fn wait(self) -> Stopped {
        self.wait_for_exit(Vec::new(), "").await
    }

    /// Stops the server as an operator would: SIGTERM, then a wait for its exit (killing it
    /// after the stop timeout), then the rest of what it printed.
    pub async fn stop(self) -> Stopped {
        let mut problems = Vec::new();
        if let Err(error) = self.signal(Signal::TERM) {
            problems.push(format!("cannot send SIGTERM: {error}"));
        }
        self.wait_for_exit(problems, " after SIGTERM").await
    }

    async fn wait_for_exit(self, mut problems: Vec<String>, after: &str) -> Stopped {
        let mut running = self.running;
        let status = match timeout(running.stop_timeout, running.child.wait()).await {
            Ok(status) => status.map_err(|error| error.to_string()),
            Err(_elapsed) => {
                let _ = running.child.kill().await;
                problems.push(format!(
                    "still running {}{after}, killed",
                    humantime::format_duration(running.stop_timeout)
                ));
                running
                    .child
                    .wait()
                    .await
                    .map_err(|error| error.to_string())
            }
        };
        running.finish(status, problems).await
    }
}

/// Sends `signal` to `child`, which must not have been waited for (see the module docs).
fn send_signal(child: &Child, signal: Signal) -> io::Result<()> {
    let id = child
        .id()
        .ok_or_else(|| io::Error::other("it has already exited"))?;
    let pid = i32::try_from(id)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::other(format!("{id} is not a process id")))?;
    rustix::process::kill_process(pid, signal)?;
    Ok(())
}

async fn read_to_end(mut from: impl AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    let _ = from.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads stderr line by line to its end, keeping the last lines and spotting the ready line.
/// Bytes that are not UTF-8 are replaced rather than ending the reading: a pipe nobody reads
/// would block the server.
async fn drain_stderr(stderr: impl AsyncRead + Unpin, log: watch::Sender<StderrLog>) {
    let mut stderr = BufReader::new(stderr);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        match stderr.read_until(b'\n', &mut bytes).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&bytes);
                let line = line.trim_end_matches(['\n', '\r']).to_owned();
                log.send_modify(|log| log.push(line));
            }
        }
    }
    log.send_modify(|log| log.closed = true);
}

/// The last lines of a server's stderr, numbered from 0 for the first line it ever wrote.
#[derive(Debug)]
struct StderrLog {
    lines: VecDeque<String>,
    /// The number of `lines[0]`.
    first: u64,
    capacity: usize,
    /// The ready line's address and number, once seen.
    ready: Option<(SocketAddr, u64)>,
    /// Stderr reached its end.
    closed: bool,
}

impl StderrLog {
    fn new(capacity: usize) -> Self {
        StderrLog {
            lines: VecDeque::new(),
            first: 0,
            capacity,
            ready: None,
            closed: false,
        }
    }

    /// The number the next line will get.
    fn end(&self) -> u64 {
        self.first + self.lines.len() as u64
    }

    fn push(&mut self, line: String) {
        if self.ready.is_none() {
            if let Some(addr) = wire::parse_ready_line(&line) {
                self.ready = Some((addr, self.end()));
            }
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
            self.first += 1;
        }
        self.lines.push_back(line);
    }

    /// The first kept line numbered `from` or later that contains `needle`.
    fn find_from(&self, from: u64, needle: &str) -> Option<(u64, &str)> {
        let skip = from.saturating_sub(self.first);
        (self.first..)
            .zip(&self.lines)
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .find(|(_, line)| line.contains(needle))
            .map(|(number, line)| (number, line.as_str()))
    }

    fn text(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_lines_and_their_numbers() {
        let mut log = StderrLog::new(2);
        for line in ["a", "listening on 127.0.0.1:7", "b", "c"] {
            log.push(line.to_owned());
        }
        assert_eq!(log.text(), "b\nc\n");
        assert_eq!(log.end(), 4);
        assert_eq!(log.ready, Some(("127.0.0.1:7".parse().unwrap(), 1)));
        // Lines that fell out of the tail are passed over, not searched.
        assert_eq!(log.find_from(0, "a"), None);
        assert_eq!(log.find_from(0, "c"), Some((3, "c")));
        assert_eq!(log.find_from(3, "b"), None);
    }

    fn shell(script: &str) -> Launch {
        Launch::new("sh").arg("-c").arg(script).name("a shell")
    }

    #[tokio::test]
    async fn start_reads_the_address_stop_collects_the_statistics() {
        let stats = wire::stats_line(&StatsSummary {
            served: 3,
            ..StatsSummary::default()
        });
        // A stand-in server: says where it listens, talks on stderr, and on SIGTERM prints
        // its statistics and exits 0.
        let script = format!(
            "trap 'echo bye >&2; echo '\"'\"'{stats}'\"'\"'; exit 0' TERM; \
             echo 'INFO x: listening on 127.0.0.1:9' >&2; echo 'warming up' >&2; \
             while :; do sleep 0.05; done"
        );
        let mut server = shell(&script).start().await.unwrap();
        assert_eq!(server.addr(), "127.0.0.1:9".parse().unwrap());
        let line = server
            .wait_for_stderr("warming", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(line, "warming up");
        let stopped = server.stop().await;
        assert!(stopped.problems.is_empty(), "{:?}", stopped.problems);
        assert_eq!(stopped.code(), Some(0));
        assert_eq!(stopped.statistics().unwrap().served, 3);
        assert!(
            stopped.stderr.ends_with("warming up\nbye\n"),
            "{}",
            stopped.stderr
        );
    }

    #[tokio::test]
    async fn a_server_that_exits_before_ready_is_reported_with_its_log() {
        let error = shell("echo 'no jokes here' >&2; exit 2")
            .start()
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, SuperviseError::ExitedBeforeReady { .. }));
        assert!(message.contains("exit status: 2"), "{message}");
        assert!(message.contains("no jokes here"), "{message}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_is_killed() {
        let error = shell("echo 'thinking' >&2; exec sleep 30")
            .ready_timeout(Duration::from_millis(300))
            .start()
            .await
            .unwrap_err();
        assert!(matches!(error, SuperviseError::ReadyTimeout { .. }));
        assert!(error.to_string().contains("thinking"), "{error}");
    }

    #[tokio::test]
    async fn a_server_deaf_to_sigterm_is_killed_after_the_stop_timeout() {
        let server = shell("trap '' TERM; echo 'listening on 127.0.0.1:9' >&2; exec sleep 30")
            .stop_timeout(Duration::from_millis(300))
            .start()
            .await
            .unwrap();
        let stopped = server.stop().await;
        assert_eq!(stopped.code(), None, "killed by a signal");
        assert!(
            stopped.problems.iter().any(|p| p.contains("killed")),
            "{:?}",
            stopped.problems
        );
        assert!(matches!(
            stopped.statistics().unwrap_err(),
            WireError::NoStatistics
        ));
    }

    #[tokio::test]
    async fn stderr_is_drained_past_the_pipe_size() {
        // 256 KiB of log after the ready line: a server whose stderr nobody read would block
        // on its write long before the end and never print "done".
        let script = "echo 'listening on 127.0.0.1:9' >&2; \
                      head -c 262144 /dev/zero | tr '\\0' 'x' | fold -w 100 >&2; \
                      echo done >&2; exec sleep 30";
        let mut server = shell(script).stderr_lines(3).start().await.unwrap();
        server
            .wait_for_stderr("done", Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(server.stderr_tail().lines().count(), 3);
    }

    #[tokio::test]
    async fn the_child_is_told_to_watch_its_stdin_and_sees_it_close() {
        let script = format!(
            "test \"${}\" = 1 || exit 3; echo 'listening on 127.0.0.1:9' >&2; \
             cat >/dev/null; echo 'stdin closed' >&2",
            wire::STOP_ON_STDIN_EOF
        );
        let mut server = shell(&script).start().await.unwrap();
        // Closing our end, as our death would, is what the child sees.
        server.close_stdin();
        server
            .wait_for_stderr("stdin closed", Duration::from_secs(10))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn run_to_exit_returns_the_output_or_kills_after_the_limit() {
        let done = shell("echo out; echo err >&2; exit 4")
            .run_to_exit(Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(done.code(), Some(4));
        assert_eq!(done.stdout, "out\n");
        assert_eq!(done.stderr, "err\n");
        let error = shell("exec sleep 30")
            .run_to_exit(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            matches!(error, SuperviseError::ExitTimeout { .. }),
            "{error}"
        );
    }
}
