//! # Act II: the blocking read moves off the worker threads
//!
//! Act I read the joke with blocking `std::fs` calls right inside the connection's task, and
//! every read held a runtime worker thread hostage. The fix here changes one line: the same
//! blocking read is handed to [`tokio::task::spawn_blocking`], which runs it on Tokio's
//! *blocking pool*, a separate set of threads (up to 512 by default) kept for exactly this. The
//! connection's task `.await`s the result, and while it waits the worker thread is free to
//! accept, write, and run every other connection.
//!
//! There is a second way, chosen with `--mode block-in-place`:
//! [`tokio::task::block_in_place`]. It does not move the work anywhere. It tells the runtime
//! "this worker is about to block": the worker hands the tasks queued on it (and its role of
//! worker) to a fresh thread, then runs the blocking closure right here, in place, and goes
//! back to being a worker afterwards. It needs the multi-thread runtime (it panics on a
//! current-thread runtime, where there is no other thread to hand the work to). It is the true
//! heir of 2018's `tokio_threadpool::blocking`, which the seed article used: same idea, same
//! trade-off. It saves the hop to another thread and back, and the closure may borrow from the
//! task (no `'static` needed), but the *task* itself is stuck for the whole read: anything else
//! it was doing in a `select!` or `join!` waits too.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act2-spawn-blocking -- --io-delay 2ms
//! cargo run --release -p act2-spawn-blocking -- --io-delay 2ms --mode block-in-place
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: stop the server with Ctrl-C and read its last line. With `spawn-blocking`
//! the "polls slower than 1000 µs" count stays near zero: the connection task polls, hands the
//! read away, and returns at once. With `block-in-place` it shows one slow poll per joke, as in
//! Act I, because the task's poll really does last the whole read; the difference is that the
//! runtime moved every *other* task away first, so the burst is served about as fast as with
//! `spawn-blocking` instead of crawling.

use joke_server::{Act, JokeToServe, RuntimeFlavor, ServeError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// ANCHOR: options
/// How the blocking read is kept from stalling the runtime (`--mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Send the read to the blocking pool and await it (`tokio::task::spawn_blocking`).
    #[default]
    SpawnBlocking,
    /// Block this worker in place, after handing its other tasks to another thread
    /// (`tokio::task::block_in_place`).
    BlockInPlace,
}

/// This act's own command-line options, parsed next to the shared ones.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Options {
    /// Where the blocking read runs.
    #[arg(long, value_enum, default_value_t = Mode::SpawnBlocking)]
    pub mode: Mode,
}
// ANCHOR_END: options

/// Reads each joke with the same blocking calls as Act I, but not on a worker thread's time:
/// on the blocking pool through `spawn_blocking` (the default), or in place after handing the
/// worker's other tasks away (`--mode block-in-place`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpawnBlocking {
    mode: Mode,
}

impl SpawnBlocking {
    /// The act, reading the way `options.mode` says.
    pub fn new(options: Options) -> Self {
        SpawnBlocking { mode: options.mode }
    }
}

// ANCHOR: serve
impl Act for SpawnBlocking {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        let text = match self.mode {
            Mode::SpawnBlocking => {
                // The closure must own what it uses (`'static`): it runs on another thread,
                // possibly after this task is gone. `JokeToServe` is cheap to clone (an `Arc`).
                let reader = joke.clone();
                tokio::task::spawn_blocking(move || reader.read_blocking())
                    .await
                    // The outer error: the blocking task panicked or was cancelled.
                    .map_err(|error| joke.read_task_failed(error))??
            }
            // The closure may borrow `joke`: it runs right here, before this line returns.
            Mode::BlockInPlace => tokio::task::block_in_place(|| joke.read_blocking())?,
        };
        socket.write_all(text.as_bytes()).await?;
        Ok(())
    }

    // ANCHOR: check_runtime
    fn check_runtime(&self, flavor: RuntimeFlavor) -> Result<(), String> {
        if self.mode == Mode::BlockInPlace && flavor == RuntimeFlavor::CurrentThread {
            return Err("--mode block-in-place needs the multi-thread runtime: \
                        tokio::task::block_in_place panics on a current-thread runtime, which \
                        has no other thread to hand its tasks to while this one blocks"
                .into());
        }
        Ok(())
    }
    // ANCHOR_END: check_runtime
}
// ANCHOR_END: serve
