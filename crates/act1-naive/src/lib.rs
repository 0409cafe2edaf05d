//! # Act I: the naive server
//!
//! The simplest thing that works: inside the connection's async task, read the joke from the
//! file with ordinary blocking `std::fs` calls, then write it to the socket.
//!
//! It works. Every client gets its joke. But a Tokio worker thread runs many tasks by taking
//! turns, and a task only gives up its turn at an `.await`. `std::fs` has no `.await`: while
//! the kernel reads the file, the worker thread is stuck in a system call and every other task
//! queued on it waits too. With a warm page cache the read takes microseconds and nobody
//! notices; with a slow disk (try `--io-delay 2ms`) the whole server crawls, because at most
//! `--workers` jokes can be read at once and nothing else runs meanwhile, not even accepting.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act1-naive -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: stop the server with Ctrl-C and read its last line. The "polls slower than
//! 1000 µs" count is the number of times a connection task held a worker for over a
//! millisecond: here, one per joke. The other acts keep it near zero.

use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Reads each joke with blocking calls on the runtime's own worker thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Naive;

// ANCHOR: serve
impl Act for Naive {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        // Blocking: open, seek, read, on this worker thread. Nothing else runs on it meanwhile.
        let text = joke.read_blocking()?;
        socket.write_all(text.as_bytes()).await?;
        Ok(())
    }
}
// ANCHOR_END: serve
