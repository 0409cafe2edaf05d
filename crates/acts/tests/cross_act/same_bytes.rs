//! What no single act can test on its own: every act sends the very same bytes for the same
//! joke (DESIGN.md's served form), and every act reports a read error before it writes a byte.
//!
//! Each act's `serve_joke` is called directly, for every joke of the tricky fixture, over a
//! real loopback connection, on a multi-thread runtime (`block_in_place` needs one).

use std::sync::Arc;
use std::time::Duration;

use acts::{ActEntry, FileIo};
use joke_index::{Index, ReadError};
use joke_server::{Act, JokeToServe, ServeError};
use joke_testkit::{JokesFile, client_runtime, fixture_text, serve_over_socket_pair};

use crate::common::alongside_others;

/// The served form of every joke of the fixture, as the index reads it.
fn expected(file: &JokesFile) -> Vec<Vec<u8>> {
    file.served_jokes()
        .into_iter()
        .map(String::into_bytes)
        .collect()
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

/// The served form is also what the in-memory splitter gives for the same text: the bytes
/// every act is held to below are the same whichever way the file is read.
#[test]
fn the_served_form_is_what_the_in_memory_splitter_gives() {
    let _shared = alongside_others();
    let file = JokesFile::fixture();
    let (_, in_memory) =
        joke_index::jokes_in(&std::fs::read(file.path()).unwrap(), Default::default()).unwrap();
    assert_eq!(
        in_memory
            .into_iter()
            .map(String::into_bytes)
            .collect::<Vec<_>>(),
        expected(&file)
    );
}

fn sends_the_served_form_of_every_joke<A: Act>(entry: &ActEntry, act: A) {
    let _shared = alongside_others();
    let file = JokesFile::fixture();
    let index = Arc::new(file.index());
    let expected = expected(&file);
    let received = client_runtime().block_on(every_joke(&act, &index));
    assert_eq!(received.len(), expected.len(), "{}", entry.name);
    for (number, (got, want)) in received.iter().zip(&expected).enumerate() {
        assert!(
            got == want,
            "{}, joke {number}: sent {:?}, the served form is {:?}",
            entry.name,
            String::from_utf8_lossy(&got[..got.len().min(300)]),
            String::from_utf8_lossy(&want[..want.len().min(300)]),
        );
    }
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

fn reports_a_missing_joke_before_writing<A: Act>(entry: &ActEntry, act: A) {
    let _shared = alongside_others();
    let file = JokesFile::fixture();
    let index = Arc::new(file.index());
    act.index_loaded(&index).unwrap();
    let joke = JokeToServe::new(Arc::clone(&index), index.len() + 1, Duration::ZERO);
    let result = client_runtime().block_on(serve_over_socket_pair(&act, joke));
    assert_read_error_and_nothing_sent(entry.name, result, |error| {
        matches!(error, ReadError::NoSuchJoke { .. })
    });
}

/// The file changes after it was indexed. The acts that read the file report the joke stale
/// (so the harness reloads and retries). The finale does not read the file per joke: it
/// serves its cached snapshot, and reports stale a joke picked from any index other than the
/// one it cached.
fn reports_a_stale_joke_before_writing<A: Act>(entry: &ActEntry, act: A) {
    let _shared = alongside_others();
    let file = JokesFile::fixture();
    std::fs::write(file.path(), fixture_text()).unwrap();
    let index = Arc::new(file.index());
    act.index_loaded(&index).unwrap();
    std::fs::write(file.path(), "Not the file that was indexed.\n").unwrap();
    let joke_index = if entry.file_io == FileIo::None {
        Arc::new(JokesFile::fixture().index())
    } else {
        index
    };
    let joke = JokeToServe::new(joke_index, 1, Duration::ZERO);
    let result = client_runtime().block_on(serve_over_socket_pair(&act, joke));
    assert_read_error_and_nothing_sent(entry.name, result, ReadError::is_stale);
}

acts::for_every_act! {
    tests(entry, act) {
        #[test]
        fn sends_the_served_form_of_every_joke() {
            super::sends_the_served_form_of_every_joke(entry, act);
        }

        #[test]
        fn reports_a_missing_joke_before_writing() {
            super::reports_a_missing_joke_before_writing(entry, act);
        }

        #[test]
        fn reports_a_stale_joke_before_writing() {
            super::reports_a_stale_joke_before_writing(entry, act);
        }
    }
}
