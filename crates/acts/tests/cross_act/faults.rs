//! The harness under faults, as a real process: SIGTERM with connections waiting in the accept
//! queue, and SIGTERM with a disk that never answers. These are harness properties, so one act
//! stands for all (the one whose blocking the fault is about).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use joke_testkit::JokesFile;
use joke_testkit::client::{client_runtime, raise_open_files_limit};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::common::{alone, os, server_args, start_binary, statistics};

/// How one client of a SIGTERM test fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// A whole joke of the file, then a clean end.
    Served,
    /// connect(2) was refused: the listener was gone (a client can retry elsewhere).
    Refused,
    /// Connected, then reset before or during the joke.
    Reset,
    /// Connected, then a clean end with no joke or part of one, or another error.
    Other,
}

/// Reads what the server sends on `socket` until the end, and says how it went.
async fn fate_of(mut socket: TcpStream, jokes: &[String]) -> Fate {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buffer = [0u8; 4096];
        loop {
            match socket.read(&mut buffer).await? {
                0 => return Ok::<_, io::Error>(()),
                n => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    match read {
        Ok(Ok(())) if jokes.iter().any(|joke| joke.as_bytes() == received) => Fate::Served,
        Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionReset => Fate::Reset,
        _ => Fate::Other,
    }
}

async fn connect_and_read(addr: SocketAddr, jokes: &[String]) -> Fate {
    match TcpStream::connect(addr).await {
        Ok(socket) => fate_of(socket, jokes).await,
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => Fate::Refused,
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => Fate::Reset,
        Err(_) => Fate::Other,
    }
}

/// Connections that completed their handshake before SIGTERM, and wait in the accept queue
/// behind `--max-connections 1` and a slow disk, are all served after it: the server stops
/// taking new connections, but empties the queue the kernel filled for it before closing.
#[test]
fn sigterm_serves_the_connections_already_queued() {
    const QUEUED: usize = 8;
    let _alone = alone();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let mut args = server_args(&file);
    args.extend(os(&["--max-connections", "1", "--io-delay", "100ms"]));
    let server = start_binary(acts::entry("act2-spawn-blocking"), &args);
    let addr = server.addr();
    let runtime = client_runtime();
    // Every connect() returns before the signal: the kernel completed each handshake, and all
    // but the one being served wait in the accept queue.
    let sockets: Vec<TcpStream> = runtime.block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..QUEUED {
            sockets.push(TcpStream::connect(addr).await.expect("connecting"));
        }
        sockets
    });
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let jokes = jokes.clone();
            runtime.spawn(async move { fate_of(socket, &jokes).await })
        })
        .collect();
    let exited = server.terminate();
    let fates: Vec<Fate> = runtime.block_on(async {
        let mut fates = Vec::new();
        for reader in readers {
            fates.push(reader.await.expect("a reader does not panic"));
        }
        fates
    });
    assert!(
        fates.iter().all(|fate| *fate == Fate::Served),
        "every queued connection gets a whole joke: {fates:?}; stderr:\n{}",
        exited.stderr
    );
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
    assert_eq!(statistics(&exited.stdout).served, QUEUED as u64);
}

/// A measurement, not a check (run it by name with `--ignored`): 5000 connections opened at
/// once, SIGTERM 150 ms in, and how each ended. Timing decides the split between served and
/// refused, so no count is asserted; the report of issue 12 quotes its output.
#[test]
#[ignore = "a measurement: prints the fates of a 5000-connection flood cut by SIGTERM"]
fn measure_a_flood_cut_by_sigterm() {
    const FLOOD: usize = 5_000;
    let _alone = alone();
    raise_open_files_limit(2 * FLOOD as u64 + 256);
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let server = start_binary(acts::entry("act2-spawn-blocking"), &server_args(&file));
    let addr = server.addr();
    let runtime = client_runtime();
    let started = Instant::now();
    let clients: Vec<_> = (0..FLOOD)
        .map(|_| {
            let jokes = jokes.clone();
            runtime.spawn(async move { connect_and_read(addr, &jokes).await })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150).saturating_sub(started.elapsed()));
    let exited = server.terminate();
    let fates: Vec<Fate> = runtime.block_on(async {
        let mut fates = Vec::new();
        for client in clients {
            fates.push(client.await.expect("a client does not panic"));
        }
        fates
    });
    let count = |fate| fates.iter().filter(|f| **f == fate).count();
    eprintln!(
        "flood of {FLOOD}, SIGTERM 150 ms in: served {}, refused {}, reset {}, other {}; \
         the server counted {} served",
        count(Fate::Served),
        count(Fate::Refused),
        count(Fate::Reset),
        count(Fate::Other),
        statistics(&exited.stdout).served
    );
}

