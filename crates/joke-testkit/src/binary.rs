//! An act's real binary, run as a child process: started on a free port, stopped with SIGTERM,
//! or run to its exit when it is expected to refuse to start.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// How long a binary may take to say `listening on`, or to exit once asked to.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// How a child process ended, and everything it printed.
#[derive(Debug)]
pub struct Exited {
    /// The exit code; `None` when a signal killed it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// An act's binary, running, with the address it said it listens on.
#[derive(Debug)]
pub struct RunningBinary {
    pid: u32,
    addr: SocketAddr,
    exit: mpsc::Receiver<std::io::Result<ExitStatus>>,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    /// Every stderr line after `listening on`, as it arrives.
    stderr_lines: mpsc::Receiver<String>,
}

/// Starts `binary` with `args` and a child environment that logs at `info` without colours.
fn spawn(binary: &str, args: &[&OsStr]) -> Child {
    Command::new(binary)
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {binary}: {error}"))
}

/// Waits for the child on a thread of its own, so that the exit can be awaited with a timeout
/// (std's `Child` has no `wait_timeout`).
fn wait_in_background(mut child: Child) -> mpsc::Receiver<std::io::Result<ExitStatus>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    receiver
}

fn read_all_in_background(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Sends `signal` to process `pid` (through rustix, so no `unsafe` of ours and no kill(1)).
fn send_signal(pid: u32, signal: Signal) {
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .unwrap_or_else(|| panic!("{pid} is not a process id"));
    kill_process(target, signal).unwrap_or_else(|error| panic!("kill -{signal:?} {pid}: {error}"));
}

/// Waits up to [`PROCESS_TIMEOUT`] for an exit; past that, kills the process and panics.
fn wait_for_exit(
    pid: u32,
    exit: &mpsc::Receiver<std::io::Result<ExitStatus>>,
    what: &str,
) -> ExitStatus {
    match exit.recv_timeout(PROCESS_TIMEOUT) {
        Ok(status) => status.expect("waiting for the child"),
        Err(_) => {
            send_signal(pid, Signal::KILL);
            panic!("{what}: the process did not exit within {PROCESS_TIMEOUT:?}; killed it");
        }
    }
}

impl RunningBinary {
    /// Starts `binary` with `args` (which should include `--addr 127.0.0.1:0`) and waits for
    /// its `listening on ADDR` line on stderr.
    ///
    /// # Panics
    /// When the binary exits, or says nothing of the kind within [`PROCESS_TIMEOUT`].
    pub fn start(binary: &str, args: &[&OsStr]) -> Self {
        let mut child = spawn(binary, args);
        let pid = child.id();
        let stdout = read_all_in_background(child.stdout.take().expect("piped"));
        let stderr_pipe = child.stderr.take().expect("piped");
        let exit = wait_in_background(child);

        // Stderr is read line by line: each line goes to the test (to spot `listening on`) and
        // into the full text returned at the end.
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = lines_tx.send(line);
            }
            all
        });

        let addr = loop {
            match lines_rx.recv_timeout(PROCESS_TIMEOUT) {
                Ok(line) => {
                    if let Some(addr) = joke_server::wire::parse_ready_line(&line) {
                        break addr;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = wait_for_exit(pid, &exit, binary);
                    let stderr = stderr.join().unwrap_or_default();
                    panic!("{binary} exited ({status}) without listening; stderr:\n{stderr}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    send_signal(pid, Signal::KILL);
                    panic!("{binary} did not say `listening on` within {PROCESS_TIMEOUT:?}");
                }
            }
        };
        RunningBinary {
            pid,
            addr,
            exit,
            stdout,
            stderr,
            stderr_lines: lines_rx,
        }
    }

    /// Waits (up to [`PROCESS_TIMEOUT`]) for a line on stderr containing `needle`, and returns
    /// it. Lines before it are passed over.
    ///
    /// # Panics
    /// When no such line comes in time, or the process closes its stderr first.
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(error) => panic!("no stderr line with {needle:?}: {error}"),
            }
        }
    }

    /// Sends `signal` (such as `Signal::HUP`) to the process.
    pub fn signal(&self, signal: Signal) {
        send_signal(self.pid, signal);
    }

    /// The address the binary listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(self) -> Exited {
        send_signal(self.pid, Signal::TERM);
        let status = wait_for_exit(self.pid, &self.exit, "after SIGTERM");
        Exited {
            code: status.code(),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}

/// Runs `binary` with `args` until it exits by itself (a start-up that must fail), killing it
/// if it is still running after [`PROCESS_TIMEOUT`].
pub fn run_to_exit(binary: &str, args: &[&OsStr]) -> Exited {
    let mut child = spawn(binary, args);
    let pid = child.id();
    let stdout = read_all_in_background(child.stdout.take().expect("piped"));
    let stderr = read_all_in_background(child.stderr.take().expect("piped"));
    let exit = wait_in_background(child);
    let status = wait_for_exit(pid, &exit, binary);
    Exited {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
