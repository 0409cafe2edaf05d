//! What no single act can test on its own: every act sends the very same bytes for the same
//! joke (DESIGN.md's served form), and every act reports a read error before it writes a byte.
//!
//! Each act's `serve_joke` is called directly, for every joke of the tricky fixture, over a
//! real loopback connection.

use std::sync::Arc;
use std::time::Duration;

use joke_index::{Index, ReadError};
use joke_server::{Act, JokeToServe, ServeError};
use joke_testkit::{JokesFile, fixture_text, serve_over_socket_pair};

/// Calls `$body` with each act as `$act` (of a different type each time) and its name.
macro_rules! for_every_act {
    (|$name:ident, $act:ident| $body:block) => {{
        {
            let ($name, $act) = ("act1-naive", act1_naive::Naive);
            $body
        }
        {
            let ($name, $act) = (
                "act2-spawn-blocking",
                act2_spawn_blocking::SpawnBlocking::default(),
            );
            $body
        }
        {
            let ($name, $act) = (
                "act2-spawn-blocking --mode block-in-place",
                act2_spawn_blocking::SpawnBlocking::new(act2_spawn_blocking::Options {
                    mode: act2_spawn_blocking::Mode::BlockInPlace,
                }),
            );
            $body
        }
        {
            let ($name, $act) = ("act4-custom-future", act4_custom_future::HandWritten);
            $body
        }
        {
            let ($name, $act) = ("act5-channel", act5_channel::Channel);
            $body
        }
        {
            let ($name, $act) = ("act6-framed", act6_framed::FramedLines);
            $body
        }
        {
            let ($name, $act) = ("act7-tokio-fs", act7_tokio_fs::TokioFs);
            $body
        }
        {
            let ($name, $act) = ("finale-cached", finale_cached::Cached::default());
            $body
        }
    }};
}

/// Serves every joke of `index` with `act` and returns the bytes received for each.
async fn every_joke<A: Act>(act: &A, index: &Arc<Index>) -> Vec<Vec<u8>> {
    act.index_loaded(index).expect("loading the index");
    let mut received = Vec::new();
    for number in 0..index.len() {
        let joke = JokeToServe::new(Arc::clone(index), number, Duration::ZERO);
        let (served, bytes) = serve_over_socket_pair(act, joke).await;
        served.unwrap_or_else(|error| panic!("joke {number}: {error}"));
        received.push(bytes);
    }
    received
}

/// `block_in_place` needs the multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_act_sends_the_same_bytes_for_every_joke() {
    let file = JokesFile::fixture();
    let index = Arc::new(file.index());
    let expected: Vec<Vec<u8>> = file
        .served_jokes()
        .into_iter()
        .map(String::into_bytes)
        .collect();
    // The served form is also what the in-memory splitter gives for the same text.
    let (_, in_memory) =
        joke_index::jokes_in(&std::fs::read(file.path()).unwrap(), Default::default()).unwrap();
    assert_eq!(
        in_memory
            .into_iter()
            .map(String::into_bytes)
            .collect::<Vec<_>>(),
        expected
    );

    for_every_act!(|name, act| {
        let received = every_joke(&act, &index).await;
        for (number, (got, want)) in received.iter().zip(&expected).enumerate() {
            assert!(
                got == want,
                "{name}, joke {number}: sent {:?}, the served form is {:?}",
                String::from_utf8_lossy(&got[..got.len().min(300)]),
                String::from_utf8_lossy(&want[..want.len().min(300)]),
            );
        }
    });
}

fn assert_read_error_and_nothing_sent(
    name: &str,
    result: (Result<(), ServeError>, Vec<u8>),
    expected: impl Fn(&ReadError) -> bool,
) {
    let (served, received) = result;
    match served {
        Err(ServeError::Read(error)) => assert!(expected(&error), "{name}: {error}"),
        other => panic!("{name}: expected a read error, got {other:?}"),
    }
    assert!(
        received.is_empty(),
        "{name} wrote {} bytes first",
        received.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_act_reports_a_missing_joke_before_writing() {
    let file = JokesFile::fixture();
    let index = Arc::new(file.index());
    for_every_act!(|name, act| {
        act.index_loaded(&index).unwrap();
        let joke = JokeToServe::new(Arc::clone(&index), index.len() + 1, Duration::ZERO);
        let result = serve_over_socket_pair(&act, joke).await;
        assert_read_error_and_nothing_sent(name, result, |error| {
            matches!(error, ReadError::NoSuchJoke { .. })
        });
    });
}

/// The file changes after it was indexed. The acts that read the file report the joke stale
/// (so the harness reloads and retries). The finale does not read the file per joke: it
/// serves its cached snapshot, and reports stale a joke picked from any index other than the
/// one it cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_act_reports_a_stale_joke_before_writing() {
    let file = JokesFile::fixture();
    for_every_act!(|name, act| {
        std::fs::write(file.path(), fixture_text()).unwrap();
        let index = Arc::new(file.index());
        act.index_loaded(&index).unwrap();
        std::fs::write(file.path(), "Not the file that was indexed.\n").unwrap();
        let joke_index = if name == "finale-cached" {
            Arc::new(JokesFile::fixture().index())
        } else {
            index
        };
        let joke = JokeToServe::new(joke_index, 1, Duration::ZERO);
        let result = serve_over_socket_pair(&act, joke).await;
        assert_read_error_and_nothing_sent(name, result, ReadError::is_stale);
    });
}
