//! # Act VII: `tokio::fs`
//!
//! The obvious question after six acts: why not just use Tokio's own files? [`tokio::fs::File`]
//! looks like a socket (`AsyncRead`, `AsyncSeek`, `.await` everywhere), so this act opens the
//! jokes file with it, seeks to the joke's byte offset from the index, reads the joke's lines
//! asynchronously through a [`BufReader`], and writes the joke.
//!
//! The catch is in Tokio's own documentation: ordinary files have no readiness to wait for
//! on Linux (epoll says a file is always ready, and then `read` blocks anyway), so `tokio::fs`
//! runs every call on the blocking pool, exactly like Act II, with `spawn_blocking` under the
//! hood. What it saves is typing; what it costs is *round trips*. Act II hands one closure to
//! the pool per joke (open, check, seek, read, check, all in one go). Here every `.await` on
//! the file is a trip of its own: `open`, `metadata`, `seek`, each buffer-full of `read`, and
//! `metadata` again, at least five. Each trip queues a job for a pool thread, wakes it, runs a
//! few microseconds of system call, then wakes our task again on a worker, and the task may
//! have moved meanwhile. For a few hundred bytes of joke, that bookkeeping is most of the work.
//! The rule of thumb from Tokio's docs: batch file work into one `spawn_blocking` when you can
//! (Act II), and use `tokio::fs` where convenience matters more than a few microseconds.
//!
//! The checks stay: the file's metadata is compared with the index before and after the
//! read, and not a byte goes to the client until both pass, so an edit that races the read
//! yields a retry, never a torn joke.
//!
//! Why `read_line` and not `lines()`: `lines()` removes the `\n` *and* a `\r` before it, so a
//! line whose content ends in `\r` would come back different. `read_line` keeps every byte,
//! and the index's [`served_from_raw`](joke_index::Index::served_from_raw) then produces the
//! served form exactly as every other act does.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act7-tokio-fs -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: no slow polls, as in Act II (the delay is slept on the blocking pool, before
//! the open), but more polls per connection: one per trip to the pool.

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
    let io_error = |source: io::Error| ReadError::Io {
        path: index.path().to_path_buf(),
        source,
    };
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
