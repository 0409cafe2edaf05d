//! Every act as its real process: shutdown in the middle of a burst, running out of file
//! descriptors, and SIGHUP.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use acts::ActEntry;
use joke_testkit::client::{self, client_runtime, raise_open_files_limit};
use joke_testkit::{JokesFile, RunningBinary};
use tokio::io::AsyncReadExt;

use crate::common::{
    RUN_ACT, alone, as_os_strs, binary_args, server_args, start_binary, statistics,
};

/// Connections in the shutdown burst.
const SHUTDOWN_BURST: usize = 1_000;
/// Jokes delivered before SIGTERM is sent, so that the signal lands mid-burst.
const JOKES_BEFORE_SIGTERM: usize = 100;
/// The open-files limit of the server in the EMFILE test: room for its runtime and a few
/// dozen connections.
const TIGHT_FILE_LIMIT: u32 = 64;
/// Idle connections opened against that server: more than its limit allows at once.
const IDLE_OVER_THE_LIMIT: usize = 120;
/// How long the idle crowd stays once `accept` has failed. The back-off doubles from 5 ms, so
/// this sees about seven retries; a server that retried at once would fail thousands of times.
const HOLD_THE_CROWD: Duration = Duration::from_millis(700);

/// What one client saw: the bytes that arrived, and the error that ended the reading, if any.
#[derive(Debug)]
struct Arrived {
    bytes: Vec<u8>,
    error: Option<io::Error>,
}

