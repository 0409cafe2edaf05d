//! # Finale: don't read the file at all
//!
//! At start-up and after every reload, every joke is read once ([`Index::read_served_blocking`])
//! into one [`Bytes`] buffer in served form; serving is one `write_all` of a slice of it. The
//! cache (one per file, for a server of a directory) sits behind an [`ArcSwap`] and remembers
//! the index it was read from: a joke
//! picked from another index is reported stale ([`ReadError::Changed`]) before anything is
//! written, and the harness picks again. The cache costs the size of the jokes (about twice
//! that during a reload); `docs/src/finale-cached.md` says more. `--io-delay` has nothing to
//! slow down here.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p finale-cached -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: two polls per connection, as few as any act; the fewest slow polls; and a
//! summary line that the delay does not change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use joke_index::{Index, ReadError, ServedJokes};
use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// ANCHOR: cache
/// Every joke of one index, in served form, in memory.
#[derive(Debug)]
struct JokeCache {
    /// The index the jokes were read from: a joke is served from this cache only if it was
    /// picked from this very index.
    index: Arc<Index>,
    /// Every joke of `index` in served form, in one buffer.
    jokes: ServedJokes<Bytes>,
}

/// Serves every joke from memory.
#[derive(Debug, Default)]
pub struct Cached {
    /// One cache per jokes file, by path (a server of a directory has many files); empty until
    /// the first index is loaded.
    caches: ArcSwap<HashMap<PathBuf, Arc<JokeCache>>>,
}
// ANCHOR_END: cache

impl Cached {
    /// Joke `joke` from the cache: a cheap clone of its bytes, or the error that makes the
    /// harness pick again when the cache holds another index's jokes.
    fn cached(&self, joke: &JokeToServe) -> Result<Bytes, ReadError> {
        let caches = self.caches.load();
        let Some(cache) = caches.get(joke.index().path()) else {
            return Err(stale(joke));
        };
        if !Arc::ptr_eq(&cache.index, joke.index()) {
            return Err(stale(joke));
        }
        cache
            .jokes
            .range(joke.number())
            .map(|range| cache.jokes.text().slice(range))
            .ok_or_else(|| ReadError::NoSuchJoke {
                path: joke.index().path().to_path_buf(),
                number: joke.number(),
                count: cache.jokes.len(),
            })
    }
}

/// The joke was picked from an index the cache does not hold (any more).
fn stale(joke: &JokeToServe) -> ReadError {
    ReadError::changed(joke.index().path())
}

// ANCHOR: serve
impl Act for Cached {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        let text = self.cached(&joke)?;
        socket.write_all(&text).await?;
        Ok(())
    }

    /// Runs off the runtime (the harness calls it on the blocking pool): one sequential read
    /// of the whole file, then one atomic swap of the map of caches.
    fn index_loaded(&self, index: &Arc<Index>) -> Result<(), ReadError> {
        let jokes = index
            .read_served_blocking()?
            // `Bytes::from(String)` takes over the string's buffer: no copy.
            .map_text(Bytes::from);
        let cache = Arc::new(JokeCache {
            index: Arc::clone(index),
            jokes,
        });
        // This file's cache replaced, every other file's kept as it is.
        self.caches.rcu(|caches| {
            let mut caches = HashMap::clone(caches);
            caches.insert(index.path().to_path_buf(), Arc::clone(&cache));
            caches
        });
        Ok(())
    }
}
// ANCHOR_END: serve

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use joke_testkit::{JokesFile, serve_over_socket_pair};

    use super::*;

    #[tokio::test]
    async fn serves_every_joke_from_memory() {
        let file = JokesFile::fixture();
        let index = Arc::new(file.index());
        let act = Cached::default();
        act.index_loaded(&index).unwrap();
        // The file is gone: nothing is read from it any more.
        std::fs::remove_file(file.path()).unwrap();
        let expected = JokesFile::fixture().served_jokes();
        for (number, expected) in expected.iter().enumerate() {
            let joke = JokeToServe::new(Arc::clone(&index), number, Duration::ZERO);
            let (served, received) = serve_over_socket_pair(&act, joke).await;
            served.unwrap();
            assert_eq!(received, expected.as_bytes(), "joke {number}");
        }
    }

    #[tokio::test]
    async fn a_joke_from_another_index_is_stale_and_nothing_is_written() {
        let file = JokesFile::fixture();
        let act = Cached::default();
        act.index_loaded(&Arc::new(file.index())).unwrap();
        // The same file indexed again: equal content, but not the index the cache holds.
        let other = Arc::new(file.index());
        let joke = JokeToServe::new(other, 0, Duration::ZERO);
        let (served, received) = serve_over_socket_pair(&act, joke).await;
        match served {
            Err(ServeError::Read(error)) => assert!(error.is_stale(), "{error}"),
            other => panic!("expected a stale read, got {other:?}"),
        }
        assert!(received.is_empty());
    }

    #[tokio::test]
    async fn before_any_index_is_loaded_every_joke_is_stale() {
        let file = JokesFile::fixture();
        let joke = JokeToServe::new(Arc::new(file.index()), 0, Duration::ZERO);
        let error = Cached::default().cached(&joke).unwrap_err();
        assert!(error.is_stale(), "{error}");
    }

    #[test]
    fn a_file_that_changed_before_loading_keeps_the_old_cache() {
        let file = JokesFile::fixture();
        let first = Arc::new(file.index());
        let act = Cached::default();
        act.index_loaded(&first).unwrap();
        let second = Arc::new(file.index());
        std::fs::write(file.path(), "Different.\n").unwrap();
        assert!(act.index_loaded(&second).unwrap_err().is_stale());
        let joke = JokeToServe::new(first, 0, Duration::ZERO);
        assert!(act.cached(&joke).is_ok());
    }
}
