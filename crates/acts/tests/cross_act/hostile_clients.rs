//! Clients that connect and never read, never close, or never let a big joke through. The
//! harness bounds each of them (write timeout, drain timeout, the connection limit), so none of
//! them may starve the polite clients. These are harness properties, so one act that reads the
//! file per joke (Act I) and the cached finale stand for all.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use joke_server::{Act, Config};
use joke_testkit::client::{
    client_runtime, connect, fetch_joke, open_all_then_read, raise_open_files_limit,
};
use joke_testkit::{JokesFile, ServerUnderTest};
use tokio::net::TcpStream;

use crate::common::alone;

const IDLE: usize = 1_000;
const BURST: usize = 1_000;

/// Opens `count` connections that will never read and never close (until dropped).
async fn idle_clients(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(connect(addr).await.expect("an idle client connects"));
    }
    idle
}

fn burst_is_served_beside_idle_clients<A: Act>(act: A) {
    let _alone = alone();
    // Each connection costs a descriptor here and one in the server, which runs in this process.
    raise_open_files_limit(2 * (IDLE + BURST) as u64 + 256);
    let file = JokesFile::fixture();
    let jokes: HashSet<String> = file.served_jokes().into_iter().collect();
    let server = ServerUnderTest::start(act, Config::new(file.path()));
    let addr = server.addr();

    let runtime = client_runtime();
    // ANCHOR: idle_beside_burst
    let idle = runtime.block_on(async {
        let idle = idle_clients(addr, IDLE).await;
        let burst = open_all_then_read(addr, BURST).await;
        let mut whole = 0;
        for (n, received) in burst.into_iter().enumerate() {
            let received = received.unwrap_or_else(|e| panic!("burst client {n}: {e}"));
            let text = String::from_utf8(received).expect("jokes are UTF-8");
            assert!(jokes.contains(&text), "burst client {n} got {text:?}");
            whole += 1;
        }
        assert_eq!(whole, BURST);
        idle
    });
    // ANCHOR_END: idle_beside_burst
    drop(idle);
    let stats = server.stop();
    assert!(
        stats.served >= BURST as u64,
        "the server counted {} jokes served",
        stats.served
    );
}

#[test]
fn act1_burst_is_served_beside_1000_idle_clients() {
    burst_is_served_beside_idle_clients(acts::make::act1_naive());
}

#[test]
fn finale_burst_is_served_beside_1000_idle_clients() {
    burst_is_served_beside_idle_clients(acts::make::finale_cached());
}

/// Reads what is left on `socket`: it must end in a reset, never in a clean end-of-file after
/// part of a joke (RFC 865 sends no length, so a clean end would pass for a whole joke).
fn assert_cut_with_a_reset(runtime: &tokio::runtime::Runtime, socket: &mut TcpStream) {
    match runtime.block_on(joke_testkit::client::read_to_end(socket)) {
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
        Ok(bytes) => panic!("a cut joke ended cleanly after {} bytes", bytes.len()),
    }
}

/// About 16 MB of one long joke: more than the server's send buffer and a small client
/// receive buffer hold together, so writing it to a client that reads slowly (or not at all)
/// must wait for that client.
fn big_joke() -> (JokesFile, usize) {
    let line = "This joke is long, and longer still, and it goes on and on and on.\n";
    let big = line.repeat(16 * 1024 * 1024 / line.len());
    let len = big.len();
    (JokesFile::with_bytes(big), len)
}

/// A client socket whose tiny receive buffer keeps the kernel from taking the joke off the
/// server's hands on this client's behalf (loopback buffers can otherwise grow to tens of MB).
fn small_window_socket() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("setting SO_RCVBUF");
    socket
}

/// A client that never reads a joke too big for the socket buffers holds its connection only
/// until the write timeout (no byte taken for that long); meanwhile and afterwards everyone
/// else is served.
#[test]
fn a_client_that_never_reads_is_cut_off_by_the_write_timeout() {
    let _alone = alone();
    let (file, whole) = big_joke();
    let mut config = Config::new(file.path());
    config.write_timeout = Duration::from_secs(2);
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let runtime = client_runtime();
    let mut never_reads = runtime.block_on(async {
        let never_reads = small_window_socket()
            .connect(addr)
            .await
            .expect("connecting");
        // A polite client is served the whole (big) joke while the rude one sits there.
        let polite = fetch_joke(addr).await.expect("the polite client is served");
        assert_eq!(polite.len(), whole);
        never_reads
    });
    // Stopping waits for connections in flight; the rude one ends when its write times out.
    let stats = server.stop();
    assert_eq!(stats.write_timeouts, 1, "{stats:?}");
    assert_eq!(stats.joke_timeouts, 0, "{stats:?}");
    assert_eq!(stats.served, 1, "{stats:?}");
    // The rude client's connection ends in a reset, not a clean end-of-file.
    assert_cut_with_a_reset(&runtime, &mut never_reads);
}