/// The grace period of the stuck-disk tests, and the bound on their shutdown: the process
/// promises to end within the grace period and `joke_server::SHUTDOWN_MARGIN` (3 s); the
/// check allows 5 s, so only a shutdown that hangs fails it.
const GRACE: Duration = Duration::from_secs(1);
const SHUTDOWN_BOUND: Duration = Duration::from_secs(1 + 5);

/// Starts `act` with a disk that never answers (`--io-delay 1h`) and `options`, opens
/// `clients` connections (each waits for a joke that never comes), sends SIGTERM and checks
/// that the process ends within the bound, printing its statistics.
fn sigterm_with_a_stuck_disk(act: &str, options: &[&str], clients: usize) {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut args = server_args(&file);
    args.extend(os(&["--io-delay", "1h", "--grace-period", "1s"]));
    args.extend(os(options));
    let server = start_binary(acts::entry(act), &args);
    let addr = server.addr();
    let runtime = client_runtime();
    let sockets: Vec<TcpStream> = runtime.block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..clients {
            sockets.push(TcpStream::connect(addr).await.expect("connecting"));
        }
        // Long enough for the server to accept them and start the reads that never end.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sockets
    });
    let signalled = Instant::now();
    let exited = server.terminate();
    let took = signalled.elapsed();
    eprintln!("{act} {options:?}, {clients} clients on a stuck disk: ended {took:?} after SIGTERM");
    assert!(
        took < SHUTDOWN_BOUND,
        "SIGTERM took {took:?} to end the process (grace {GRACE:?}); stderr:\n{}",
        exited.stderr
    );
    let stats = exited
        .statistics()
        .unwrap_or_else(|error| panic!("{error}; stderr:\n{}", exited.stderr));
    assert_eq!(stats.served, 0, "no joke could be read");
    drop(sockets);
}

/// Act II's reads run on the blocking pool, which a runtime waits for when it is dropped:
/// with a read that takes an hour, the process used to outlive SIGTERM by that hour.
#[test]
fn sigterm_ends_act2_with_a_stuck_disk() {
    sigterm_with_a_stuck_disk("act2-spawn-blocking", &[], 1);
}

/// Act I reads on its worker threads: with as many clients as workers, every worker sleeps in
/// a read, and nothing inside the runtime runs (not its signal handling, not its timers).
#[test]
fn sigterm_ends_act1_with_every_worker_blocked() {
    sigterm_with_a_stuck_disk("act1-naive", &["--workers", "2"], 2);
}

/// SIGUSR1 logs the counters of the running server, in the exit line's fields.
#[test]
fn sigusr1_logs_the_live_statistics() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut server = start_binary(acts::entry("finale-cached"), &server_args(&file));
    let addr = server.addr();
    client_runtime().block_on(async {
        for _ in 0..3 {
            joke_testkit::client::fetch_joke(addr)
                .await
                .expect("a joke");
        }
    });
    server.signal(rustix::process::Signal::USR1);
    let line = server.wait_for_stderr("statistics now");
    let live = joke_server::wire::parse_live_stats_line(&line)
        .expect("a live statistics line")
        .expect("the exit line's fields");
    assert_eq!(live.served, 3, "{line}");
    let exited = server.terminate();
    assert_eq!(exited.code, Some(0), "SIGUSR1 does not stop the server");
    assert_eq!(statistics(&exited.stdout).served, 3);
}

/// `--stats-every` logs them periodically.
#[test]
fn stats_every_logs_the_live_statistics() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut args = server_args(&file);
    args.extend(os(&["--stats-every", "100ms"]));
    let mut server = start_binary(acts::entry("finale-cached"), &args);
    let line = server.wait_for_stderr("statistics now");
    assert!(joke_server::wire::parse_live_stats_line(&line).is_some_and(|s| s.is_ok()));
    assert_eq!(server.terminate().code, Some(0));
}

/// The same on a current-thread runtime: its one thread sleeps in Act I's read.
#[test]
fn sigterm_ends_act1_on_a_current_thread_runtime_with_a_stuck_disk() {
    sigterm_with_a_stuck_disk("act1-naive", &["--flavor", "current-thread"], 1);
}
