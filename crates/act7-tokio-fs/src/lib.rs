//! # Act VII: `tokio::fs`
//!
//! The jokes file opened with [`tokio::fs::File`], the joke's offset sought, its lines read
//! through a [`BufReader`] with `read_line` (which keeps a `\r` that is content), and the
//! file's metadata checked against the index before and after. Ordinary files have no
//! readiness to wait for, so `tokio::fs` runs each call on the blocking pool: every `.await`
//! on the file is a round trip of its own. Why, and what dropping such a future does not
//! cancel, is in `docs/src/act7-tokio-fs.md`.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act7-tokio-fs -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: few slow polls in the summary line (the delay is slept on the pool, before
//! the open), and the most polls per connection of all acts: one per trip to the pool.

use std::io::{self, SeekFrom};

use joke_index::ReadError;
use joke_server::{Act, JokeToServe, ServeError, simulate_slow_disk};
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

// ANCHOR: read
/// Reads joke `joke` in served form with `tokio::fs`: open, check, seek, read its lines,
/// check again. Fails without returning any of the joke when the file changed.
pub async fn read_joke(joke: &JokeToServe) -> Result<String, ReadError> {
    let index = joke.index();
    let span = index.span_or_error(joke.number())?;
    let (start, len) = (span.bytes.start, span.byte_len());
    let io_error = ReadError::io(index.path());
    let changed = || ReadError::changed(index.path());

    // The simulated slow disk (`--io-delay`): a blocking sleep, so it goes where tokio::fs
    // does its work, on the blocking pool, before the open.
    let delay = joke.io_delay();
    if !delay.is_zero() {
        tokio::task::spawn_blocking(move || simulate_slow_disk(delay))
            .await
            .map_err(|error| joke.read_task_failed(error))?;
    }

    // Each `.await` on the file below is one trip to the blocking pool.
    let mut file = File::open(index.path()).await.map_err(io_error)?;
    index.ensure_unchanged(&file.metadata().await.map_err(io_error)?)?;
    file.seek(SeekFrom::Start(start)).await.map_err(io_error)?;

    // `take` stops the reader at the joke's last byte; `BufReader` reads in 8 KB pieces, so a
    // joke costs one trip, not one per line.
    let mut reader = BufReader::new(file.take(len));
    let mut raw = String::with_capacity(len as usize);
    loop {
        match reader.read_line(&mut raw).await {
            Ok(0) => break,
            Ok(_) => {}
            // Bytes that are not UTF-8 cannot be what the index saw there.
            Err(error) if error.kind() == io::ErrorKind::InvalidData => return Err(changed()),
            Err(error) => return Err(io_error(error)),
        }
    }
    // Fewer bytes than the index promised: the file shrank under us.
    if raw.len() as u64 != len {
        return Err(changed());
    }
    let file = reader.into_inner().into_inner();
    index.ensure_unchanged(&file.metadata().await.map_err(io_error)?)?;
    index.served_from_raw(raw.into_bytes())
}
// ANCHOR_END: read

/// Reads each joke with `tokio::fs`, then writes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioFs;

// ANCHOR: serve
impl Act for TokioFs {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        let text = read_joke(&joke).await?;
        socket.write_all(text.as_bytes()).await?;
        Ok(())
    }
}
// ANCHOR_END: serve

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use joke_testkit::JokesFile;

    use super::*;

    #[tokio::test]
    async fn every_joke_reads_as_the_index_reads_it() {
        let file = JokesFile::fixture();
        let index = Arc::new(file.index());
        let expected = file.served_jokes();
        for (number, expected) in expected.iter().enumerate() {
            let joke = JokeToServe::new(Arc::clone(&index), number, Duration::ZERO);
            assert_eq!(&read_joke(&joke).await.unwrap(), expected, "joke {number}");
        }
    }

    #[tokio::test]
    async fn a_file_that_changed_is_reported_stale() {
        let file = JokesFile::fixture();
        let index = Arc::new(file.index());
        std::fs::write(file.path(), "Short now.\n").unwrap();
        let joke = JokeToServe::new(index, 3, Duration::ZERO);
        let error = read_joke(&joke).await.unwrap_err();
        assert!(error.is_stale(), "{error}");
    }

    #[tokio::test]
    async fn a_joke_the_index_does_not_have_is_an_error() {
        let file = JokesFile::fixture();
        let index = Arc::new(file.index());
        let joke = JokeToServe::new(Arc::clone(&index), index.len(), Duration::ZERO);
        let error = read_joke(&joke).await.unwrap_err();
        assert!(matches!(error, ReadError::NoSuchJoke { .. }), "{error}");
    }
}
