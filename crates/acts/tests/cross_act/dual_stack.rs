//! `--addr [::]:PORT`: one IPv6 socket on every address, which on Linux (unless
//! `net.ipv6.bindv6only` is 1; it is 0 by default) also takes IPv4 clients, as what systemd
//! hands over for `ListenStream=17` does. The harness binds, not the act: one act stands for all.

use std::net::SocketAddr;

use joke_server::Config;
use joke_testkit::client::{client_runtime, fetch_joke};
use joke_testkit::{JokesFile, ServerUnderTest};

use crate::common::alongside_others;

#[test]
fn an_ipv6_wildcard_serves_ipv4_and_ipv6_clients() {
    let _shared = alongside_others();
    let file = JokesFile::with_bytes("one\n---\ntwo\n");
    let jokes = file.served_jokes();
    let config = Config {
        addr: "[::]:0".parse().unwrap(),
        ..Config::new(file.path())
    };
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let port = server.addr().port();
    client_runtime().block_on(async {
        for client in ["[::1]", "127.0.0.1"] {
            let addr: SocketAddr = format!("{client}:{port}").parse().unwrap();
            let answer = fetch_joke(addr)
                .await
                .unwrap_or_else(|error| panic!("{addr}: {error}"));
            let answer = String::from_utf8(answer).unwrap();
            assert!(jokes.contains(&answer), "{addr}: {answer:?}");
        }
    });
    server.stop();
}
