//! The tests every act must pass, written once. Each act's `tests/conformance.rs` runs them
//! all with one line: [`act_conformance_tests!`](crate::act_conformance_tests).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use joke_server::{Act, Config, StatsSummary};

use crate::binary::{RunningBinary, run_to_exit};
use crate::client::{self, client_runtime};
use crate::fixture::JokesFile;
use crate::server::ServerUnderTest;

/// Connections held open at once in the burst test: more than the 128 that `TcpListener::bind`
/// would queue, fewer than the harness's backlog of 4096.
pub const BURST: usize = 2_000;
/// Sequential connections in the `--io-delay` test.
const DELAYED_CONNECTIONS: usize = 16;
/// The simulated disk latency in the `--io-delay` test.
const IO_DELAY: Duration = Duration::from_millis(20);

/// Where an act does its per-joke file I/O, and so where `--io-delay` must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoPlacement {
    /// On a runtime worker thread (Act I): one slow poll per connection.
    OnTheWorker,
    /// On the blocking pool (Acts II and IV to VII): the connection tasks' polls stay short.
    OffTheWorkers,
    /// Nowhere: the joke comes from memory (the finale), and `--io-delay` changes nothing.
    NoFileIo,
}

/// Runs the conformance tests of one test binary one at a time.
///
/// The test harness runs tests on parallel threads, and on a two-core machine a 2000-connection
/// burst next door makes the operating system pause other tests' threads for milliseconds,
/// which a server's slow-poll count then reports as if the act had blocked. Each test holds
/// this lock for its whole run, so what one test measures is its own server.
pub(crate) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding the lock poisons it; the next test may still run.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks that every received joke is exactly one joke of `jokes`, with a useful message.
fn assert_whole_jokes(received: &[io::Result<Vec<u8>>], jokes: &[String]) {
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

fn config_for(file: &JokesFile) -> Config {
    Config {
        // Short, so that a stop never waits long for a client a test left open.
        drain_timeout: Duration::from_millis(500),
        grace_period: Duration::from_secs(5),
        ..Config::new(file.path())
    }
}

/// Sequential clients: each receives exactly one joke of the file, and every joke they
/// receive is whole (compared against the index's own read of the fixture).
pub fn serves_exactly_one_joke_of_the_file<A: Act>(act: A) {
    let _one_at_a_time = one_at_a_time();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let server = ServerUnderTest::start(act, config_for(&file));
    let addr = server.addr();
    let received = client_runtime().block_on(async {
        let mut received = Vec::new();
        for _ in 0..40 {
            received.push(client::fetch_joke(addr).await);
        }
        received
    });
    let stats = server.stop();
    assert_whole_jokes(&received, &jokes);
    assert_eq!(stats.served, 40, "{stats:?}");
    assert_eq!(stats.read_failures, 0, "{stats:?}");
}

/// Clients that send 10 KB before reading still get their whole joke: the server drains what
/// they sent before closing, so the kernel does not answer with a reset.
pub fn client_that_sends_first_gets_the_whole_joke<A: Act>(act: A) {
    let _one_at_a_time = one_at_a_time();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let server = ServerUnderTest::start(act, config_for(&file));
    let addr = server.addr();
    let chatter = vec![b'?'; 10 * 1024];
    let received = client_runtime().block_on(async {
        let mut received = Vec::new();
        for _ in 0..10 {
            received.push(client::fetch_joke_after_sending(addr, &chatter).await);
        }
        received
    });
    let stats = server.stop();
    assert_whole_jokes(&received, &jokes);
    assert_eq!(stats.served, 10, "{stats:?}");
}

/// [`BURST`] connections open at the same moment all get whole jokes: the listen backlog and
/// the accept loop keep up, and no client waits for a SYN retransmission.
pub fn burst_of_connections_all_get_whole_jokes<A: Act>(act: A) {
    let _one_at_a_time = one_at_a_time();
    // Both ends of every connection live in this process, plus some slack.
    client::raise_open_files_limit(2 * BURST as u64 + 256);
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let server = ServerUnderTest::start(act, config_for(&file));
    let addr = server.addr();
    let received = client_runtime().block_on(client::open_all_then_read(addr, BURST));
    let stats = server.stop();
    assert_whole_jokes(&received, &jokes);
    assert_eq!(stats.served, BURST as u64, "{stats:?}");
    assert_eq!(stats.accept_errors, 0, "{stats:?}");
}

/// Clients that reset the connection (at once, or after a byte of the joke) do not disturb
/// the clients around them nor those after them.
pub fn clients_that_reset_do_not_disturb_the_others<A: Act>(act: A) {
    let _one_at_a_time = one_at_a_time();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let server = ServerUnderTest::start(act, config_for(&file));
    let addr = server.addr();
    let received = client_runtime().block_on(async move {
        let mut rude = tokio::task::JoinSet::new();
        let mut polite = tokio::task::JoinSet::new();
        for n in 0..30 {
            rude.spawn(client::reset_after_reading(addr, n % 2));
            polite.spawn(client::fetch_joke(addr));
        }
        // A rude client may fail to connect only if the server is broken.
        while let Some(done) = rude.join_next().await {
            done.expect("no panic").expect("a rude client connects");
        }
        let mut received = polite.join_all().await;
        // And the ones that come after.
        received.extend(client::fetch_concurrently(addr, 20, 20).await);
        received
    });
    let stats = server.stop();
    assert_whole_jokes(&received, &jokes);
    assert_eq!(stats.read_failures, 0, "{stats:?}");
    assert!(stats.served >= 50, "{stats:?}");
}

/// Serves [`DELAYED_CONNECTIONS`] jokes one after another with `io_delay` on a server with a
/// single worker thread, and returns its statistics.
fn serve_with_io_delay<A: Act>(act: A, io_delay: Duration) -> StatsSummary {
    let file = JokesFile::short_jokes();
    let jokes = file.served_jokes();
    let config = Config {
        io_delay,
        ..config_for(&file)
    };
    let server = ServerUnderTest::start_with_workers(act, config, 1);
    let addr = server.addr();
    let received = client_runtime().block_on(async move {
        let mut received = Vec::new();
        for _ in 0..DELAYED_CONNECTIONS {
            received.push(client::fetch_joke(addr).await);
        }
        received
    });
    let stats = server.stop();
    assert_whole_jokes(&received, &jokes);
    assert_eq!(stats.served, DELAYED_CONNECTIONS as u64, "{stats:?}");
    stats
}

/// `--io-delay` shows exactly where the act does its file I/O.
///
/// The measure is the server's own count of slow polls (a connection task that held its worker
/// thread over a millisecond in one poll), never the wall clock of the test:
/// - on the worker (Act I), every connection has a poll that lasts the whole delay;
/// - off the workers, polls stay short: far fewer slow polls than connections (a few may come
///   from the machine being busy, hence "far fewer", not zero);
/// - with no file I/O, the delay (here an hour) is never slept at all: if it were, no client
///   would get its joke before its timeout.
pub fn io_delay_is_spent_where_the_act_does_its_io<A: Act>(act: A, placement: IoPlacement) {
    let _one_at_a_time = one_at_a_time();
    let connections = DELAYED_CONNECTIONS as u64;
    match placement {
        IoPlacement::OnTheWorker => {
            let stats = serve_with_io_delay(act, IO_DELAY);
            assert!(stats.slow_polls >= connections, "{stats:?}");
            assert!(
                stats.longest_poll_us >= IO_DELAY.as_micros() as u64,
                "{stats:?}"
            );
        }
        IoPlacement::OffTheWorkers => {
            let stats = serve_with_io_delay(act, IO_DELAY);
            assert!(stats.slow_polls < connections / 2, "{stats:?}");
        }
        IoPlacement::NoFileIo => {
            let stats = serve_with_io_delay(act, Duration::from_secs(3600));
            assert!(stats.slow_polls < connections / 2, "{stats:?}");
        }
    }
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

pub(crate) fn as_os_strs(args: &[std::ffi::OsString]) -> Vec<&OsStr> {
    args.iter().map(|arg| arg.as_os_str()).collect()
}

/// The real binary starts on port 0, serves a joke, and on SIGTERM exits 0 after printing one
/// JSON line of statistics on stdout.
pub fn real_binary_serves_then_exits_cleanly_on_sigterm(binary: &str) {
    let _one_at_a_time = one_at_a_time();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let mut args = os(&["--addr", "127.0.0.1:0", "--jokes"]);
    args.push(file.path().into());
    let server = RunningBinary::start(binary, &as_os_strs(&args));
    let addr = server.addr();
    let received = client_runtime().block_on(client::fetch_joke(addr));
    let exited = server.terminate();
    assert_whole_jokes(&[received], &jokes);
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
    let lines: Vec<&str> = exited.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout:\n{}", exited.stdout);
    let stats: StatsSummary = serde_json::from_str(lines[0])
        .unwrap_or_else(|error| panic!("stdout is not the statistics ({error}): {}", lines[0]));
    assert_eq!(stats.served, 1, "{stats:?}");
}

/// A start-up that must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadStartUp {
    MissingFile,
    Directory,
    EmptyFile,
    InvalidUtf8,
    BadAddr,
    PortInUse,
    ZeroWorkers,
    UnknownFlag,
    OnlySeparators,
    LineTooLong,
}

/// The binary refuses the start-up: exit code 2, and a message on stderr naming the problem.
pub fn bad_start_up_exits_2(binary: &str, case: BadStartUp) {
    let _one_at_a_time = one_at_a_time();
    let file = JokesFile::fixture();
    let mut args = os(&["--addr", "127.0.0.1:0"]);
    // Held until the binary has exited, for `PortInUse`.
    let mut _occupied = None;
    // What stderr must mention.
    let needles: Vec<String> = match case {
        BadStartUp::MissingFile => {
            let missing = file.missing_sibling();
            args.extend(os(&["--jokes"]));
            args.push(missing.clone().into());
            vec![missing.display().to_string(), "no such file".into()]
        }
        BadStartUp::Directory => {
            args.extend(os(&["--jokes"]));
            args.push(file.folder().into());
            vec![file.folder().display().to_string(), "is a directory".into()]
        }
        BadStartUp::EmptyFile => {
            let empty = JokesFile::with_bytes("");
            args.extend(os(&["--jokes"]));
            args.push(empty.path().into());
            let needles = vec![empty.path().display().to_string(), "no jokes".into()];
            let exited = run_to_exit(binary, &as_os_strs(&args));
            return assert_refused(&exited, &needles);
        }
        BadStartUp::InvalidUtf8 => {
            let broken = JokesFile::with_bytes(b"a fine line\nanother\nbad \xff\xfe byte\n---\n");
            args.extend(os(&["--jokes"]));
            args.push(broken.path().into());
            let needles = vec![
                broken.path().display().to_string(),
                "line 3".into(),
                "UTF-8".into(),
            ];
            let exited = run_to_exit(binary, &as_os_strs(&args));
            return assert_refused(&exited, &needles);
        }
        BadStartUp::BadAddr => {
            args = os(&["--addr", "not-an-address", "--jokes"]);
            args.push(file.path().into());
            vec!["--addr".into(), "not-an-address".into()]
        }
        BadStartUp::PortInUse => {
            let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a listener");
            let addr: SocketAddr = taken.local_addr().expect("a bound listener has an address");
            _occupied = Some(taken);
            args = os(&["--addr", &addr.to_string(), "--jokes"]);
            args.push(file.path().into());
            vec![addr.to_string(), "cannot listen".into()]
        }
        BadStartUp::ZeroWorkers => {
            args.extend(os(&["--workers", "0", "--jokes"]));
            args.push(file.path().into());
            vec!["--workers".into()]
        }
        BadStartUp::UnknownFlag => {
            args.extend(os(&["--no-such-flag", "--jokes"]));
            args.push(file.path().into());
            vec!["--no-such-flag".into()]
        }
        BadStartUp::OnlySeparators => {
            let separators = JokesFile::with_bytes("---\n\n-----\n  \n---\n");
            args.extend(os(&["--jokes"]));
            args.push(separators.path().into());
            let needles = vec![separators.path().display().to_string(), "no jokes".into()];
            let exited = run_to_exit(binary, &as_os_strs(&args));
            return assert_refused(&exited, &needles);
        }
        BadStartUp::LineTooLong => {
            let line = "x".repeat(joke_server::MAX_LINE_BYTES + 1);
            let long = JokesFile::with_bytes(format!("a short joke\n---\n{line}\r\n"));
            args.extend(os(&["--jokes"]));
            args.push(long.path().into());
            let needles = vec![
                long.path().display().to_string(),
                "line 3".into(),
                format!("{} bytes", joke_server::MAX_LINE_BYTES + 1),
            ];
            let exited = run_to_exit(binary, &as_os_strs(&args));
            return assert_refused(&exited, &needles);
        }
    };
    let exited = run_to_exit(binary, &as_os_strs(&args));
    assert_refused(&exited, &needles);
}

fn assert_refused(exited: &crate::binary::Exited, needles: &[String]) {
    assert_eq!(
        exited.code,
        Some(2),
        "expected exit code 2; stderr:\n{}",
        exited.stderr
    );
    for needle in needles {
        assert!(
            exited.stderr.contains(needle.as_str()),
            "stderr does not mention {needle:?}:\n{}",
            exited.stderr
        );
    }
}
