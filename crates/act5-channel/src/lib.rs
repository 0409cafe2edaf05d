//! # Act V: a reader thread and a channel
//!
//! A reader on the blocking pool sends each line into a bounded [`tokio::sync::mpsc`]
//! channel as soon as it has read it ([`Sender::blocking_send`](mpsc::Sender::blocking_send));
//! the connection task receives with `recv().await` and writes each line. The bound
//! ([`LINES_IN_FLIGHT`]) keeps the reader at most that far ahead of the socket; the price is
//! a pool thread parked for as long as a slow client dawdles, and `--backpressure send-await`
//! is the other shape. A change to the file found after lines went out ends in
//! [`ServeError::CutShort`], so the harness resets the connection rather than let a part pass
//! for a whole joke. The why is in `docs/src/act5-channel.md`.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act5-channel -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: few slow polls in the summary line, like Act II (the reading is on the pool),
//! and polls per connection about Act II's; what grows is write calls, one per line.

use joke_index::ReadError;
use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

// ANCHOR: bound
/// How many lines may wait in the channel. When it is full, the reader waits for the socket.
pub const LINES_IN_FLIGHT: usize = 4;

/// What the channel carries: a line of the joke (ending in `\n`), or why it could not be read.
pub type Line = Result<String, ReadError>;
// ANCHOR_END: bound

// ANCHOR: options
/// Where the reader waits when the channel is full (`--backpressure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backpressure {
    /// The reader runs on a pool thread for the whole joke and waits in `blocking_send`,
    /// holding that thread while the client is slow.
    #[default]
    BlockingSend,
    /// Each line is read on the pool (one trip per line) and sent with `send().await` on the
    /// runtime, which waits without holding a thread.
    SendAwait,
}

/// This act's own command-line options, parsed next to the shared ones.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Options {
    /// Where the reader waits for a slow client.
    #[arg(long, value_enum, default_value_t = Backpressure::BlockingSend)]
    pub backpressure: Backpressure,
}
// ANCHOR_END: options

/// Reads each joke on the blocking pool and streams its lines through a bounded channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channel {
    backpressure: Backpressure,
}

impl Channel {
    /// The act, waiting where `options.backpressure` says.
    pub fn new(options: Options) -> Self {
        Channel {
            backpressure: options.backpressure,
        }
    }
}

// ANCHOR: serve
impl Act for Channel {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        let (lines_tx, mut lines_rx) = mpsc::channel::<Line>(LINES_IN_FLIGHT);
        match self.backpressure {
            Backpressure::BlockingSend => {
                let reader = tokio::task::spawn_blocking({
                    let joke = joke.clone();
                    move || send_lines(joke.lines_blocking(), &lines_tx)
                });
                let written = write_lines(&mut lines_rx, socket).await?;
                // The channel closed: the reader is done. Had it died (a panic), the lines
                // written so far are not the whole joke, and this says so.
                reader
                    .await
                    .map_err(|error| cut(written, joke.read_task_failed(error)))?;
                Ok(())
            }
            Backpressure::SendAwait => {
                let reader = send_lines_from_runtime(joke, lines_tx);
                let ((), written) = tokio::join!(reader, write_lines(&mut lines_rx, socket));
                written.map(drop)
            }
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: reader
/// The reader, on the blocking pool: sends each line as it is read, waiting whenever the
/// channel is full. A read error is sent, and ends the joke.
pub fn send_lines(lines: impl IntoIterator<Item = Line>, channel: &mpsc::Sender<Line>) {
    for line in lines {
        let failed = line.is_err();
        // Fails when the receiver was dropped: the client went away. Stop here.
        if channel.blocking_send(line).is_err() || failed {
            return;
        }
    }
}
// ANCHOR_END: reader

// ANCHOR: writer
/// The connection's side: writes each line as it arrives, and returns how many it wrote. A
/// read error before the first line is a [`ServeError::Read`] (nothing was written, the
/// harness may retry); after it, the joke was cut short.
pub async fn write_lines(
    lines: &mut mpsc::Receiver<Line>,
    socket: &mut (impl AsyncWrite + Unpin),
) -> Result<usize, ServeError> {
    let mut written = 0;
    while let Some(line) = lines.recv().await {
        let line = line.map_err(|error| cut(written, error))?;
        socket.write_all(line.as_bytes()).await?;
        written += 1;
    }
    Ok(written)
}

/// A read error, after `written` lines went out.
fn cut(written: usize, error: ReadError) -> ServeError {
    if written == 0 {
        ServeError::Read(error)
    } else {
        ServeError::CutShort(error)
    }
}
// ANCHOR_END: writer

// ANCHOR: send_await
/// `--backpressure send-await`: the same reader, but it only visits the pool to read one line
/// (the reader goes to a pool thread and comes back with the line), and waits for room in the
/// channel on the runtime, holding no thread while the client is slow.
async fn send_lines_from_runtime(joke: JokeToServe, channel: mpsc::Sender<Line>) {
    let opening = joke.clone();
    let mut lines = match tokio::task::spawn_blocking(move || opening.lines_blocking()).await {
        Ok(lines) => lines,
        Err(error) => {
            let _ = channel.send(Err(joke.read_task_failed(error))).await;
            return;
        }
    };
    loop {
        let read = tokio::task::spawn_blocking(move || {
            let line = lines.next();
            (lines, line)
        });
        let line = match read.await {
            Ok((back, Some(line))) => {
                lines = back;
                line
            }
            Ok((_, None)) => return,
            Err(error) => {
                let _ = channel.send(Err(joke.read_task_failed(error))).await;
                return;
            }
        };
        let failed = line.is_err();
        if channel.send(line).await.is_err() || failed {
            return;
        }
    }
}
// ANCHOR_END: send_await

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use joke_index::served_lines;
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
        let reader = tokio::task::spawn_blocking(move || send_lines(joke.lines_blocking(), &tx));
        let mut received = Vec::new();
        while let Some(line) = rx.recv().await {
            received.push(line.unwrap());
        }
        reader.await.unwrap();
        assert_eq!(received, expected);
    }

