//! The harness's network limits: `--max-per-address`, and the UDP answerer's rates and size
//! limit (`--udp`). Harness properties, so one act stands for all.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use joke_server::{Config, UdpLimits};
use joke_testkit::client::{client_runtime, connect, read_to_end, within};
use joke_testkit::{JokesFile, ServerUnderTest};
use tokio::net::{TcpSocket, UdpSocket};

use crate::common::{alone, os, run_binary_to_exit};

/// A client connecting from `source`, one of the loopback addresses (all of 127.0.0.0/8 is
/// loopback on Linux).
async fn connect_from(source: [u8; 4], addr: SocketAddr) -> tokio::net::TcpStream {
    try_connect_from(source, addr).await.expect("connecting")
}

async fn try_connect_from(
    source: [u8; 4],
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("binding to a loopback address");
    within(Duration::from_secs(10), "connecting", socket.connect(addr)).await
}

/// 127.0.0.1 holds its limit of connections (served, and kept open by clients that never
/// close); the next one from 127.0.0.1 is reset unserved and counted, while a client from
/// 127.0.0.2 is served.
#[test]
fn another_address_is_served_while_one_holds_its_limit() {
    let _alone = alone();
    const LIMIT: usize = 3;
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let config = Config {
        max_per_address: Some(LIMIT),
        // The holders stay in the polite close (waiting for the client to close) meanwhile.
        drain_timeout: Duration::from_secs(30),
        grace_period: Duration::from_millis(200),
        ..Config::new(file.path())
    };
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();
    let runtime = client_runtime();
    runtime.block_on(async {
        let mut holders = Vec::new();
        for _ in 0..LIMIT {
            let mut holder = connect_from([127, 0, 0, 1], addr).await;
            // Each holder reads its joke's first bytes: its connection surely counts now.
            let mut first = [0u8; 1];
            within(
                Duration::from_secs(10),
                "a holder's joke",
                tokio::io::AsyncReadExt::read_exact(&mut holder, &mut first),
            )
            .await
            .expect("a holder is served");
            holders.push(holder);
        }
        // The reset may come before connect() has returned.
        let over = match try_connect_from([127, 0, 0, 1], addr).await {
            Ok(mut over) => read_to_end(&mut over).await,
            Err(error) => Err(error),
        };
        match over {
            Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
            Ok(bytes) => panic!("over the limit, got {} bytes and a clean end", bytes.len()),
        }
        let mut other = connect_from([127, 0, 0, 2], addr).await;
        let joke = read_to_end(&mut other).await.expect("127.0.0.2 is served");
        assert!(jokes.contains(&String::from_utf8(joke).unwrap()));
        drop(holders);
    });
    let stats = server.stop();
    assert_eq!(stats.per_address_refusals, 1, "{stats:?}");
    assert_eq!(stats.served, LIMIT as u64 + 1, "{stats:?}");
}

/// Off by default: many connections from one address are all served.
#[test]
fn without_the_flag_one_address_may_hold_many_connections() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let server = ServerUnderTest::start(acts::make::act1_naive(), Config::new(file.path()));
    let addr = server.addr();
    client_runtime().block_on(async {
        let mut open = Vec::new();
        for _ in 0..50 {
            open.push(connect(addr).await.expect("connecting"));
        }
        for mut socket in open {
            assert!(!read_to_end(&mut socket).await.expect("served").is_empty());
        }
    });
    let stats = server.stop();
    assert_eq!((stats.served, stats.per_address_refusals), (50, 0));
}

/// 10,000 one-byte datagrams from one address as fast as the client can send them: the replies
/// stay within the burst plus the rate times the time the flood took, and afterwards another
/// address is answered at once. Prints the flood's figures (the amplification is bytes out over
/// bytes in).
#[test]
fn a_udp_flood_from_one_address_gets_its_rate_and_no_more() {
    let _alone = alone();
    const FLOOD: usize = 10_000;
    let file = JokesFile::fixture();
    let limits = UdpLimits {
        per_source_rate: 20.try_into().unwrap(),
        per_source_burst: 5.try_into().unwrap(),
        global_rate: 1000.try_into().unwrap(),
    };
    let config = Config {
        udp: true,
        udp_limits: limits,
        ..Config::new(file.path())
    };
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let (replies, took, other_answered) = client_runtime().block_on(async {
        let flooder = UdpSocket::bind("127.0.0.1:0").await.expect("binding");
        flooder.connect(addr).await.expect("connecting");
        let started = Instant::now();
        let mut replies = 0u64;
        let mut buffer = [0u8; 2048];
        for n in 0..FLOOD {
            flooder.send(b"x").await.expect("sending");
            // Collect replies as they come, so the client's receive buffer never overflows.
            while let Ok(received) = flooder.try_recv(&mut buffer) {
                assert!(received <= joke_server::UDP_MAX_REPLY);
                replies += 1;
            }
            if n % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // What is still in flight arrives within a moment.
        while let Ok(Ok(received)) =
            tokio::time::timeout(Duration::from_millis(300), flooder.recv(&mut buffer)).await
        {
            assert!(received <= joke_server::UDP_MAX_REPLY);
            replies += 1;
        }
        let took = started.elapsed();
        let other = UdpSocket::bind("127.0.0.2:0").await.expect("binding");
        other.connect(addr).await.expect("connecting");
        other.send(b"x").await.expect("sending");
        let answered = tokio::time::timeout(Duration::from_secs(5), other.recv(&mut buffer))
            .await
            .is_ok_and(|received| received.is_ok_and(|n| n > 0));
        (replies, took, answered)
    });
    let stats = server.stop();
    let allowed = 5 + (20.0 * took.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        replies <= allowed,
        "{replies} replies in {took:?}; the bucket allows {allowed}: {stats:?}"
    );
    assert!(replies >= 5, "at least the burst is answered: {replies}");
    assert!(other_answered, "another address is answered: {stats:?}");
    assert_eq!(stats.udp_replies, replies + 1, "{stats:?}");
    assert_eq!(
        stats.udp_received,
        stats.udp_replies + stats.udp_per_source_limited + stats.udp_global_limited,
        "every datagram is answered or counted as dropped: {stats:?}"
    );
    eprintln!(
        "udp flood: {} datagrams in ({} bytes) over {took:?}, {} replies ({} bytes), \
         amplification {:.2}; {} dropped over the source's rate; another address answered",
        stats.udp_received,
        stats.udp_bytes_in,
        stats.udp_replies,
        stats.udp_bytes_out,
        stats.udp_bytes_out as f64 / stats.udp_bytes_in as f64,
        stats.udp_per_source_limited,
    );
}

/// `--udp` with a file whose every joke is longer than 512 bytes: refused at start-up, exit 2.
#[test]
fn udp_with_no_joke_short_enough_is_refused() {
    let long = "a line of a long joke, long enough to need many of them.\n".repeat(12);
    let file = JokesFile::with_bytes(format!("{long}---\n{long}"));
    let mut args = os(&["--addr", "127.0.0.1:0", "--udp", "--jokes"]);
    args.push(file.path().into());
    let exited = run_binary_to_exit(acts::entry("act1-naive"), &args);
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("fits in one datagram"),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains(&file.path().display().to_string()),
        "{}",
        exited.stderr
    );
}

