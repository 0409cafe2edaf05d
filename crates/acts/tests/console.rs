//! `--console`: an act built with tokio-console's instrumentation serves it, on the address
//! its start-up line names; any other build refuses the option and says how to build one.
//!
//! Which half runs is decided when this file is compiled: the served half needs the `console`
//! feature and `--cfg tokio_unstable` (.ci/run's "tokio-console" section:
//! `RUSTFLAGS='--cfg tokio_unstable' cargo test --target-dir target/io-uring -p acts --features
//! console --test console`), the refusal half runs in every other build.

use std::ffi::OsStr;

use joke_testkit::binary::run_to_exit;

const RUN_ACT: &str = env!("CARGO_BIN_EXE_run-act");

fn args<'a>(args: &'a [&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(OsStr::new).collect()
}

/// Asking for a console on a port that is taken is a start-up error, not a server that runs
/// without the console (or, in the other builds, the refusal comes first): exit 2 either way.
#[test]
fn a_console_that_cannot_be_served_is_refused_at_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let exited = run_to_exit(
        RUN_ACT,
        &args(&["act1-naive", "--addr", "127.0.0.1:0", "--console", &taken]),
    );
    assert_eq!(exited.code, Some(2), "{exited:?}");
    assert_eq!(
        exited.stderr.lines().count(),
        1,
        "one line: {}",
        exited.stderr
    );
    assert!(exited.stderr.contains("--console"), "{}", exited.stderr);
    if cfg!(all(feature = "console", tokio_unstable)) {
        assert!(
            exited
                .stderr
                .contains(&format!("--console {taken}: cannot listen there")),
            "{}",
            exited.stderr
        );
    }
}

#[cfg(not(all(feature = "console", tokio_unstable)))]
mod refused {
    use super::*;

    /// `--console` without its build: exit 2, one line naming the command that builds it.
    #[test]
    fn without_the_console_build_the_option_is_refused_with_the_command_to_build_it() {
        for act in ["act1-naive", "finale-cached"] {
            let exited = run_to_exit(RUN_ACT, &args(&[act, "--addr", "127.0.0.1:0", "--console"]));
            assert_eq!(exited.code, Some(2), "{exited:?}");
            assert_eq!(
                exited.stderr.lines().count(),
                1,
                "one line: {}",
                exited.stderr
            );
            let command = joke_server::console::build_command(act);
            assert!(exited.stderr.contains(&command), "{}", exited.stderr);
            assert!(
                exited.stderr.contains("RUSTFLAGS=\"--cfg tokio_unstable\""),
                "{}",
                exited.stderr
            );
            assert!(exited.stdout.is_empty(), "{exited:?}");
        }
    }
}

#[cfg(all(feature = "console", tokio_unstable))]
mod served {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use joke_testkit::binary::RunningBinary;

    use super::*;

    /// The client preface of HTTP/2 (RFC 9113, section 3.4), then an empty SETTINGS frame.
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

