//! # Act IV: a future written by hand
//!
//! [`WriteLines`] implements [`Future`] with its own `poll`: it takes the joke's lines from a
//! [`Stream`] (read on the blocking pool by [`JokeToServe::read_lines_off_runtime`]) and
//! drives [`AsyncWrite::poll_write`] itself, getting right what `write_all` does for us:
//! partial writes, `Pending` with a registered waker, `Ok(0)`, and the coop budget. Each is
//! explained in `docs/src/act4-custom-future.md`; the unit tests below drive it with a writer
//! that takes one byte per call and says `Pending` every other call.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act4-custom-future -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: few slow polls in the summary line (the read is on the pool), and about as
//! many polls per connection as Act II: a writable socket takes every line in one poll.
//! What line-by-line writing costs is write calls, one per line, not polls.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::Stream;
use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

// ANCHOR: state
/// A future that writes every item of `lines` to `writer`, in order, then flushes it.
///
/// It is generic over the stream and the writer so that tests can drive it with writers that
/// misbehave on purpose; the act uses it with a joke's lines and a `TcpStream`.
pub struct WriteLines<S: Stream, W> {
    lines: S,
    writer: W,
    /// The line being written, if any...
    current: Option<S::Item>,
    /// ...and how many of its bytes the writer has taken so far.
    written: usize,
    /// The stream has said it has no more lines: only the flush is left.
    lines_done: bool,
}
// ANCHOR_END: state

impl<S: Stream, W> WriteLines<S, W> {
    /// A future that writes `lines` to `writer`.
    pub fn new(lines: S, writer: W) -> Self {
        WriteLines {
            lines,
            writer,
            current: None,
            written: 0,
            lines_done: false,
        }
    }

    /// The writer (to see what was written, in tests).
    pub fn writer(&self) -> &W {
        &self.writer
    }
}

impl<S: Stream, W> fmt::Debug for WriteLines<S, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteLines")
            .field("line_in_hand", &self.current.is_some())
            .field("written", &self.written)
            .field("lines_done", &self.lines_done)
            .finish_non_exhaustive()
    }
}

// ANCHOR: poll
impl<S, W> Future for WriteLines<S, W>
where
    S: Stream + Unpin,
    S::Item: AsRef<[u8]> + Unpin,
    W: AsyncWrite + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every field is `Unpin`, so the future may be handled as a plain `&mut`; each field is
        // pinned again with `Pin::new` just for the call that needs it. No `unsafe` needed.
        let this = self.get_mut();
        loop {
            // Finish the line in hand. `ready!` returns `Pending` from this function when the
            // writer is not ready; the writer has registered our waker, and when we are polled
            // again `written` tells us where to resume.
            if let Some(line) = &this.current {
                let line = line.as_ref();
                // An empty line never reaches `poll_write`: a writer answers an empty buffer
                // with `Ok(0)`, which must not be mistaken for the error below.
                while this.written < line.len() {
                    let rest = &line[this.written..];
                    let taken = ready!(Pin::new(&mut this.writer).poll_write(cx, rest))?;
                    if taken == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the writer took none of the joke's bytes",
                        )));
                    }
                    this.written += taken;
                }
                this.current = None;
            }

            if this.lines_done {
                return Pin::new(&mut this.writer).poll_flush(cx);
            }

            // Spend one unit of the task's coop budget per line. When the budget is spent this
            // returns `Pending` after arranging for the task to be woken at once: we yield the
            // thread to other tasks and carry on from here at our next turn.
            let budget = ready!(tokio::task::coop::poll_proceed(cx));
            match ready!(Pin::new(&mut this.lines).poll_next(cx)) {
                Some(line) => {
                    // We did get a line: the unit is spent. (Had `poll_next` returned
                    // `Pending`, dropping `budget` would have given the unit back.)
                    budget.made_progress();
                    this.current = Some(line);
                    this.written = 0;
                }
                None => this.lines_done = true,
            }
        }
    }
}
// ANCHOR_END: poll

/// Writes each joke line by line with [`WriteLines`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HandWritten;

