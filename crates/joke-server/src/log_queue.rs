//! The log's writer: stderr, written by a thread of its own, so that logging never blocks a
//! worker.
//!
//! A write to a pipe blocks while the pipe is full, and a pipe is full whenever its reader is
//! alive but not reading: a stalled journald, a `| less` left open, a supervisor busy with
//! something else. Log lines are written by whichever thread logs, and that is mostly the
//! runtime's workers, so a log reader that stops reading would stop the serving: the very
//! blocking-in-async this book is about, through a door nobody watches. So the subscriber
//! writes into a bounded queue instead (`tracing-appender`'s non-blocking writer), one thread
//! drains the queue into stderr, and a line that finds the queue full is dropped and counted
//! rather than waited for. The queue holds [`QUEUE_LINES`] lines; at shutdown the log says how
//! many were dropped, if any were.
//!
//! The other end matters as much: the last lines (the shutdown summary, the statistics) are
//! still in the queue when the process is about to end, and an exit does not wait for them.
//! [`finish`] waits until the writer thread has written every line queued so far, for at most
//! [`FINISH_WITHIN`], so that a reader who reads normally sees them all and one who never reads
//! again does not hold the exit.
//!
//! `tracing-appender` offers a guard whose drop does that wait, but this module keeps the guard
//! for the life of the process and never drops it: when the queue stays full for 100 ms, the
//! guard's drop reports it with `println!`, onto stdout, where the statistics line must be the
//! last, and a `println!` to a closed stdout panics. Instead, the lines offered and the lines
//! written are counted here, and [`finish`] waits for the two to meet.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;

/// How many log lines may wait for the writer thread. A few hundred kilobytes at most: enough
/// for any burst of `info` lines, and a stalled reader costs no more memory than that.
pub const QUEUE_LINES: usize = 4096;

/// How long [`finish`] waits for the queued lines to be written. A reader that reads gets them
/// in microseconds; one that has stopped reading never will, and must not hold the exit.
pub const FINISH_WITHIN: Duration = Duration::from_millis(500);

/// Lines offered to the queue and lines the writer thread is done with (written, or failed
/// because nobody holds the pipe any more).
#[derive(Debug, Default)]
struct Counts {
    offered: AtomicU64,
    done: AtomicU64,
}

/// The queue of the process, made by the first [`stderr`] and never dropped.
#[derive(Debug)]
struct Queue {
    writer: NonBlocking,
    dropped: ErrorCounter,
    counts: Arc<Counts>,
    /// Dropped lines already reported by [`finish`].
    reported: AtomicUsize,
    /// Kept, never dropped: see the module's comment.
    _guard: WorkerGuard,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// The subscriber's writer: stderr through the queue (one queue per process, however often this
/// is called).
pub(crate) fn stderr() -> Writer {
    let queue = QUEUE.get_or_init(|| Queue::new(std::io::stderr()));
    Writer {
        queue: queue.writer.clone(),
        counts: Arc::clone(&queue.counts),
    }
}

/// Before the process ends: logs how many lines were dropped since the last call (if any),
/// then waits until every line queued so far has been written, for at most [`FINISH_WITHIN`].
pub(crate) fn finish() {
    if let Some(queue) = QUEUE.get() {
        queue.report_dropped();
        queue.wait_until_written(FINISH_WITHIN);
    }
}

/// Waits until every line queued so far has been written, for at most [`FINISH_WITHIN`].
pub(crate) fn write_out() {
    if let Some(queue) = QUEUE.get() {
        queue.wait_until_written(FINISH_WITHIN);
    }
}

/// Logs how many lines were dropped since the last report, if any: with the live statistics,
/// so that a log that lost lines says so while the server runs, not only when it stops.
pub(crate) fn report_dropped() {
    if let Some(queue) = QUEUE.get() {
        queue.report_dropped();
    }
}

/// Calls [`finish`] when dropped: `run_act_from` holds one, so the queue is written out
/// whichever way it returns.
pub(crate) struct FinishOnDrop;

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        finish();
    }
}