/// Nonsense values of the new flags: a clear message naming the flag, exit 2.
#[test]
fn bad_values_of_the_network_flags_exit_2() {
    let file = JokesFile::fixture();
    for (flag, value, needle) in [
        ("--max-per-address", "0", "at least 1"),
        ("--udp-rate", "0", "at least 1"),
        ("--udp-burst", "many", "at least 1"),
        ("--udp-global-rate", "none", "at least 1"),
        ("--write-timeout", "0s", "more than zero"),
        ("--joke-timeout", "0s", "more than zero"),
    ] {
        let mut args = os(&["--addr", "127.0.0.1:0", flag, value, "--jokes"]);
        args.push(file.path().into());
        let exited = run_binary_to_exit(acts::entry("act1-naive"), &args);
        assert_eq!(exited.code, Some(2), "{flag} {value}: {}", exited.stderr);
        assert!(exited.stderr.contains(flag), "{flag}: {}", exited.stderr);
        assert!(exited.stderr.contains(needle), "{flag}: {}", exited.stderr);
    }
}

/// Sends `header` on a new connection and reads what comes back (or the error).
async fn after_header(addr: SocketAddr, header: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    let mut socket = connect(addr).await?;
    socket.write_all(header).await?;
    read_to_end(&mut socket).await
}

/// `--proxy-protocol`: a v1 header gets a joke, and its address is the one
/// `--max-per-address` counts; a missing or malformed header gets a reset, never a joke; a v2
/// LOCAL (a health check) is counted as a check; a client that sends nothing is given up on
/// after the header timeout.
#[test]
fn the_proxy_header_names_the_client_and_nothing_else_is_served() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let config = Config {
        proxy_protocol: Some(Duration::from_millis(300)),
        max_per_address: Some(1),
        drain_timeout: Duration::from_secs(30),
        grace_period: Duration::from_millis(200),
        ..Config::new(file.path())
    };
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();
    let from = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 12345\r\n");
    client_runtime().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // 192.0.2.1 holds its one slot (it reads its joke but keeps the connection open)...
        let mut holder = connect(addr).await.expect("connecting");
        holder
            .write_all(from("192.0.2.1").as_bytes())
            .await
            .unwrap();
        let mut first = [0u8; 1];
        holder.read_exact(&mut first).await.expect("served");
        // ...so another connection claiming 192.0.2.1 is refused, while one claiming
        // 192.0.2.2 is served, though all come from 127.0.0.1.
        let refused = after_header(addr, from("192.0.2.1").as_bytes()).await;
        assert_eq!(
            refused.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionReset
        );
        let joke = after_header(addr, from("192.0.2.2").as_bytes())
            .await
            .expect("served");
        assert!(jokes.contains(&String::from_utf8(joke).unwrap()));
        // No header, a bad one: a reset and no joke.
        for bad in [&b"hello, a joke please\r\n"[..], b"PROXY TCP4 nonsense\r\n"] {
            let answer = after_header(addr, bad).await;
            assert_eq!(
                answer.unwrap_err().kind(),
                std::io::ErrorKind::ConnectionReset,
                "{bad:?}"
            );
        }
        // Silence: the header timeout, then a reset.
        let mut silent = connect(addr).await.expect("connecting");
        assert_eq!(
            read_to_end(&mut silent).await.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionReset
        );
        // v2 LOCAL: a health check, closed cleanly without a joke.
        let local = [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00,
            0x00, 0x00,
        ];
        assert_eq!(
            after_header(addr, &local).await.expect("a clean close"),
            b""
        );
        drop(holder);
    });
    let stats = server.stop();
    assert_eq!(stats.served, 2, "{stats:?}");
    assert_eq!(stats.proxied, 3, "{stats:?}");
    assert_eq!(stats.per_address_refusals, 1, "{stats:?}");
    assert_eq!(stats.proxy_header_refusals, 3, "{stats:?}");
    assert_eq!(stats.health_checks, 1, "{stats:?}");
}
