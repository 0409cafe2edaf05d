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

/// A client that never reads a joke too big for the socket buffers holds its connection only
/// until the write timeout; meanwhile and afterwards everyone else is served.
#[test]
fn a_client_that_never_reads_is_cut_off_by_the_write_timeout() {
    let _alone = alone();
    // About 16 MB: more than the server's send buffer and the rude client's small receive
    // buffer hold together, so writing to that client must block.
    let line = "This joke is long, and longer still, and it goes on and on and on.\n";
    let big = line.repeat(16 * 1024 * 1024 / line.len());
    let file = JokesFile::with_bytes(big);
    let mut config = Config::new(file.path());
    // Long enough for a polite client to take 16 MB even in a debug build on a busy machine
    // (about a second here), short enough to keep the test quick.
    config.write_timeout = Duration::from_secs(8);
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let runtime = client_runtime();
    let whole = 16 * 1024 * 1024 / line.len() * line.len();
    let mut never_reads = runtime.block_on(async {
        // A tiny receive buffer keeps the kernel from taking the joke off the server's hands
        // on this client's behalf (loopback buffers can otherwise grow to tens of MB).
        let rude = tokio::net::TcpSocket::new_v4().expect("a socket");
        rude.set_recv_buffer_size(4096).expect("setting SO_RCVBUF");
        let never_reads = rude.connect(addr).await.expect("connecting");
        // A polite client is served the whole (big) joke while the rude one sits there.
        let polite = fetch_joke(addr).await.expect("the polite client is served");
        assert_eq!(polite.len(), whole);
        never_reads
    });
    // Stopping waits for connections in flight; the rude one ends when its write times out.
    let stats = server.stop();
    assert_eq!(stats.write_timeouts, 1, "{stats:?}");
    assert_eq!(stats.served, 1, "{stats:?}");
    // The rude client's connection ends in a reset, not a clean end-of-file.
    assert_cut_with_a_reset(&runtime, &mut never_reads);
}

/// When the shutdown's grace period runs out with a joke still being written, that
/// connection is reset (never ended cleanly with part of a joke), and the server stops.
#[test]
fn a_joke_still_unfinished_after_the_grace_period_is_cut_with_a_reset() {
    let _alone = alone();
    let line = "A joke that takes its time, because its reader takes even longer.\n";
    let file = JokesFile::with_bytes(line.repeat(16 * 1024 * 1024 / line.len()));
    let mut config = Config::new(file.path());
    config.write_timeout = Duration::from_secs(600);
    config.grace_period = Duration::from_millis(300);
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let runtime = client_runtime();
    let mut never_reads = runtime.block_on(async {
        let rude = tokio::net::TcpSocket::new_v4().expect("a socket");
        rude.set_recv_buffer_size(4096).expect("setting SO_RCVBUF");
        rude.connect(addr).await.expect("connecting")
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
