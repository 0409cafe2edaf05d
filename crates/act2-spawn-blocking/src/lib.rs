//! # Act II: the blocking read moves off the worker threads
//!
//! The same blocking read as Act I, handed to [`tokio::task::spawn_blocking`], which runs it
//! on Tokio's blocking pool while the connection's task `.await`s the result. With
//! `--mode block-in-place` it runs in place instead, under [`tokio::task::block_in_place`],
//! which first hands this worker's core to another thread (so it needs the multi-thread
//! runtime: on `--flavor current-thread` this mode is refused at start-up). What each costs is
//! in `docs/src/act2-spawn-blocking.md`.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act2-spawn-blocking -- --io-delay 2ms
//! cargo run --release -p act2-spawn-blocking -- --io-delay 2ms --mode block-in-place
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: the summary line's slow polls. With `spawn-blocking` they stay far below one
//! per joke (a few per hundred on a busy machine, the operating system pausing a worker);
//! with `block-in-place` there is about one per joke, as in Act I, and yet the heartbeat p99
//! stays far below Act I's: a slow poll names the task that held a thread, not the tasks
//! that waited.

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
