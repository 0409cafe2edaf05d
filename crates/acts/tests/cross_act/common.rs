//! What the checks share: the lock that keeps the sensitive ones apart, how to start an act's
//! real process, and the assertion that every client got one whole joke.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use acts::ActEntry;
use joke_server::{Config, StatsSummary};
use joke_testkit::{Exited, JokesFile, RunningBinary, run_to_exit};

/// The tests of this binary run on parallel threads. On a two-core machine, a 2000-connection
/// burst next door makes the operating system pause other tests' threads for milliseconds,
/// which a server's slow-poll count then reports as if the act had blocked, and two bursts at
/// once need more file descriptors than one. So every check that opens crowds of connections,
/// counts slow polls or sends signals holds this lock alone ([`alone`]); the light ones
/// ([`alongside_others`]) share it with each other.
static LOCK: RwLock<()> = RwLock::new(());

/// Holds the lock alone, for the whole test.
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    // A test that failed while holding the lock poisons it; the next test may still run.
    LOCK.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Shares the lock with the other light tests.
pub fn alongside_others() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The real process of an act: `run-act NAME`, then the server's own options.
pub fn binary_args(entry: &ActEntry, options: &[OsString]) -> Vec<OsString> {
    let mut args = vec![OsString::from(entry.name)];
    args.extend(options.iter().cloned());
    args
}

/// This crate's `run-act`, which runs any act of the list as the act's own binary would.
pub const RUN_ACT: &str = env!("CARGO_BIN_EXE_run-act");

/// Starts `entry`'s real process with `options` and waits for it to listen.
pub fn start_binary(entry: &ActEntry, options: &[OsString]) -> RunningBinary {
    let args = binary_args(entry, options);
    RunningBinary::start(RUN_ACT, &as_os_strs(&args))
}

/// Runs `entry`'s real process with `options` until it exits by itself.
pub fn run_binary_to_exit(entry: &ActEntry, options: &[OsString]) -> Exited {
    let args = binary_args(entry, options);
    run_to_exit(RUN_ACT, &as_os_strs(&args))
}

pub fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(Into::into).collect()
}

pub fn as_os_strs(args: &[OsString]) -> Vec<&OsStr> {
    args.iter().map(|arg| arg.as_os_str()).collect()
}

/// `--addr 127.0.0.1:0 --jokes FILE`.
pub fn server_args(file: &JokesFile) -> Vec<OsString> {
    let mut args = os(&["--addr", "127.0.0.1:0", "--jokes"]);
    args.push(file.path().into());
    args
}

/// The statistics a server printed on stdout at shutdown (its last line).
pub fn statistics(stdout: &str) -> StatsSummary {
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("stdout is not the statistics ({error}): {stdout}"))
}

/// The harness's configuration for a test: stops never wait long for a client left open.
pub fn config_for(file: &JokesFile) -> Config {
    Config {
        drain_timeout: Duration::from_millis(500),
        grace_period: Duration::from_secs(5),
        ..Config::new(file.path())
    }
}

/// Checks that every received joke is exactly one joke of `jokes`, with a useful message.
pub fn assert_whole_jokes(received: &[io::Result<Vec<u8>>], jokes: &[String]) {
    let known: HashSet<&[u8]> = jokes.iter().map(|joke| joke.as_bytes()).collect();
    let mut failures = Vec::new();
    for (n, result) in received.iter().enumerate() {
        match result {
            Ok(bytes) if known.contains(bytes.as_slice()) => {}
            Ok(bytes) => failures.push(format!(
                "client {n}: {} bytes that are not one joke of the file: {:?}",
                bytes.len(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )),
            Err(error) => failures.push(format!("client {n}: {error}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} clients did not get one whole joke; the first ones:\n{}",
        failures.len(),
        received.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}
