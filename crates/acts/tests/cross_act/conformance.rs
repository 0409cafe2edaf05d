//! What every act must do, checked against each one: in-process (the act served by the
//! harness on a runtime of its own) for the serving itself, and as its real process for the
//! start-ups it must refuse.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use acts::{ActEntry, FileIo};
use joke_server::{Act, Config, StatsSummary};
use joke_testkit::client::{self, client_runtime};
use joke_testkit::{Exited, JokesFile, RunningBinary, ServerUnderTest};

use crate::common::{
    alone, assert_whole_jokes, config_for, os, run_binary_to_exit, server_args, start_binary,
};

/// Connections held open at once in the burst test: more than the 128 that `TcpListener::bind`
/// would queue, fewer than the harness's backlog of 4096.
pub const BURST: usize = 2_000;
/// Sequential connections in the `--io-delay` test.
const DELAYED_CONNECTIONS: usize = 16;
/// The simulated disk latency in the `--io-delay` test.
const IO_DELAY: Duration = Duration::from_millis(20);

/// Sequential clients: each receives exactly one joke of the file, and every joke they
/// receive is whole (compared against the index's own read of the fixture).
fn serves_exactly_one_joke_of_the_file<A: Act>(act: A) {
    let _alone = alone();
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
fn client_that_sends_first_gets_the_whole_joke<A: Act>(act: A) {
    let _alone = alone();
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
fn burst_of_connections_all_get_whole_jokes<A: Act>(act: A) {
    let _alone = alone();
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
fn clients_that_reset_do_not_disturb_the_others<A: Act>(act: A) {
    let _alone = alone();
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
fn io_delay_is_spent_where_the_act_does_its_io<A: Act>(act: A, placement: FileIo) {
    let _alone = alone();
    let connections = DELAYED_CONNECTIONS as u64;
    match placement {
        FileIo::OnTheWorker => {
            let stats = serve_with_io_delay(act, IO_DELAY);
            assert!(stats.slow_polls >= connections, "{stats:?}");
            assert!(
                stats.longest_poll_us >= IO_DELAY.as_micros() as u64,
                "{stats:?}"
            );
        }
        FileIo::OffTheWorkers => {
            let stats = serve_with_io_delay(act, IO_DELAY);
            assert!(stats.slow_polls < connections / 2, "{stats:?}");
        }
        FileIo::None => {
            let stats = serve_with_io_delay(act, Duration::from_secs(3600));
            assert!(stats.slow_polls < connections / 2, "{stats:?}");
        }
    }
}

/// The real binary starts on port 0, serves a joke, and on SIGTERM exits 0 after printing one
/// JSON line of statistics on stdout.
fn real_binary_serves_then_exits_cleanly_on_sigterm(entry: &ActEntry) {
    let _alone = alone();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let server: RunningBinary = start_binary(entry, &server_args(&file));
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

/// On `--flavor current-thread` the real binary serves as usual and says so in its
/// statistics; an act that cannot run there (Act II's `block_in_place`) is refused at
/// start-up with exit code 2 and its reason, before any runtime exists, never with a panic.
fn real_binary_on_a_current_thread_runtime<A: Act>(entry: &ActEntry, act: &A) {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut args = server_args(&file);
    args.extend(os(&["--flavor", "current-thread"]));
    if act
        .check_runtime(joke_server::RuntimeFlavor::CurrentThread)
        .is_err()
    {
        let exited = run_binary_to_exit(entry, &args);
        assert_refused(
            &exited,
            &[
                "cannot run on --flavor current-thread".into(),
                "block_in_place panics on a current-thread runtime".into(),
            ],
        );
        assert!(!exited.stderr.contains("panicked"), "{}", exited.stderr);
        return;
    }
    let server = start_binary(entry, &args);
    let received = client_runtime().block_on(client::fetch_joke(server.addr()));
    let exited = server.terminate();
    assert_whole_jokes(&[received], &file.served_jokes());
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
    let stats = exited.statistics().expect("the statistics line");
    assert_eq!(stats.runtime_flavor, "current-thread", "{stats:?}");
    assert_eq!(stats.workers, 1, "{stats:?}");
}

/// The victims' view, a lower bound only: Act I on a current-thread runtime with a 20 ms
/// disk, serving a few clients at once, blocks the one thread for 20 ms per joke, so the
/// heartbeat (due every millisecond on that thread) must once have been at least about 20 ms
/// late, and connection tasks woken meanwhile waited for it too.
#[test]
fn act1_on_a_current_thread_runtime_makes_the_heartbeat_late() {
    let _alone = alone();
    let file = JokesFile::short_jokes();
    let mut args = server_args(&file);
    args.extend(os(&["--flavor", "current-thread", "--io-delay", "20ms"]));
    let server = start_binary(acts::entry("act1-naive"), &args);
    let addr = server.addr();
    let received = client_runtime().block_on(client::fetch_concurrently(addr, 8, 4));
    let exited = server.terminate();
    assert_whole_jokes(&received, &file.served_jokes());
    let stats = exited.statistics().expect("the statistics line");
    assert!(stats.heartbeat_ticks > 0, "{stats:?}");
    assert!(stats.heartbeat_max_us >= 18_000, "{stats:?}");
    assert!(stats.slow_polls >= 4, "{stats:?}");
}

/// A start-up that must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadStartUp {
    MissingFile,
    DirectoryWithoutJokes,
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
fn bad_start_up_exits_2(entry: &ActEntry, case: BadStartUp) {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut args: Vec<OsString> = os(&["--addr", "127.0.0.1:0"]);
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
        // A directory is served (`--jokes DIR`), but not one without a jokes file in it.
        BadStartUp::DirectoryWithoutJokes => {
            std::fs::write(file.path(), "A README, not jokes.\n").expect("writing");
            args.extend(os(&["--jokes"]));
            args.push(file.folder().into());
            vec![
                file.folder().display().to_string(),
                "no jokes file could be served from this directory".into(),
                "not taken for a jokes file".into(),
            ]
        }
        BadStartUp::EmptyFile => {
            let empty = JokesFile::with_bytes("");
            args.extend(os(&["--jokes"]));
            args.push(empty.path().into());
            let needles = vec![empty.path().display().to_string(), "no jokes".into()];
            let exited = run_binary_to_exit(entry, &args);
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
            let exited = run_binary_to_exit(entry, &args);
            return assert_refused(&exited, &needles);
        }
        BadStartUp::BadAddr => {
            args = os(&["--addr", "not-an-address", "--jokes"]);
            args.push(file.path().into());
            vec![
                "--addr".into(),
                "not-an-address".into(),
                "expected an address such as 127.0.0.1:12345".into(),
            ]
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
            vec!["--workers".into(), "at least 1".into()]
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
            let exited = run_binary_to_exit(entry, &args);
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
            let exited = run_binary_to_exit(entry, &args);
            return assert_refused(&exited, &needles);
        }
    };
    let exited = run_binary_to_exit(entry, &args);
    assert_refused(&exited, &needles);
}

fn assert_refused(exited: &Exited, needles: &[String]) {
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

acts::for_every_act! {
    tests(entry, act) {
        #[test]
        fn serves_exactly_one_joke_of_the_file() {
            super::serves_exactly_one_joke_of_the_file(act);
        }

        #[test]
        fn client_that_sends_first_gets_the_whole_joke() {
            super::client_that_sends_first_gets_the_whole_joke(act);
        }

        #[test]
        fn burst_of_2000_connections_all_get_whole_jokes() {
            super::burst_of_connections_all_get_whole_jokes(act);
        }

        #[test]
        fn clients_that_reset_do_not_disturb_the_others() {
            super::clients_that_reset_do_not_disturb_the_others(act);
        }

        #[test]
        fn io_delay_is_spent_where_the_act_does_its_io() {
            super::io_delay_is_spent_where_the_act_does_its_io(act, entry.file_io);
        }

        #[test]
        fn real_binary_on_a_current_thread_runtime() {
            super::real_binary_on_a_current_thread_runtime(entry, &act);
        }

        #[test]
        fn real_binary_serves_then_exits_cleanly_on_sigterm() {
            super::real_binary_serves_then_exits_cleanly_on_sigterm(entry);
        }

        #[test]
        fn bad_start_up_missing_file_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::MissingFile);
        }

        #[test]
        fn bad_start_up_directory_without_jokes_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::DirectoryWithoutJokes);
        }

        #[test]
        fn bad_start_up_empty_file_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::EmptyFile);
        }

        #[test]
        fn bad_start_up_invalid_utf8_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::InvalidUtf8);
        }

        #[test]
        fn bad_start_up_bad_addr_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::BadAddr);
        }

        #[test]
        fn bad_start_up_port_in_use_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::PortInUse);
        }

        #[test]
        fn bad_start_up_zero_workers_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::ZeroWorkers);
        }

        #[test]
        fn bad_start_up_unknown_flag_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::UnknownFlag);
        }

        #[test]
        fn bad_start_up_only_separators_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::OnlySeparators);
        }

        #[test]
        fn bad_start_up_line_too_long_exits_2() {
            super::bad_start_up_exits_2(entry, BadStartUp::LineTooLong);
        }
    }
}
