//! The command line every act shares.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;
use joke_index::FormatChoice;

use crate::Config;

/// The address a server listens on when `--addr` is not given. (A [`Config::new`] listens on a
/// free port instead, as a test wants.)
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 12345));

/// The options of every joke server (`act1-naive --help` shows them). Their defaults are
/// [`Config`]'s `DEFAULT_*` constants, and [`DEFAULT_ADDR`].
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    #[arg(long, default_value_t = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// The jokes file [default: ./jokes.txt, else the workspace's own jokes.txt]
    #[arg(long)]
    pub jokes: Option<PathBuf>,

    /// Format of the jokes file: detected from its separators, or forced.
    #[arg(long, value_enum, default_value_t = Config::DEFAULT_FORMAT)]
    pub format: FormatChoice,

    /// Length of the queue of connections the kernel completes for us before we accept them
    /// (listen(2)'s backlog; the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = Config::DEFAULT_BACKLOG)]
    pub backlog: u32,

    /// Runtime worker threads [default: one per CPU].
    #[arg(long)]
    pub workers: Option<NonZeroUsize>,

    /// Connections served at once; more wait in the backlog.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: NonZeroUsize,

    /// How long writing one joke may take before the client is given up on.
    #[arg(long, default_value_t = Config::DEFAULT_WRITE_TIMEOUT.into())]
    pub write_timeout: humantime::Duration,

    /// Simulate a slow disk: a blocking sleep of this long wherever the act reads the file.
    #[arg(long, default_value_t = Config::DEFAULT_IO_DELAY.into())]
    pub io_delay: humantime::Duration,

    /// Also answer UDP datagrams on the same address, one joke per datagram.
    #[arg(long)]
    pub udp: bool,
}

impl ServerArgs {
    /// The jokes file to serve: `--jokes`, else `jokes.txt` in the current folder, else the
    /// workspace's own `jokes.txt` (so `cargo run -p act1-naive` works from anywhere in the repo).
    pub fn jokes_path(&self) -> PathBuf {
        self.jokes.clone().unwrap_or_else(default_jokes_path)
    }
}

/// The jokes file a server serves when `--jokes` is not given: `jokes.txt` in the current
/// folder, else the workspace's own `jokes.txt`. Tools that start servers (`bench-client
/// compare`) use it too, so they check jokes against the very file the servers read.
pub fn default_jokes_path() -> PathBuf {
    let here = PathBuf::from("jokes.txt");
    if here.exists() {
        here
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../jokes.txt"))
    }
}

/// For acts with no options of their own.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct NoActArgs {}