    /// The console's server is tonic's gRPC, over HTTP/2: a server that answers the client
    /// preface with its own SETTINGS frame (type 4) is one, not just a socket that accepts.
    fn answers_http2(addr: SocketAddr) {
        let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("connecting to the console at {addr}: {error}"));
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket.write_all(PREFACE).unwrap();
        let mut header = [0u8; 9];
        socket
            .read_exact(&mut header)
            .unwrap_or_else(|error| panic!("reading the console's first frame: {error}"));
        assert_eq!(header[3], 4, "a SETTINGS frame first: {header:?}");
    }

    /// The start-up line that names the console's address, and that address. It is logged
    /// before `listening on`, which the start waited for.
    fn console_line(server: &RunningBinary) -> (String, SocketAddr) {
        let log = server.stderr_so_far();
        let line = log
            .lines()
            .find(|line| line.contains("tokio-console: serving"))
            .unwrap_or_else(|| panic!("no console line in:\n{log}"));
        let addr: SocketAddr = line
            .split("tasks on ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        (line.to_string(), addr)
    }

    /// A client of the console's gRPC service, watching its updates as tokio-console does.
    /// The first update is the state before anything else; the caller reads it.
    async fn watch_updates(addr: SocketAddr) -> tonic::Streaming<console_api::instrument::Update> {
        use console_api::instrument::InstrumentRequest;
        use console_api::instrument::instrument_client::InstrumentClient;

        let mut console = InstrumentClient::connect(format!("http://{addr}"))
            .await
            .unwrap_or_else(|error| panic!("connecting to the console at {addr}: {error}"));
        console
            .watch_updates(InstrumentRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    #[test]
    fn the_console_is_served_on_the_address_the_start_up_line_names() {
        for act in ["act1-naive", "act2-spawn-blocking"] {
            let server = RunningBinary::start(
                RUN_ACT,
                &args(&[act, "--addr", "127.0.0.1:0", "--console", "127.0.0.1:0"]),
            );
            let (line, addr) = console_line(&server);
            assert!(addr.ip().is_loopback() && addr.port() != 0, "{line}");
            assert!(
                line.contains(&format!("tokio-console http://{addr}")),
                "{line}"
            );
            answers_http2(addr);
            // The server still serves jokes, and its log is the harness's.
            let client = joke_testkit::client::client_runtime();
            let joke = client
                .block_on(joke_testkit::client::fetch_joke(server.addr()))
                .unwrap();
            assert!(!joke.is_empty());
            let exited = server.terminate();
            assert_eq!(exited.code, Some(0), "{exited:?}");
            assert_eq!(exited.statistics().unwrap().served, 1, "{exited:?}");
        }
    }

    /// Act I blocks its two workers for 2 ms in every connection; the console must still be
    /// told of every connection task. With console-subscriber's defaults its aggregator took
    /// in at most 128 events each time it woke (about once a second, Tokio's cooperative
    /// budget being spent by its receives), fewer than this load makes, and new tasks reached
    /// the console later and later: 23 of 400 connections in 14 s in our probe.
    #[test]
    fn every_connection_task_reaches_the_console_while_act_one_blocks_its_workers() {
        use std::collections::HashSet;
        use std::sync::{Arc, Mutex};

        const CONNECTIONS: usize = 300;
        let server = RunningBinary::start(
            RUN_ACT,
            &args(&[
                "act1-naive",
                "--addr",
                "127.0.0.1:0",
                "--console",
                "127.0.0.1:0",
                "--io-delay",
                "2ms",
                "--workers",
                "2",
            ]),
        );
        let (_, addr) = console_line(&server);
        let client = joke_testkit::client::client_runtime();
        // Where the console says a connection's task was spawned: the one `connections.spawn`
        // of server.rs, found in the source so that the line number cannot go stale.
        let server_rs = include_str!("../../joke-server/src/server.rs");
        let spawn_line = server_rs
            .lines()
            .position(|line| line.contains("connections.spawn("))
            .expect("server.rs spawns connections with `connections.spawn(`")
            as u32
            + 1;
        // The IDs of the tasks the console was told of, spawned there, and those of its first
        // update (before any connection).
        let seen: Arc<Mutex<HashSet<u64>>> = Arc::default();
        let before = client.block_on(async {
            let mut updates = watch_updates(addr).await;
            let record = move |update: console_api::instrument::Update, seen: &mut HashSet<u64>| {
                for task in update.task_update.unwrap_or_default().new_tasks {
                    let at_spawn = task.location.is_some_and(|location| {
                        location.line == Some(spawn_line)
                            && location
                                .file
                                .is_some_and(|file| file.ends_with("server.rs"))
                    });
                    if let (true, Some(id)) = (at_spawn, task.id) {
                        seen.insert(id.id);
                    }
                }
            };
            let mut before = HashSet::new();
            record(updates.message().await.unwrap().unwrap(), &mut before);
            let reader = Arc::clone(&seen);
            // Read every update as it comes: a client that stops reading is dropped.
            tokio::spawn(async move {
                while let Ok(Some(update)) = updates.message().await {
                    record(update, &mut reader.lock().unwrap());
                }
            });
            before
        });
        client.block_on(async {
            for _ in 0..CONNECTIONS {
                joke_testkit::client::fetch_joke(server.addr())
                    .await
                    .unwrap();
            }
        });
        // The console publishes once a second: give it a few.
        let connection_tasks = || seen.lock().unwrap().difference(&before).count();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while connection_tasks() < CONNECTIONS && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let exited = server.terminate();
        assert_eq!(exited.statistics().unwrap().served, CONNECTIONS as u64);
        assert_eq!(
            connection_tasks(),
            CONNECTIONS,
            "connection tasks the console was told of, of {CONNECTIONS} served"
        );
    }

    /// Act II with no delay serves as fast as the client asks, and every connection is a
    /// handful of events for the console (a task, a blocking task, their polls and wakers):
    /// more than the console's aggregator can take in on two shared cores. The console may
    /// then drop events, but it must go on sending updates. When the aggregator ran outside
    /// Tokio's cooperative budget it kept emptying a channel that refilled as fast, and the
    /// thread it shares with the console's gRPC server sent nothing more while the load ran.
    #[test]
    fn the_console_goes_on_sending_updates_while_act_two_serves_flat_out() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

        const LOAD: Duration = Duration::from_secs(6);
        const CLIENTS: usize = 32;
        let server = RunningBinary::start(
            RUN_ACT,
            &args(&[
                "act2-spawn-blocking",
                "--addr",
                "127.0.0.1:0",
                "--console",
                "127.0.0.1:0",
                "--workers",
                "2",
            ]),
        );
        let (_, addr) = console_line(&server);
        let client = joke_testkit::client::client_runtime();
        // Updates counted only while `counting` is set: the middle of the load, after its
        // first second (the console may still be sending what came before) to its end.
        let counting = Arc::new(AtomicBool::new(false));
        let updates_seen = Arc::new(AtomicUsize::new(0));
        client.block_on(async {
            let mut updates = watch_updates(addr).await;
            updates.message().await.unwrap().unwrap();
            let (counting, updates_seen) = (Arc::clone(&counting), Arc::clone(&updates_seen));
            tokio::spawn(async move {
                while let Ok(Some(_)) = updates.message().await {
                    if counting.load(Ordering::SeqCst) {
                        updates_seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        });
        let joke_addr = server.addr();
        let served = client.block_on(async {
            let end = tokio::time::Instant::now() + LOAD;
            let mut clients = tokio::task::JoinSet::new();
            for _ in 0..CLIENTS {
                clients.spawn(async move {
                    let mut served = 0u64;
                    while tokio::time::Instant::now() < end {
                        joke_testkit::client::fetch_joke(joke_addr).await.unwrap();
                        served += 1;
                    }
                    served
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            counting.store(true, Ordering::SeqCst);
            tokio::time::sleep_until(end).await;
            counting.store(false, Ordering::SeqCst);
            let mut served = 0;
            while let Some(result) = clients.join_next().await {
                served += result.unwrap();
            }
            served
        });
        let exited = server.terminate();
        assert_eq!(exited.statistics().unwrap().served, served, "{exited:?}");
        // The harness publishes ten times a second; five seconds of it are about fifty
        // updates. A frozen console sends none.
        let seen = updates_seen.load(Ordering::SeqCst);
        assert!(
            seen >= 5,
            "the console sent {seen} updates in the last 5 s of a load of {served} connections"
        );
    }
}