impl Queue {
    fn new(inner: impl Write + Send + 'static) -> Queue {
        let counts = Arc::new(Counts::default());
        let done = Counted {
            inner,
            counts: Arc::clone(&counts),
        };
        // ANCHOR: queue
        // `lossy`: a line that finds the queue full is dropped (and counted), not waited for.
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(QUEUE_LINES)
            .thread_name("log-writer")
            .finish(done);
        // ANCHOR_END: queue
        Queue {
            dropped: writer.error_counter(),
            writer,
            counts,
            reported: AtomicUsize::new(0),
            _guard: guard,
        }
    }

    fn report_dropped(&self) {
        let dropped = self.dropped.dropped_lines();
        let before = self.reported.swap(dropped, Ordering::SeqCst);
        if dropped > before {
            tracing::warn!(
                "{} dropped: stderr was not read as fast as they came, and the log never \
                 waits for its reader",
                crate::stats::plural((dropped - before) as u64, "log line")
            );
        }
    }

    /// Whether every line offered so far is written (or dropped) within `bound`.
    fn wait_until_written(&self, bound: Duration) -> bool {
        let until = Instant::now() + bound;
        loop {
            // `offered` first: a line counted as done was offered before it.
            let offered = self.counts.offered.load(Ordering::SeqCst);
            let settled =
                self.counts.done.load(Ordering::SeqCst) + self.dropped.dropped_lines() as u64;
            if settled >= offered {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// What the subscriber writes one event to: each event is one `write_all`, one line in the
/// queue (or one dropped line).
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: NonBlocking,
    counts: Arc<Counts>,
}

impl Write for Writer {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.counts.offered.fetch_add(1, Ordering::SeqCst);
        // Never blocks: a full queue drops the line and counts it.
        self.queue.write(line)
    }

    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.write(line).map(|_| ())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Writer {
    type Writer = Writer;

    fn make_writer(&'a self) -> Writer {
        self.clone()
    }
}

/// The writer thread's end: the real stderr, counting each line it is done with. A line that
/// cannot be written (the pipe's reader closed it) is done too: the thread drops it and goes on.
struct Counted<W> {
    inner: W,
    counts: Arc<Counts>,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes)
    }

    // The writer thread hands over each queued line with one `write_all`.
    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        let written = self.inner.write_all(line);
        self.counts.done.fetch_add(1, Ordering::SeqCst);
        written
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that blocks until the test lets each write through, as a full pipe does.
    struct Gate {
        open: mpsc::Receiver<()>,
        written: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            // The test ends by dropping its sender: then every write goes through.
            let _ = self.open.recv();
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_reader_drops_lines_instead_of_blocking_and_finish_waits_for_the_rest() {
        let (let_through, open) = mpsc::channel();
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let queue = Queue::new(Gate {
            open,
            written: Arc::clone(&written),
        });
        let mut writer = Writer {
            queue: queue.writer.clone(),
            counts: Arc::clone(&queue.counts),
        };
        // Twice what the queue holds, while the reader takes nothing: every write returns at
        // once (this test would hang otherwise), and about half the lines are dropped.
        let lines = 2 * QUEUE_LINES;
        for n in 0..lines {
            writer.write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        let dropped = queue.dropped.dropped_lines();
        // The writer thread may hold one line, taken off the queue, in its blocked write.
        assert!(
            (lines - QUEUE_LINES - 1..=lines - QUEUE_LINES).contains(&dropped),
            "{dropped} of {lines} dropped"
        );
        // Nothing is written yet, and waiting for it gives up at its bound.
        assert!(!queue.wait_until_written(Duration::from_millis(50)));

        // The reader reads again: every line kept is written, in order, and the wait ends.
        drop(let_through);
        assert!(queue.wait_until_written(Duration::from_secs(10)));
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let kept: Vec<&str> = written.lines().collect();
        assert_eq!(kept.len(), lines - dropped);
        assert_eq!(kept[0], "line 0");
        assert!(kept.windows(2).all(|pair| {
            let number = |line: &str| line[5..].parse::<usize>().unwrap();
            number(pair[0]) < number(pair[1])
        }));
    }

    #[test]
    fn a_closed_pipe_counts_its_lines_as_done() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let queue = Queue::new(Closed);
        let mut writer = Writer {
            queue: queue.writer.clone(),
            counts: Arc::clone(&queue.counts),
        };
        for _ in 0..100 {
            writer.write_all(b"nobody reads this\n").unwrap();
        }
        // The writer thread goes on after each failed write, so the wait ends at once.
        assert!(queue.wait_until_written(Duration::from_secs(10)));
    }
}
