//! `--udp`: RFC 865 over UDP, one joke per datagram, on the same address as TCP. The harness
//! answers datagrams itself, not the act, so one act stands for all.

use std::collections::HashSet;
use std::time::Duration;

use joke_server::Config;
use joke_testkit::client::{client_runtime, within};
use joke_testkit::{JokesFile, ServerUnderTest};
use tokio::net::UdpSocket;

use crate::common::alongside_others;

#[test]
fn every_datagram_is_answered_with_one_whole_joke() {
    let _shared = alongside_others();
    let file = JokesFile::with_bytes("one\n---\ntwo\nlines\n---\n  three, indented\r\n");
    let jokes: HashSet<String> = file.served_jokes().into_iter().collect();
    let config = Config {
        udp: true,
        // Ten at once from one address: within the burst (the rates are net_limits' subject).
        udp_limits: joke_server::UdpLimits {
            per_source_burst: 10.try_into().unwrap(),
            ..Config::new(file.path()).udp_limits
        },
        ..Config::new(file.path())
    };
    let server = ServerUnderTest::start(acts::make::act1_naive(), config);
    let addr = server.addr();

    let answers = client_runtime().block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("binding a UDP socket");
        socket
            .connect(addr)
            .await
            .expect("connecting the UDP socket");
        let mut answers = Vec::new();
        for _ in 0..10 {
            socket.send(b"a joke, please\n").await.expect("sending");
            let mut buffer = [0u8; 2048];
            let received = within(Duration::from_secs(10), "waiting for the answer", async {
                socket.recv(&mut buffer).await
            })
            .await
            .expect("the datagram is answered");
            answers.push(String::from_utf8(buffer[..received].to_vec()).expect("UTF-8"));
        }
        answers
    });
    for answer in &answers {
        assert!(
            jokes.contains(answer),
            "not one joke of the file: {answer:?}"
        );
    }
    let stats = server.stop();
    assert_eq!(stats.served, 10, "{stats:?}");
}