    /// A writer that counts the lines whose last byte it accepted.
    struct CountingWriter<W> {
        inner: W,
        lines: Arc<AtomicUsize>,
    }

    impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let written = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = written {
                let ends = buf[..n].iter().filter(|&&b| b == b'\n').count();
                self.lines.fetch_add(ends, Ordering::SeqCst);
            }
            written
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// Backpressure, counted: with a client that does not read and a joke far larger than
    /// the pipe, the reader has read at most the bound, plus the line in its own hand and the
    /// one the writer is stuck on, more lines than were written; and it stops when the client
    /// goes away.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_client_that_does_not_read_the_reader_stays_within_the_bound() {
        let line = "a line of a very long joke, long enough to fill a pipe quickly\n";
        let file = JokesFile::with_bytes(line.repeat(5_000));
        let joke = JokeToServe::new(Arc::new(file.index()), 0, Duration::ZERO);
        let (read, written) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

        let (tx, mut rx) = mpsc::channel(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking({
            let read = Arc::clone(&read);
            move || {
                let counted = joke.lines_blocking().inspect(|_| {
                    read.fetch_add(1, Ordering::SeqCst);
                });
                send_lines(counted, &tx)
            }
        });
        // A pipe that holds 4 KiB, and a client that never reads from it.
        let (client, server) = tokio::io::duplex(4096);
        let mut socket = CountingWriter {
            inner: server,
            lines: Arc::clone(&written),
        };
        let writer = tokio::spawn(async move { write_lines(&mut rx, &mut socket).await });

        // Let both run until they are stuck.
        let mut last = (usize::MAX, usize::MAX);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = (read.load(Ordering::SeqCst), written.load(Ordering::SeqCst));
            if now == last {
                break;
            }
            last = now;
        }
        let (read_now, written_now) = last;
        eprintln!("lines read {read_now}, written {written_now} of 5000");
        assert!(
            written_now < 1000,
            "the pipe should be full long before the end"
        );
        assert!(
            read_now <= written_now + LINES_IN_FLIGHT + 2,
            "the reader read {read_now} lines while {written_now} were written"
        );

        drop(client);
        let result = tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("the writer stops when the client goes away")
            .unwrap();
        assert!(matches!(result, Err(ServeError::Write(_))), "{result:?}");
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("the reader stopped")
            .unwrap();
        assert!(read.load(Ordering::SeqCst) < 5_000);
    }

    #[tokio::test]
    async fn a_read_error_before_any_line_is_the_first_and_only_item() {
        let file = JokesFile::fixture();
        let index = Arc::new(file.index());
        // The file changes after it was indexed.
        std::fs::write(file.path(), "A different joke.\n").unwrap();
        let joke = JokeToServe::new(index, 0, Duration::ZERO);
        let (tx, mut rx) = mpsc::channel(LINES_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || send_lines(joke.lines_blocking(), &tx));
        let error = rx.recv().await.unwrap().unwrap_err();
        assert!(error.is_stale(), "{error}");
        assert!(rx.recv().await.is_none());
        reader.await.unwrap();
    }

    /// An error after lines were written cuts the joke: the harness must reset.
    #[tokio::test]
    async fn an_error_after_some_lines_is_a_cut_joke() {
        // Room for both items before anyone receives, whatever the act's bound (the book's
        // exercise sets it to 1).
        let (tx, mut rx) = mpsc::channel(2);
        tx.send(Ok("first\n".into())).await.unwrap();
        tx.send(Err(ReadError::changed("jokes.txt"))).await.unwrap();
        drop(tx);
        let mut sink = Vec::new();
        let result = write_lines(&mut rx, &mut sink).await;
        assert!(matches!(result, Err(ServeError::CutShort(_))), "{result:?}");
        assert_eq!(sink, b"first\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_shapes_send_the_same_bytes() {
        let file = JokesFile::fixture();
        let (joke, expected) = big_joke(&file);
        for backpressure in [Backpressure::BlockingSend, Backpressure::SendAwait] {
            let act = Channel { backpressure };
            let (served, received) =
                joke_testkit::client::serve_over_socket_pair(&act, joke.clone()).await;
            served.unwrap();
            assert_eq!(String::from_utf8(received).unwrap(), expected.concat());
        }
    }
}
