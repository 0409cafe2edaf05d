//! A server started by joke-server's supervisor follows its supervisor's death: when its stdin
//! (whose other end only the supervisor holds, and which the kernel closes when the supervisor
//! dies, however it dies) reaches end-of-file, it shuts down as on SIGTERM. Without the
//! supervisor's environment variable, end-of-file on stdin changes nothing.
//!
//! The server is `bench-client serve act1-naive`, the very process `compare` starts.

use std::time::Duration;

use joke_server::supervisor::{Launch, Supervised};
use joke_server::wire;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const JOKES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../jokes.txt");
const PATIENCE: Duration = Duration::from_secs(20);

fn act1() -> Launch {
    Launch::new(env!("CARGO_BIN_EXE_bench-client"))
        .args([
            "serve",
            "act1-naive",
            "--addr",
            "127.0.0.1:0",
            "--jokes",
            JOKES,
        ])
        .stop_timeout(PATIENCE)
}

/// Reads one joke from the server, within [`PATIENCE`].
async fn one_joke(server: &Supervised) {
    let read = async {
        let mut socket = TcpStream::connect(server.addr()).await?;
        let mut joke = String::new();
        socket.read_to_string(&mut joke).await?;
        std::io::Result::Ok(joke)
    };
    let joke = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("a joke in time")
        .expect("a joke");
    assert!(!joke.is_empty(), "an empty answer");
}

#[tokio::test]
async fn a_server_stops_cleanly_when_its_supervisor_goes_away() {
    let mut server = act1().start().await.expect("the server starts");
    one_joke(&server).await;
    // What the kernel does to the pipe when the supervising process dies.
    server.close_stdin();
    let stopped = server.wait().await;
    assert!(stopped.problems.is_empty(), "{:?}", stopped.problems);
    assert_eq!(stopped.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("stdin closed"),
        "the server did not say why it stopped:\n{}",
        stopped.stderr
    );
    assert_eq!(stopped.statistics().expect("its statistics").served, 1);
}

#[tokio::test]
async fn without_the_variable_the_end_of_stdin_changes_nothing() {
    let mut server = act1()
        .env(wire::STOP_ON_STDIN_EOF, "0")
        .start()
        .await
        .expect("the server starts");
    server.close_stdin();
    // Give a server that would (wrongly) stop the time to do so; then it must still serve.
    tokio::time::sleep(Duration::from_millis(500)).await;
    one_joke(&server).await;
    let stopped = server.stop().await;
    assert_eq!(stopped.code(), Some(0), "{}", stopped.stderr);
    assert!(
        !stopped.stderr.contains("stdin closed"),
        "{}",
        stopped.stderr
    );
    assert_eq!(stopped.statistics().expect("its statistics").served, 1);
}
