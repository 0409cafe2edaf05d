//! # Act V: a reader thread and a channel
//!
//! Two workers, each doing what it is good at. A *reader* runs on Tokio's blocking pool
//! (`spawn_blocking`), where blocking is allowed: it reads the joke with ordinary blocking
//! calls and sends its lines into a [`tokio::sync::mpsc`] channel with
//! [`Sender::blocking_send`](mpsc::Sender::blocking_send). The *connection task* stays on the
//! runtime: it receives the lines with `recv().await` and writes each to the socket. Neither
//! ever blocks the other's thread.
//!
//! The seed article used an **unbounded** channel. It works, until a client reads slowly: the
//! reader never has to wait, so it reads on and the channel holds everything not yet written.
//! A joke is small, but the pattern is the one used for whole files and database cursors, and
//! there an unbounded channel turns one slow client into the whole file in memory; a thousand
//! slow clients, into a thousand copies. A **bounded** channel (here [`LINES_IN_FLIGHT`] lines)
//! gives *backpressure*: when it is full, `blocking_send` waits until the connection has taken
//! a line, so the reader can never run further ahead of the socket than that. It waits on a
//! blocking-pool thread, which is what that pool is for. (On the async side the same bound is
//! `send().await`, which waits without blocking.)
//!
//! The channel carries `Result`s, so a read error travels the same road as the lines. The
//! reader reads and checks the whole joke before it sends its first line, so when the file
//! changed under us the error is the *first* item, and the connection returns it before it
//! has written a byte: the harness can then reload the index and try again, and no client
//! ever gets a torn joke. Should the client go away, the connection task stops receiving, the
//! channel closes, and the reader's next `blocking_send` fails, which stops it too.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act5-channel -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: no slow polls, like Act II, but more polls per connection: the task wakes up
//! for every line the reader sends.

use joke_index::{ReadError, served_lines};
use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

// ANCHOR: bound
/// How many lines may wait in the channel. When it is full, the reader waits for the socket.
pub const LINES_IN_FLIGHT: usize = 4;

/// What the channel carries: a line of the joke (ending in `\n`), or why it could not be read.
pub type Line = Result<String, ReadError>;
// ANCHOR_END: bound

/// Reads each joke on the blocking pool and streams its lines through a bounded channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channel;

// ANCHOR: serve
impl Act for Channel {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        let (lines_tx, mut lines_rx) = mpsc::channel::<Line>(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking({
            let joke = joke.clone();
            move || send_lines(&joke, &lines_tx)
        });
        while let Some(line) = lines_rx.recv().await {
            // A read error can only come first, before anything was written.
            let line = line?;
            socket.write_all(line.as_bytes()).await?;
        }
        // The channel closed: the reader is done. Had it died before sending anything (a
        // panic), we would have written nothing, and this says so instead of reporting a joke.
        reader.await.map_err(|error| joke.read_task_failed(error))?;
        Ok(())
    }
}
// ANCHOR_END: serve

// ANCHOR: reader
/// The reader, on the blocking pool: reads the whole joke (a blocking read, after the
/// `--io-delay` sleep), then sends its lines one by one, waiting whenever the channel is full.
pub fn send_lines(joke: &JokeToServe, lines: &mpsc::Sender<Line>) {
    let text = match joke.read_blocking() {
        Ok(text) => text,
        Err(error) => {
            // The connection may be gone already; then nobody needs the error either.
            let _ = lines.blocking_send(Err(error));
            return;
        }
    };
    for line in served_lines(&text) {
        if lines.blocking_send(Ok(line.to_owned())).is_err() {
            // The receiver was dropped: the client went away. Stop here.
            return;
        }
    }
}
// ANCHOR_END: reader

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use joke_testkit::JokesFile;

    use super::*;

    /// The big joke of the fixture (well over a thousand lines).
    fn big_joke(file: &JokesFile) -> (JokeToServe, Vec<String>) {
        let index = Arc::new(file.index());
        let jokes = file.served_jokes();
        let number = (0..jokes.len())
            .max_by_key(|&n| jokes[n].len())
            .expect("the fixture has jokes");
        let lines = served_lines(&jokes[number]).map(String::from).collect();
        (JokeToServe::new(index, number, Duration::ZERO), lines)
    }

    #[tokio::test]
    async fn lines_arrive_in_order_and_the_channel_then_closes() {
        let file = JokesFile::fixture();
        let (joke, expected) = big_joke(&file);
        let (tx, mut rx) = mpsc::channel(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || send_lines(&joke, &tx));
        let mut received = Vec::new();
        while let Some(line) = rx.recv().await {
            received.push(line.unwrap());
        }
        reader.await.unwrap();
        assert_eq!(received, expected);
    }

    /// Backpressure, seen from the reader's side: the channel never holds more than its bound,
    /// however far behind the receiver is.
    #[tokio::test]
    async fn the_reader_never_gets_more_than_the_bound_ahead() {
        let file = JokesFile::fixture();
        let (joke, expected) = big_joke(&file);
        let (tx, mut rx) = mpsc::channel(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || send_lines(&joke, &tx));
        let mut received = 0;
        // Receive slowly: one line per turn of the runtime, looking at the queue each time.
        while let Some(line) = rx.recv().await {
            line.unwrap();
            received += 1;
            assert!(rx.len() <= LINES_IN_FLIGHT);
            tokio::task::yield_now().await;
        }
        reader.await.unwrap();
        assert_eq!(received, expected.len());
    }

    #[tokio::test]
    async fn a_reader_stops_when_the_client_goes_away() {
        let file = JokesFile::fixture();
        let (joke, _) = big_joke(&file);
        let (tx, mut rx) = mpsc::channel(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || send_lines(&joke, &tx));
        rx.recv().await.unwrap().unwrap();
        drop(rx);
        // The reader returns (instead of blocking forever on a full channel).
        tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("the reader stopped")
            .unwrap();
    }

    #[tokio::test]
    async fn a_read_error_is_the_first_and_only_item() {
        let file = JokesFile::fixture();
        let index = Arc::new(file.index());
        // The file changes after it was indexed.
        std::fs::write(file.path(), "A different joke.\n").unwrap();
        let joke = JokeToServe::new(index, 0, Duration::ZERO);
        let (tx, mut rx) = mpsc::channel(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || send_lines(&joke, &tx));
        let error = rx.recv().await.unwrap().unwrap_err();
        assert!(error.is_stale(), "{error}");
        assert!(rx.recv().await.is_none());
        reader.await.unwrap();
    }
}
