//! Test helpers every act shares, written once.
//!
//! - [`fixture`]: the tricky jokes file every act is checked against, and temporary files.
//! - [`server`]: an act served in-process on `127.0.0.1:0`, on a runtime of its own, stopped
//!   on demand, returning its statistics.
//! - [`client`]: clients with timeouts (polite, talkative, rude, and crowds), and an act's
//!   `serve_joke` run over a real loopback socket pair.
//! - [`load`]: a steady load of clients, with a record of how each connection ended.
//! - [`binary`]: an act's real binary as a child process: started on port 0, stopped with
//!   SIGTERM, or run to its exit when it must refuse to start.
//!
//! The tests themselves (every act's conformance, signals, live edits, hostile clients) are
//! written once, over the list of acts, in `crates/acts/tests/cross_act/`.
//!
//! Every network test talks to loopback only, on a port the kernel picks, with a bounded number
//! of connections and a timeout on every step, so a broken act fails a test instead of hanging
//! it. Nothing waits on the wall clock: tests wait for real signals (a `listening on` line, a
//! joke read to its end, a process exit) and assert on what the server counted.

pub mod binary;
pub mod client;
pub mod fixture;
pub mod load;
pub mod server;

pub use binary::{Exited, RunningBinary, run_to_exit};
pub use client::{client_runtime, fetch_joke, serve_over_socket_pair};
pub use fixture::{JokesFile, fixture_text, short_jokes_text};
pub use server::ServerUnderTest;