/// Connects and reads until end-of-stream or an error, keeping whatever arrived before it.
async fn read_what_arrives(addr: SocketAddr) -> Arrived {
    let mut socket = match client::connect(addr).await {
        Ok(socket) => socket,
        Err(error) => {
            return Arrived {
                bytes: Vec::new(),
                error: Some(error),
            };
        }
    };
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = client::within(client::CLIENT_TIMEOUT, "reading", async {
        loop {
            match socket.read(&mut buffer).await? {
                0 => return Ok(()),
                n => bytes.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    Arrived {
        bytes,
        error: read.err(),
    }
}

/// Every joke of `file` in served form, as the bytes a client must receive.
fn served_joke_bytes(file: &JokesFile) -> HashSet<Vec<u8>> {
    file.served_jokes()
        .into_iter()
        .map(String::into_bytes)
        .collect()
}

fn arg(text: &str) -> OsString {
    text.into()
}

/// SIGTERM in the middle of a burst: the server stops accepting, every connection it accepted
/// still receives its whole joke, and it exits 0. A client receives a whole joke or nothing,
/// never part of one; and the server's count of jokes served is exactly the number of whole
/// jokes the clients received.
fn shutdown_under_load_never_cuts_a_joke(entry: &ActEntry) {
    let _alone = alone();
    raise_open_files_limit(2 * SHUTDOWN_BURST as u64 + 256);
    let file = JokesFile::fixture();
    let jokes = served_joke_bytes(&file);
    // A slow disk keeps jokes in flight when the signal comes (Act I most of all, which reads
    // on its worker threads and so also accepts slowly).
    let mut args = server_args(&file);
    args.extend([arg("--io-delay"), arg("2ms")]);
    let server = start_binary(entry, &args);
    let addr = server.addr();

    let runtime = client_runtime();
    let delivered = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let clients: Vec<_> = (0..SHUTDOWN_BURST)
        .map(|_| {
            let (delivered, enough) = (Arc::clone(&delivered), Arc::clone(&enough));
            runtime.spawn(async move {
                let arrived = read_what_arrives(addr).await;
                if !arrived.bytes.is_empty()
                    && delivered.fetch_add(1, Ordering::SeqCst) + 1 == JOKES_BEFORE_SIGTERM
                {
                    enough.notify_one();
                }
                arrived
            })
        })
        .collect();
    runtime.block_on(async {
        client::within(client::CLIENT_TIMEOUT, "the first jokes", async {
            enough.notified().await;
            Ok(())
        })
        .await
        .expect("the first jokes of the burst arrive");
    });
    let exited = server.terminate();
    let arrived: Vec<Arrived> = runtime.block_on(async {
        let mut all = Vec::new();
        for client in clients {
            all.push(client.await.expect("a client task does not panic"));
        }
        all
    });

    // ANCHOR: whole_or_nothing
    let (mut whole, mut nothing, mut cut) = (0u64, 0u64, Vec::new());
    for (n, arrived) in arrived.iter().enumerate() {
        if arrived.bytes.is_empty() {
            nothing += 1;
        } else if jokes.contains(&arrived.bytes) && arrived.error.is_none() {
            whole += 1;
        } else {
            cut.push(format!(
                "client {n}: {} bytes, then {:?}",
                arrived.bytes.len(),
                arrived.error
            ));
        }
    }
    eprintln!(
        "SIGTERM mid-burst: {whole} whole jokes, {nothing} clients with none, {} cut",
        cut.len()
    );
    assert!(
        cut.is_empty(),
        "jokes cut by the shutdown:\n{}",
        cut.join("\n")
    );
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
    let stats = statistics(&exited.stdout);
    assert_eq!(
        stats.served, whole,
        "the server's count differs from the clients'"
    );
    assert!(whole >= JOKES_BEFORE_SIGTERM as u64);
    // ANCHOR_END: whole_or_nothing
}

/// With a tight open-files limit, a crowd of idle clients makes `accept` fail with EMFILE. The
/// server backs off instead of spinning or exiting, says so once, and serves again as soon as
/// descriptors come back.
fn running_out_of_file_descriptors_backs_off_and_recovers(entry: &ActEntry) {
    let _alone = alone();
    let file = JokesFile::fixture();
    let jokes = served_joke_bytes(&file);
    // ANCHOR: tight_limit
    // bash lowers both the soft and the hard limit, so the server cannot raise it back, then
    // becomes the server (exec keeps the process id the test signals).
    let script = format!("ulimit -n {TIGHT_FILE_LIMIT} && exec \"$0\" \"$@\"");
    let mut args = vec![arg("-c"), arg(&script), arg(RUN_ACT)];
    args.extend(binary_args(entry, &server_args(&file)));
    let mut server = RunningBinary::start("bash", &as_os_strs(&args));
    // ANCHOR_END: tight_limit
    let addr = server.addr();

    let runtime = client_runtime();
    let idle = runtime.block_on(async {
        let mut idle = Vec::new();
        for _ in 0..IDLE_OVER_THE_LIMIT {
            idle.push(
                client::connect(addr)
                    .await
                    .expect("connecting an idle client"),
            );
        }
        idle
    });
    server.wait_for_stderr("Too many open files");
    // Keep the crowd a little longer, so that the server retries (and fails) several times:
    // the back-off must space those retries out and report the episode once.
    std::thread::sleep(HOLD_THE_CROWD);

    // Give the descriptors back, and time how long until a joke is served again.
    drop(idle);
    let freed = Instant::now();
    let recovered = runtime.block_on(async {
        for _ in 0..100 {
            let arrived = read_what_arrives(addr).await;
            if jokes.contains(&arrived.bytes) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    let recovery = freed.elapsed();
    eprintln!("EMFILE: serving again {recovery:?} after the idle clients left");
    assert!(
        recovered,
        "no joke was served after the descriptors came back"
    );

    let exited = server.terminate();
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
    let stats = statistics(&exited.stdout);
    assert!(stats.accept_errors > 0, "{stats:?}");
    let warnings = exited
        .stderr
        .lines()
        .filter(|line| line.contains("backing off"))
        .count();
    assert!(
        stats.accept_errors >= 3 && stats.accept_errors < 100,
        "a backing-off accept loop fails a handful of times in {HOLD_THE_CROWD:?}, not none \
         and not thousands: {stats:?}"
    );
    assert_eq!(
        warnings, 1,
        "one episode, one warning (not one per failed accept); stderr:\n{}",
        exited.stderr
    );
    assert!(exited.stderr.contains("accepting connections again"));
}

/// SIGHUP rebuilds the index even when the file looks unchanged: here it is rewritten in place
/// with text of the same length and its modification time put back, which the file watcher
/// cannot see. After the signal, only the new text is served.
fn sighup_reloads_the_jokes_file(entry: &ActEntry) {
    let _alone = alone();
    let old = "old joke one\n---\nold joke two\n";
    let new = "new joke uno\n---\nnew joke dos\n";
    assert_eq!(old.len(), new.len());
    let file = JokesFile::with_bytes(old);
    // Dated a minute back, so the file has long settled (the server indexes a changed file
    // only once it has been left alone for a moment).
    let modified = SystemTime::now() - Duration::from_secs(60);
    rewrite_keeping_modification_time(file.path(), old, modified);
    let args = server_args(&file);
    let mut server = start_binary(entry, &args);
    let addr = server.addr();

    rewrite_keeping_modification_time(file.path(), new, modified);
    server.signal(rustix::process::Signal::HUP);
    server.wait_for_stderr("reloaded");

    let runtime = client_runtime();
    let served: Vec<Vec<u8>> = runtime.block_on(async {
        let mut served = Vec::new();
        for _ in 0..20 {
            served.push(client::fetch_joke(addr).await.expect("a joke"));
        }
        served
    });
    for joke in &served {
        let text = String::from_utf8_lossy(joke);
        assert!(text.starts_with("new joke"), "after SIGHUP: {text:?}");
    }
    let exited = server.terminate();
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
}

/// A second Ctrl-C, while the first one's shutdown waits for a read that takes half a minute,
/// stops the process at once: it says so, prints its statistics and exits with 1. (Without it
/// the process would wait for the grace period, and its watchdog would say something else.)
#[test]
fn a_second_ctrl_c_stops_at_once() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut args = server_args(&file);
    args.extend([
        arg("--io-delay"),
        arg("30s"),
        arg("--grace-period"),
        arg("20s"),
    ]);
    let mut server = start_binary(acts::entry("act1-naive"), &args);
    // A client whose joke waits behind the 30 s read, so the shutdown has something to wait for.
    let _client = std::net::TcpStream::connect(server.addr()).expect("connecting");
    std::thread::sleep(Duration::from_millis(300));
    server.signal(rustix::process::Signal::INT);
    // The shutdown line says what it waits for, and how to stop waiting.
    server.wait_for_stderr(
        "shutting down: no new connections; 1 connection in flight, 20s to finish",
    );
    server.signal(rustix::process::Signal::INT);
    let exited = server.wait_for_exit();
    assert!(
        exited
            .stderr
            .contains("SIGINT received again: stopping now"),
        "stderr:\n{}",
        exited.stderr
    );
    assert_eq!(exited.code, Some(1), "stderr:\n{}", exited.stderr);
    assert!(
        exited.stdout.contains("\"served\":0"),
        "the statistics on stdout: {}",
        exited.stdout
    );
}

/// Which of a server's output pipes its reader closes once the server listens.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Closed {
    Stderr,
    Stdout,
    Both,
}

/// A server whose reader went away still stops on SIGTERM, serves until then, and exits 0. Its
/// log lines then fail to write (EPIPE); so does its statistics line when stdout is the pipe
/// that was closed. Neither failure may panic: a panic on the signal thread would swallow the
/// SIGTERM and leave the process running, one on the main thread end it with 101.
///
/// The server runs under `std::process::Command`, not the supervisor (which always reads
/// both pipes to their end).
#[test]
fn a_server_whose_output_nobody_reads_still_stops_on_sigterm() {
    use std::io::Read;

    let _alone = alone();
    let file = JokesFile::fixture();
    for closed in [Closed::Stderr, Closed::Stdout, Closed::Both] {
        let (mut child, mut stderr, stdout, addr) = start_with_own_pipes(&file, &[]);
        let mut stdout = Some(stdout);
        // The reader goes away. What it keeps is read to its end on a thread of its own, so
        // the server never waits on a full pipe (that would be a different test).
        let kept_stderr = match closed {
            Closed::Stderr | Closed::Both => {
                drop(stderr);
                None
            }
            Closed::Stdout => Some(std::thread::spawn(move || {
                let mut rest = String::new();
                let _ = stderr.read_to_string(&mut rest);
                rest
            })),
        };
        if closed != Closed::Stderr {
            drop(stdout.take());
        }

        // It still serves: one whole joke, after the close.
        let mut joke = Vec::new();
        std::net::TcpStream::connect(addr)
            .and_then(|mut socket| socket.read_to_end(&mut joke))
            .expect("reading a joke after the close");
        assert!(!joke.is_empty(), "{closed:?}: an empty answer");

        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .expect("sending SIGTERM");
        let status = exited_within(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
            panic!("{closed:?} closed: the server did not exit within 10 s of SIGTERM")
        });
        let log = kept_stderr.map(|reader| reader.join().expect("the stderr reader"));
        assert_eq!(
            status.code(),
            Some(0),
            "{closed:?} closed: {status}; stderr: {log:?}"
        );
        if let Some(mut stdout) = stdout {
            let mut printed = String::new();
            stdout.read_to_string(&mut printed).expect("reading stdout");
            assert_eq!(statistics(&printed).served, 1, "{closed:?}: {printed}");
        }
        if let Some(log) = log {
            assert!(
                log.contains("cannot print the statistics line on stdout"),
                "{closed:?}: the log does not say the statistics were lost:\n{log}"
            );
        }
    }
}

/// A start-up error (here: the port is taken) prints its message after the warnings logged
/// before it (they wait in the log's queue; the message does not), and with stderr closed the
/// server still exits with the error's status, 2, not with a panic's 101.
#[test]
fn a_start_up_error_comes_after_the_warnings_before_it_and_survives_a_closed_stderr() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let file = JokesFile::fixture();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to take");
    let addr = taken.local_addr().expect("its address").to_string();
    for stderr_closed in [false, true] {
        let mut child = Command::new(RUN_ACT)
            .arg("finale-cached")
            // Too long a delay is only a warning: it is logged, then the bind fails.
            .args(["--addr", &addr, "--io-delay", "90s", "--jokes"])
            .arg(file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting run-act");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let mut log = String::new();
        if stderr_closed {
            drop(stderr);
        } else {
            stderr.read_to_string(&mut log).expect("reading stderr");
        }
        let status = exited_within(&mut child, Duration::from_secs(10))
            .expect("a start-up error ends the server within 10 s");
        assert_eq!(
            status.code(),
            Some(2),
            "stderr closed {stderr_closed}: {status}; {log}"
        );
        if !stderr_closed {
            let warning = log
                .find("every joke will wait that long")
                .unwrap_or_else(|| panic!("no warning: {log}"));
            let error = log
                .find("finale-cached: error:")
                .unwrap_or_else(|| panic!("no error: {log}"));
            assert!(warning < error, "the error came before the warning:\n{log}");
        }
    }
}

/// Starts finale-cached under `std::process::Command`, not the supervisor (which always reads
/// both pipes to their end), with `env` added, and reads its stderr up to the ready line. The
/// caller holds both pipes and decides what becomes of them.
fn start_with_own_pipes(
    file: &JokesFile,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
    std::process::ChildStdout,
    SocketAddr,
) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut child = Command::new(RUN_ACT)
        .arg("finale-cached")
        .args(server_args(file))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting run-act");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr is piped"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let addr = loop {
        line.clear();
        let read = stderr
            .read_line(&mut line)
            .expect("reading the server's stderr");
        assert_ne!(read, 0, "the server ended before it listened");
        if let Some(addr) = joke_server::wire::parse_ready_line(&line) {
            break addr;
        }
    };
    (child, stderr, stdout, addr)
}

/// The child's exit status, if it exits within `limit`; past that it is killed.
fn exited_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for the server") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connections in the burst that fills a stalled log reader's pipe: one `debug` line each (about
/// 100 bytes), so more than a 64 KiB pipe and the server's log queue hold together.
const LOGGED_BURST: usize = 6_000;

/// A log reader that is alive but has stopped reading (a stalled journald, a `| less` left
/// open) fills the pipe, and a write to a full pipe blocks. Log lines are written from the
/// runtime's workers, so without the log's own queue and writer thread the first worker to log
/// into the full pipe would stop, then the next: serving would stop, and SIGTERM, whose handler
/// logs, would never end the process.
///
/// Each joke served is logged (`RUST_LOG=info,joke_server=debug`); the pipe is held open and not
/// read while a burst runs, then SIGTERM is sent. Either the reader never reads again (the
/// server must still exit 0 within a bound, leaving the lines it cannot write), or it reads
/// again before the signal: then the lines still queued arrive, the shutdown summary after
/// them, and the log says how many lines it dropped while nobody read.
#[test]
fn a_log_reader_that_stops_reading_never_stops_the_serving() {
    use std::io::{BufRead, Read};

    let _alone = alone();
    let file = JokesFile::fixture();
    for reads_again in [false, true] {
        let (mut child, mut stderr, mut stdout, addr) =
            start_with_own_pipes(&file, &[("RUST_LOG", "info,joke_server=debug")]);

        // From here on `stderr` is held open and not read. Every client gets five seconds for
        // its joke, and the first that does not get it ends the burst.
        let runtime = client_runtime();
        let burst = runtime.block_on(async {
            let limit = Arc::new(tokio::sync::Semaphore::new(50));
            let mut clients = tokio::task::JoinSet::new();
            for _ in 0..LOGGED_BURST {
                let permit = Arc::clone(&limit)
                    .acquire_owned()
                    .await
                    .expect("never closed");
                clients.spawn(async move {
                    let _permit = permit;
                    client::within(Duration::from_secs(5), "a joke", client::fetch_joke(addr)).await
                });
                while let Some(done) = clients.try_join_next() {
                    done.expect("a client task")?;
                }
            }
            while let Some(done) = clients.join_next().await {
                done.expect("a client task")?;
            }
            io::Result::Ok(())
        });
        let burst_failed = burst.err();
        let pid = rustix::process::Pid::from_child(&child);

        // Held until the server has exited, or read again from now on.
        let (held, reader) = if reads_again {
            let (lines, arriving) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut log = String::new();
                let mut line = String::new();
                while stderr.read_line(&mut line).is_ok_and(|read| read > 0) {
                    let _ = lines.send(line.clone());
                    log.push_str(&line);
                    line.clear();
                }
                log
            });
            // The server logs the live statistics on SIGUSR1. Once such a line arrives, the
            // queue has drained: every line before it is written, and the shutdown's lines
            // will find room. (The first SIGUSR1's line may itself find the queue full.)
            let drained = Instant::now() + Duration::from_secs(10);
            let mut reported_while_running = false;
            'drain: while Instant::now() < drained {
                rustix::process::kill_process(pid, rustix::process::Signal::USR1)
                    .expect("sending SIGUSR1");
                let asked = Instant::now();
                while let Some(left) = Duration::from_millis(300).checked_sub(asked.elapsed()) {
                    match arriving.recv_timeout(left) {
                        // A live line after the report of the drops: the queue has drained.
                        // (A report that found the queue full is dropped and counted itself,
                        // so the next SIGUSR1 reports again.)
                        Ok(line)
                            if reported_while_running
                                && joke_server::wire::parse_live_stats_line(&line).is_some() =>
                        {
                            break 'drain;
                        }
                        Ok(line) => reported_while_running |= line.contains(DROPPED_LINES),
                        Err(_) => break,
                    }
                }
            }
            (None, Some((reader, reported_while_running)))
        } else {
            (Some(stderr), None)
        };
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("sending SIGTERM");
        let status = exited_within(&mut child, Duration::from_secs(10));
        drop(held);
        let mut printed = String::new();
        let _ = stdout.read_to_string(&mut printed);
        let (log, reported_while_running) = match reader {
            Some((reader, reported)) => (Some(reader.join().expect("the stderr reader")), reported),
            None => (None, true),
        };
        // The live statistics said what the log lost, before any shutdown did.
        assert!(
            reported_while_running,
            "no SIGUSR1 reported the dropped log lines before the live statistics"
        );
        assert!(
            burst_failed.is_none(),
            "reads again {reads_again}: the server stopped serving while its log was not read: \
             {burst_failed:?}"
        );
        let status = status.unwrap_or_else(|| {
            panic!("reads again {reads_again}: the server did not exit within 10 s of SIGTERM")
        });
        assert_eq!(
            status.code(),
            Some(0),
            "reads again {reads_again}: {status}"
        );
        assert_eq!(
            statistics(&printed).served,
            LOGGED_BURST as u64,
            "reads again {reads_again}: {printed}"
        );
        if let Some(log) = log {
            assert!(
                log.contains(&format!("finale-cached: served {LOGGED_BURST} jokes")),
                "the shutdown summary is not in the log read after the signal:\n{}",
                log_tail(&log)
            );
            assert!(
                log.contains(DROPPED_LINES),
                "the log does not say that it dropped lines:\n{}",
                log_tail(&log)
            );
        }
    }
}

/// What the log says when its queue dropped lines (`N log lines dropped: …`, or `1 log line`).
const DROPPED_LINES: &str = " dropped: stderr was not read as fast as they came";

/// The last lines of a long log, for a failure message.
fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Writes `text` over the start of the file in place (same inode), then sets its modification
/// time to `modified`.
fn rewrite_keeping_modification_time(path: &std::path::Path, text: &str, modified: SystemTime) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("opening the jokes file in place");
    file.write_all(text.as_bytes()).expect("rewriting in place");
    file.set_modified(modified)
        .expect("putting the modification time back");
}

acts::for_every_act! {
    tests(entry, act) {
        #[test]
        fn shutdown_under_load_never_cuts_a_joke() {
            super::shutdown_under_load_never_cuts_a_joke(entry);
        }

        #[test]
        fn running_out_of_file_descriptors_backs_off_and_recovers() {
            super::running_out_of_file_descriptors_backs_off_and_recovers(entry);
        }

        #[test]
        fn sighup_reloads_the_jokes_file() {
            super::sighup_reloads_the_jokes_file(entry);
        }
    }
}
