//! # Act I: the naive server
//!
//! The simplest thing that works: inside the connection's async task, read the joke with
//! ordinary blocking `std::fs` calls, then write it. Nothing stops you: it compiles, every
//! client gets its joke, and each read holds a runtime worker thread until the kernel answers.
//! Why that hurts only when every worker is blocked at once (other workers steal the blocked
//! one's queue), and why a current-thread runtime stops outright, is the chapter's subject:
//! `docs/src/act1-naive.md`.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act1-naive -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: stop the server with Ctrl-C and read its summary line. "polls slower than
//! 1000 µs" is about one per joke (each poll holds a worker for the 2 ms read), and the
//! heartbeat's p99, the lateness any other task suffered, grows with it. Add
//! `--flavor current-thread` and one slow read stops everything, the heartbeat included.

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
