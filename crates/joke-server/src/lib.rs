//! The harness every act shares.
//!
//! Each act of the tutorial is one connection handler: an implementation of [`Act`] that writes
//! one joke to a socket. Everything around it is the same for all seven and lives here, once:
//!
//! - the command line ([`ServerArgs`]) and the runtime, built by hand: multi-thread with
//!   `--workers` threads, or current-thread (`--flavor`);
//! - the listener, bound through `TcpSocket` so that `--backlog` reaches listen(2);
//! - the accept loop, with a connection limit and a back-off when the process runs out of file
//!   descriptors;
//! - per connection: a write timeout, then the RFC 865 close (shut down our side, drain what the
//!   client sent, then close) so a client that talks still receives its whole joke;
//! - the jokes ([`Jokes`]): one file or a directory of them (fortune's layout and choice),
//!   each file's index rebuilt when it changes;
//! - graceful shutdown on SIGINT and SIGTERM (serving the connections already queued, and
//!   ending the process within the grace period and a margin however blocked it is), a reload
//!   on SIGHUP, the live counters on SIGUSR1;
//! - statistics from `tokio-metrics`: how many polls of a connection task took longer than a
//!   millisecond (a task that *held* a thread), and the victims' side, how long tasks *waited*:
//!   a heartbeat's lateness, the connection tasks' scheduling delay, the workers' busy time.
//!
//! An act's binary is a few lines:
//!
//! ```no_run
//! # struct Naive;
//! # impl joke_server::Act for Naive {
//! #     async fn serve_joke(&self, _: joke_server::JokeToServe, _: &mut tokio::net::TcpStream)
//! #         -> Result<(), joke_server::ServeError> { Ok(()) }
//! # }
//! fn main() -> std::process::ExitCode {
//!     joke_server::run_act(env!("CARGO_PKG_NAME"), Naive)
//! }
//! ```

pub mod activation;
mod cli;
pub mod console;
mod entry;
mod heartbeat;
mod jokes;
mod lines;
mod log_queue;
mod per_address;
mod proxy;
mod server;
mod shutdown;
mod stats;
#[cfg(feature = "supervisor")]
pub mod supervisor;
pub mod timeline;
mod udp;
pub mod wire;

pub use cli::{
    BUILT_IN_JOKES, DEFAULT_ADDR, Flavor, NoActArgs, ServerArgs, default_jokes_path,
    parse_at_least_one, parse_duration,
};
pub use entry::{run_act, run_act_from, run_act_with};
pub use heartbeat::HEARTBEAT_PERIOD;
pub use jokes::{
    BlockingLines, JokeChoice, JokeToServe, Jokes, LoadError, MAX_LINE_BYTES, Reload, SETTLE_TIME,
    Shelf,
};
pub use lines::JokeLines;
pub use server::{Config, ReloadHandle, Server, StartError};
pub use shutdown::MARGIN as SHUTDOWN_MARGIN;
pub use stats::{SLOW_POLL, Stats, StatsSummary};
pub use udp::{MAX_REPLY as UDP_MAX_REPLY, MAX_SOURCES as UDP_MAX_SOURCES, UdpLimits};

use std::future::Future;
use std::io;
use std::sync::Arc;

use joke_index::{Index, ReadError};
use tokio::net::TcpStream;
pub use tokio::runtime::RuntimeFlavor;

/// One way of serving a joke: the lesson of an act.
///
/// The harness accepts a connection, picks a joke, and calls [`serve_joke`](Act::serve_joke).
/// The act writes the joke's served form to the socket, doing its file I/O the way its chapter
/// teaches, and returns. The harness then closes the connection politely.
///
/// The method is declared as returning `impl Future + Send` rather than as an `async fn`
/// because the harness runs every connection with `tokio::spawn`, which may move the task
/// between worker threads and so needs the future to be `Send`. An implementation may still
/// be written as an `async fn`; the compiler then checks that its future is `Send`.
// ANCHOR: act_trait
pub trait Act: Send + Sync + 'static {
    /// Writes joke `joke` to `socket`.
    ///
    /// When reading the joke fails, the act must return the [`ServeError::Read`] *before* it
    /// has written anything: the harness reacts to a stale index by rebuilding it and calling
    /// again, and a client must never receive part of one joke followed by another. An act
    /// that streams the joke as it reads it may learn of the failure after writing part of it:
    /// it returns [`ServeError::CutShort`], and the harness resets the connection.
    fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> impl Future<Output = Result<(), ServeError>> + Send;

    /// Called off the runtime after the jokes file has been indexed (at start-up and after every
    /// reload), before any connection is served from the new index. Acts that read the file for
    /// every joke have nothing to do here; the cached finale loads every joke into memory.
    fn index_loaded(&self, index: &Arc<Index>) -> Result<(), ReadError> {
        let _ = index;
        Ok(())
    }

    /// Whether the act can run on a runtime of `flavor` (`--flavor`); `Err` says why not.
    /// Called before the runtime is built, so that an act that cannot is refused at start-up
    /// with that message and exit code 2, rather than panicking at its first connection.
    /// Most acts run on either.
    fn check_runtime(&self, flavor: RuntimeFlavor) -> Result<(), String> {
        let _ = flavor;
        Ok(())
    }
}
// ANCHOR_END: act_trait

/// Why an act could not serve its joke.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading the joke from the file failed; nothing was written.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Reading failed after part of the joke was written (an act that sends each line as it
    /// reads it): the harness ends the connection with a reset, so that the client cannot
    /// take the part it received for a whole joke.
    #[error("the joke was cut short: {0}")]
    CutShort(ReadError),
    /// Writing to the client failed (it went away, reset, or the write timed out).
    #[error("writing to the client: {0}")]
    Write(#[from] io::Error),
}

/// A blocking sleep of `delay`: the simulated slow disk of `--io-delay`, placed by each act
/// exactly where it does its own file I/O (so on a worker thread in act 1, on the blocking pool
/// in the others).
// ANCHOR: simulate_slow_disk
pub fn simulate_slow_disk(delay: std::time::Duration) {
    simulate_slow_disk_for(delay, None);
}

/// [`simulate_slow_disk`] for the joke of `connection` (when the caller knows it): the sleep
/// is one interval of the `--timeline`, when one is recorded (see the `timeline` module).
pub(crate) fn simulate_slow_disk_for(delay: std::time::Duration, connection: Option<u64>) {
    if !delay.is_zero() {
        timeline::io_delay(connection, || std::thread::sleep(delay));
    }
}
// ANCHOR_END: simulate_slow_disk