/// A slow client that keeps reading is never cut off, however long the whole joke takes: the
/// write timeout is about progress (no byte taken for that long), and the joke deadline does
/// not count the time spent waiting for the client. (Before, one deadline covered reading and
/// writing together, and this client was reset after it.)
#[test]
fn a_slow_client_that_keeps_reading_is_served_past_both_timeouts() {
    let _alone = alone();
    let (file, whole) = big_joke();
    let mut config = Config::new(file.path());
    config.write_timeout = Duration::from_millis(1500);
    config.joke_timeout = Duration::from_millis(1500);
    let server = ServerUnderTest::start(acts::make::act2_spawn_blocking(), config);
    let addr = server.addr();

    let started = std::time::Instant::now();
    let received = client_runtime().block_on(async {
        use tokio::io::AsyncReadExt;
        let mut slow = small_window_socket()
            .connect(addr)
            .await
            .expect("connecting");
        let mut received = 0;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // Reads a little, then dawdles: never long enough for the write timeout.
            let mut in_this_pause = 0;
            while in_this_pause < 512 * 1024 {
                match slow.read(&mut chunk).await.expect("the joke keeps coming") {
                    0 => return received,
                    n => {
                        received += n;
                        in_this_pause += n;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    let took = started.elapsed();
    let stats = server.stop();
    assert_eq!(received, whole, "{stats:?}");
    assert!(
        took > Duration::from_millis(3000),
        "the client was meant to take longer than both timeouts together; it took {took:?}"
    );
    assert_eq!(stats.served, 1, "{stats:?}");
    assert_eq!(
        (stats.write_timeouts, stats.joke_timeouts),
        (0, 0),
        "{stats:?}"
    );
}

/// A joke that is not ready in time (here a slow disk, with the read on the blocking pool) is
/// a joke timeout, not a write timeout: the client was never the problem. The client gets a
/// reset, never a clean end that would read as an empty joke.
#[test]
fn a_joke_not_ready_in_time_is_a_joke_timeout() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let mut config = Config::new(file.path());
    config.io_delay = Duration::from_millis(1500);
    config.joke_timeout = Duration::from_millis(300);
    let server = ServerUnderTest::start(acts::make::act2_spawn_blocking(), config);
    let addr = server.addr();

    let runtime = client_runtime();
    let mut waiting = runtime.block_on(async { connect(addr).await.expect("connecting") });
    assert_cut_with_a_reset(&runtime, &mut waiting);
    let stats = server.stop();
    assert_eq!(stats.joke_timeouts, 1, "{stats:?}");
    assert_eq!(stats.write_timeouts, 0, "{stats:?}");
    assert_eq!(stats.served, 0, "{stats:?}");
}

/// When the shutdown's grace period runs out with a joke still being written, that
/// connection is reset (never ended cleanly with part of a joke), and the server stops.
#[test]
fn a_joke_still_unfinished_after_the_grace_period_is_cut_with_a_reset() {
    let _alone = alone();
    let (file, _) = big_joke();
    let mut config = Config::new(file.path());
    config.write_timeout = Duration::from_secs(600);
    config.grace_period = Duration::from_millis(300);
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let runtime = client_runtime();
    let mut never_reads = runtime.block_on(async {
        small_window_socket()
            .connect(addr)
            .await
            .expect("connecting")
    });
    // Wait until the server is surely writing to it: a polite client served means the
    // connection before it was accepted and its task started.
    runtime
        .block_on(fetch_joke(addr))
        .expect("a polite client is served");
    let stats = server.stop();
    assert_eq!(
        stats.served, 1,
        "only the polite client got its joke: {stats:?}"
    );
    assert_cut_with_a_reset(&runtime, &mut never_reads);
}

/// With the connection limit reached by clients that never close, a new client waits in the
/// backlog, and is served as soon as the drain timeout frees a place.
#[test]
fn the_connection_limit_delays_but_never_drops_a_client() {
    let _alone = alone();
    const LIMIT: usize = 8;
    let file = JokesFile::fixture();
    let mut config = Config::new(file.path());
    config.max_connections = LIMIT;
    config.drain_timeout = Duration::from_millis(300);
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let runtime = client_runtime();
    runtime.block_on(async {
        let _hogs = idle_clients(addr, LIMIT).await;
        let joke = fetch_joke(addr).await.expect("the next client is served");
        assert!(!joke.is_empty());
    });
    let stats = server.stop();
    assert_eq!(stats.served, LIMIT as u64 + 1, "{stats:?}");
}