// ANCHOR: serve
impl Act for HandWritten {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        // The read happens on the blocking pool and is complete (and checked) before the first
        // line comes out of the stream, so a read error is returned before any byte is written.
        let lines = joke.read_lines_off_runtime().await?;
        WriteLines::new(lines, socket).await?;
        Ok(())
    }
}
// ANCHOR_END: serve

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use futures::stream;
    use tokio_test::task;

    use super::*;

    fn joke_lines() -> Vec<String> {
        [
            "Why did the future go to therapy?\n",
            "\n",
            "",
            "  It had unresolved Pending issues. ½ ☺\n",
        ]
        .map(String::from)
        .to_vec()
    }

    /// A writer that takes one byte per call and answers every other call with `Pending`
    /// (after waking the task, as a real writer's readiness would), and can be told to answer
    /// `Ok(0)` or fail after a number of bytes.
    #[derive(Debug, Default)]
    struct Trickle {
        received: Vec<u8>,
        pending_next: bool,
        zero_after: Option<usize>,
        fail_after: Option<usize>,
        flushes: usize,
        flush_pending_once: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.pending_next {
                self.pending_next = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.pending_next = true;
            if self.zero_after == Some(self.received.len()) {
                return Poll::Ready(Ok(0));
            }
            if self.fail_after == Some(self.received.len()) {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            self.received.push(buf[0]);
            Poll::Ready(Ok(1))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            if self.flush_pending_once {
                self.flush_pending_once = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Polls `future` until it is ready, checking that every `Pending` came with a wake-up
    /// (otherwise a real runtime would never poll it again). Returns the output and the number
    /// of `Pending`s.
    fn drive<F: Future>(future: F) -> (F::Output, usize) {
        let mut task = task::spawn(future);
        let mut pendings = 0;
        loop {
            match task.poll() {
                Poll::Ready(output) => return (output, pendings),
                Poll::Pending => {
                    assert!(
                        task.is_woken(),
                        "Pending without a wake-up: the task would hang"
                    );
                    pendings += 1;
                    assert!(pendings < 10_000, "no progress");
                }
            }
        }
    }

    #[test]
    fn partial_writes_and_pending_still_deliver_every_byte_in_order() {
        let mut writer = Trickle::default();
        let (result, pendings) = drive(WriteLines::new(stream::iter(joke_lines()), &mut writer));
        result.unwrap();
        let expected = joke_lines().concat();
        assert_eq!(writer.received, expected.as_bytes());
        // One byte per write, and a `Pending` before every write but the first.
        assert_eq!(pendings, expected.len() - 1);
        assert_eq!(writer.flushes, 1);
    }

    #[test]
    fn a_stream_that_is_not_ready_is_waited_for() {
        // A stream that says `Pending` (and wakes the task) before each line.
        let mut not_yet = true;
        let mut lines = joke_lines().into_iter();
        let hesitant = stream::poll_fn(move |cx| {
            not_yet = !not_yet;
            if !not_yet {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(lines.next())
        });
        let mut writer = Trickle::default();
        let (result, _) = drive(WriteLines::new(Box::pin(hesitant), &mut writer));
        result.unwrap();
        assert_eq!(writer.received, joke_lines().concat().as_bytes());
    }

    #[test]
    fn a_zero_length_write_is_an_error_not_a_spin() {
        let mut writer = Trickle {
            zero_after: Some(5),
            ..Trickle::default()
        };
        let (result, _) = drive(WriteLines::new(stream::iter(joke_lines()), &mut writer));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::WriteZero);
        assert_eq!(writer.received, joke_lines().concat().as_bytes()[..5]);
        assert_eq!(writer.flushes, 0);
    }

    #[test]
    fn a_write_error_is_returned_as_it_is() {
        let mut writer = Trickle {
            fail_after: Some(40),
            ..Trickle::default()
        };
        let (result, _) = drive(WriteLines::new(stream::iter(joke_lines()), &mut writer));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(writer.received.len(), 40);
    }

    #[test]
    fn the_flush_comes_last_and_may_be_pending_too() {
        let mut writer = Trickle {
            flush_pending_once: true,
            ..Trickle::default()
        };
        let (result, _) = drive(WriteLines::new(stream::iter(joke_lines()), &mut writer));
        result.unwrap();
        assert_eq!(writer.flushes, 1);
    }

    #[test]
    fn no_lines_writes_nothing_and_flushes() {
        let mut writer = Trickle::default();
        let (result, pendings) = drive(WriteLines::new(
            stream::iter(Vec::<String>::new()),
            &mut writer,
        ));
        result.unwrap();
        assert!(writer.received.is_empty());
        assert_eq!((pendings, writer.flushes), (0, 1));
    }

    /// With a stream and a writer that are always ready, one poll inside a Tokio task stops
    /// when the task's coop budget (128 units) is spent, instead of writing everything.
    #[tokio::test]
    async fn an_always_ready_joke_yields_when_the_coop_budget_is_spent() {
        let lines: Vec<String> = (0..1_000).map(|n| format!("line {n}\n")).collect();
        let expected = lines.concat();
        let mut future = pin!(WriteLines::new(stream::iter(lines), Vec::new()));
        let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "one poll wrote the whole joke");
        let written = future.writer().len();
        assert!(written > 0 && written < expected.len(), "{written} bytes");
        // The rest follows over the next turns.
        future.as_mut().await.unwrap();
        assert_eq!(future.writer(), expected.as_bytes());
    }
}
