//! The listener, the accept loop and the life of one connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use joke_index::FormatChoice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activation::Inherited;
use crate::jokes::{JokeChoice, LoadError, Reload};
use crate::per_address::PerAddress;
pub use crate::udp::UdpLimits;
use crate::{Act, Jokes, ServeError, ServerArgs, Stats, StatsSummary};

/// Everything a server needs to know, from the command line ([`Config::from_args`]) or from a
/// test ([`Config::new`], then change what the test is about).
///
/// The defaults are defined once, as the `DEFAULT_*` constants below, and used both here and by
/// the command line's `[default: ...]`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (TCP, and UDP with `udp`). Port 0 lets the kernel pick a free
    /// port; [`Server::local_addr`] then says which.
    pub addr: SocketAddr,
    /// The jokes file. It is indexed at start-up and watched afterwards.
    pub jokes: PathBuf,
    /// The jokes file's format: detected from its separators ([`FormatChoice::Auto`]), or forced.
    pub format: FormatChoice,
    /// How a joke is chosen: fortune's weighting, length limits, offensive fortunes.
    pub choice: JokeChoice,
    /// listen(2)'s backlog: how many connections the kernel completes and queues for us before
    /// we accept them. The kernel caps it at `net.core.somaxconn`.
    pub backlog: u32,
    /// Bind with SO_REUSEPORT (`--reuse-port`), so that several processes share the port.
    pub reuse_port: bool,
    /// Read a PROXY protocol header (v1 or v2) before serving, within this long
    /// (`--proxy-protocol`, `--proxy-header-timeout`). `None`: no header is expected.
    pub proxy_protocol: Option<Duration>,
    /// How many connections are served at once. Past it the server stops accepting, and new
    /// connections wait in the backlog.
    pub max_connections: usize,
    /// The deadline for getting the joke ready (`--joke-timeout`): the act's read, a reload, the
    /// wait for a blocking thread, handing the joke to the kernel. Time spent waiting for the
    /// client to take bytes is not counted. Past it the connection is reset, so a cut joke is
    /// not taken as whole.
    pub joke_timeout: Duration,
    /// The write progress timeout (`--write-timeout`): a client that accepts no byte for this
    /// long is cut off. It is the kernel's TCP_USER_TIMEOUT on each connection.
    pub write_timeout: Duration,
    /// At most this many connections at once from one client address (`--max-per-address`;
    /// IPv6 clients by /64). `None`: no such limit.
    pub max_per_address: Option<usize>,
    /// The simulated slow disk (`--io-delay`): a blocking sleep of this long wherever the act
    /// does the file I/O of one joke. Zero for none.
    pub io_delay: Duration,
    /// Whether to answer UDP datagrams too, on the same address, one joke per datagram.
    pub udp: bool,
    /// The UDP answerer's limits (`--udp-rate`, `--udp-burst`, `--udp-global-rate`).
    pub udp_limits: UdpLimits,
    /// After the joke is written: how long to wait for the client to close its side...
    pub drain_timeout: Duration,
    /// ...and how many of its bytes to read and throw away meanwhile.
    pub drain_limit: usize,
    /// On SIGINT/SIGTERM, how long the connections already queued and the jokes in flight get
    /// to finish (`--grace-period`). The process ends at most [`SHUTDOWN_MARGIN`](crate::SHUTDOWN_MARGIN) later.
    pub grace_period: Duration,
    /// How often the jokes file is checked for changes.
    pub reload_interval: Duration,
    /// Sockets a service manager passed (systemd socket activation), used instead of binding
    /// `addr`: then neither `addr` nor `backlog` applies to them.
    pub inherited: Option<Inherited>,
}

impl Config {
    /// The default of `backlog` (`--backlog`).
    pub const DEFAULT_BACKLOG: u32 = 4096;
    /// The default of `max_connections` (`--max-connections`).
    pub const DEFAULT_MAX_CONNECTIONS: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();
    /// The default of `--proxy-header-timeout`.
    pub const DEFAULT_PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(3);
    /// The default of `joke_timeout` (`--joke-timeout`).
    pub const DEFAULT_JOKE_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default of `write_timeout` (`--write-timeout`).
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default of `udp_limits.per_source_rate` (`--udp-rate`).
    pub const DEFAULT_UDP_RATE: NonZeroU32 = NonZeroU32::new(2).unwrap();
    /// The default of `udp_limits.per_source_burst` (`--udp-burst`).
    pub const DEFAULT_UDP_BURST: NonZeroU32 = NonZeroU32::new(5).unwrap();
    /// The default of `udp_limits.global_rate` (`--udp-global-rate`).
    pub const DEFAULT_UDP_GLOBAL_RATE: NonZeroU32 = NonZeroU32::new(200).unwrap();
    /// The default of `io_delay` (`--io-delay`): no simulated delay.
    pub const DEFAULT_IO_DELAY: Duration = Duration::ZERO;
    /// The default of `format` (`--format`).
    pub const DEFAULT_FORMAT: FormatChoice = FormatChoice::Auto;
    /// The default of `drain_timeout`.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default of `drain_limit`.
    pub const DEFAULT_DRAIN_LIMIT: usize = 64 * 1024;
    /// The default of `grace_period` (`--grace-period`).
    pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
    /// The default of `reload_interval`.
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_millis(500);

    /// The defaults of the command line, serving `jokes` on a free loopback port
    /// (`127.0.0.1:0`) rather than the command line's fixed one.
    pub fn new(jokes: impl Into<PathBuf>) -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jokes: jokes.into(),
            format: Self::DEFAULT_FORMAT,
            choice: JokeChoice::default(),
            backlog: Self::DEFAULT_BACKLOG,
            reuse_port: false,
            proxy_protocol: None,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS.get(),
            joke_timeout: Self::DEFAULT_JOKE_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            max_per_address: None,
            io_delay: Self::DEFAULT_IO_DELAY,
            udp: false,
            udp_limits: UdpLimits {
                per_source_rate: Self::DEFAULT_UDP_RATE,
                per_source_burst: Self::DEFAULT_UDP_BURST,
                global_rate: Self::DEFAULT_UDP_GLOBAL_RATE,
            },
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
            drain_limit: Self::DEFAULT_DRAIN_LIMIT,
            grace_period: Self::DEFAULT_GRACE_PERIOD,
            reload_interval: Self::DEFAULT_RELOAD_INTERVAL,
            inherited: None,
        }
    }

    /// The configuration the command line asks for.
    pub fn from_args(args: &ServerArgs) -> Self {
        Config {
            addr: args.addr,
            format: args.format,
            choice: args.joke_choice(),
            backlog: args.backlog,
            reuse_port: args.reuse_port,
            proxy_protocol: args
                .proxy_protocol
                .then_some(args.proxy_header_timeout.into()),
            max_connections: args.max_connections.get(),
            joke_timeout: args.joke_timeout.into(),
            write_timeout: args.write_timeout.into(),
            max_per_address: args.max_per_address.map(NonZeroUsize::get),
            grace_period: args.grace_period.into(),
            io_delay: args.io_delay.into(),
            udp: args.udp,
            udp_limits: UdpLimits {
                per_source_rate: args.udp_rate,
                per_source_burst: args.udp_burst,
                global_rate: args.udp_global_rate,
            },
            ..Config::new(args.jokes_path())
        }
    }
}

/// Why a server could not start. Each is reported with what it names, and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Jokes(#[from] LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot answer UDP on {addr}: {source}")]
    Udp {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(
        "--udp: no joke of {} fits in one datagram of {limit} bytes (RFC 865: \"should be less \
         than 512 characters\"); the shortest is {shortest} bytes",
        path.display()
    )]
    NoJokeFitsUdp {
        path: PathBuf,
        limit: usize,
        shortest: u64,
    },
}

/// A joke server, bound and ready: call [`run`](Server::run) to serve.
#[derive(Debug)]
pub struct Server<A: Act> {
    /// What every connection shares: the act, the jokes, the counters, the limits.
    shared: Arc<Shared<A>>,
    listener: TcpListener,
    udp: Option<(UdpSocket, UdpLimits)>,
    /// How many connections are served at once ([`Config::max_connections`]).
    max_connections: usize,
    /// How long jokes in flight get to finish at shutdown ([`Config::grace_period`]).
    grace_period: Duration,
    /// How often the jokes file is checked for changes ([`Config::reload_interval`]).
    reload_interval: Duration,
}

/// What every connection of one server shares, behind one `Arc`: each connection's task holds a
/// clone of that `Arc`, and nothing else of the server's.
///
/// The path, format and `--io-delay` of the jokes file are not here: [`Jokes`] took them, and
/// every joke it picks carries the delay to wherever the act reads it.
#[derive(Debug)]
struct Shared<A> {
    /// The act, serving one joke per connection. It has an `Arc` of its own because a reload
    /// hands it to the blocking pool ([`Act::index_loaded`]), which needs an owned handle.
    act: Arc<A>,
    /// The jokes file: its current index, swapped for a new one when the file changes.
    jokes: Jokes,
    /// The counters, printed at shutdown. In an `Arc` of their own too, so that the threads
    /// outside the runtime can print them (SIGUSR1, the shutdown watchdog).
    stats: Arc<Stats>,
    /// The time and byte budgets of one connection.
    limits: ConnectionLimits,
    /// The connections open per client address (`--max-per-address`), when limited.
    per_address: Option<PerAddress>,
    /// Bad PROXY headers are logged once in a while, not once each.
    bad_headers: crate::per_address::Quiet,
    /// Cancelled when the shutdown's grace period runs out, to cut the jokes still in flight.
    cut_off: CancellationToken,
}

/// The budgets of one connection, from the [`Config`].
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    /// How long the PROXY header may take to arrive, when one is expected.
    proxy_protocol: Option<Duration>,
    /// How long getting the joke ready may take.
    joke_timeout: Duration,
    /// How long a client may accept no byte.
    write_timeout: Duration,
    /// How long the polite close waits for the client to close its side...
    drain_timeout: Duration,
    /// ...and how many of its bytes it reads meanwhile.
    drain_limit: usize,
}

impl<A: Act> Server<A> {
    /// Indexes the jokes file, lets the act load what it needs, and binds the listener (and
    /// the UDP socket with `udp`). Nothing is served until [`run`](Server::run).
    pub async fn bind(act: A, config: Config) -> Result<Self, StartError> {
        let Config {
            addr,
            jokes,
            format,
            choice,
            backlog,
            reuse_port,
            proxy_protocol,
            max_connections,
            joke_timeout,
            write_timeout,
            max_per_address,
            io_delay,
            udp,
            udp_limits,
            drain_timeout,
            drain_limit,
            grace_period,
            reload_interval,
            inherited,
        } = config;
        let act = Arc::new(act);
        let jokes = {
            let act = Arc::clone(&act);
            tokio::task::spawn_blocking(move || Jokes::load(&*act, jokes, format, choice, io_delay))
                .await
                .expect("indexing the jokes file panicked")?
        };
        let listen_error = |source| StartError::Listen { addr, source };
        // A listener the service manager passed (socket activation), else one of our own.
        let inherited_tcp = inherited.as_ref().and_then(Inherited::tcp_listener);
        let listener = inherited_tcp
            .unwrap_or_else(|| listen(addr, backlog, reuse_port))
            .map_err(listen_error)?;
        let local = listener.local_addr().map_err(listen_error)?;
        let inherited_udp = inherited.as_ref().and_then(Inherited::udp_socket);
        let udp = if udp || inherited_udp.is_some() {
            // Only jokes that fit in one small datagram are sent over UDP; refuse a file that
            // has none rather than answer nothing.
            let sizes = jokes.current().served_sizes();
            if sizes.over_rfc865_limit == sizes.jokes {
                return Err(StartError::NoJokeFitsUdp {
                    path: jokes.path().to_path_buf(),
                    limit: crate::udp::MAX_REPLY,
                    shortest: sizes.shortest,
                });
            }
            let udp = match inherited_udp {
                Some(inherited) => inherited,
                // Same address and port as TCP, so a port-0 server answers both on one number.
                None => UdpSocket::bind(local).await,
            }
            .map_err(|source| StartError::Udp {
                addr: local,
                source,
            })?;
            Some((udp, udp_limits))
        } else {
            None
        };
        let shared = Shared {
            act,
            jokes,
            stats: Arc::default(),
            limits: ConnectionLimits {
                proxy_protocol,
                joke_timeout,
                write_timeout,
                drain_timeout,
                drain_limit,
            },
            cut_off: CancellationToken::new(),
            per_address: max_per_address.map(PerAddress::new),
            bad_headers: crate::per_address::Quiet::default(),
        };
        Ok(Server {
            shared: Arc::new(shared),
            listener,
            udp,
            max_connections,
            grace_period,
            reload_interval,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The server's counters, live.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The server's counters, as a handle that outlives the server (for a thread that prints
    /// them while the runtime is busy).
    pub fn stats_handle(&self) -> Arc<Stats> {
        Arc::clone(&self.shared.stats)
    }

    /// The jokes the server serves.
    pub fn jokes(&self) -> &Jokes {
        &self.shared.jokes
    }

    /// A handle that rebuilds the index on demand (the binaries call it on SIGHUP).
    pub fn reload_handle(&self) -> ReloadHandle<A> {
        ReloadHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, gives the jokes in flight up
    /// to the grace period to finish, and returns the final counters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> StatsSummary {
        let Server {
            shared,
            listener,
            udp,
            max_connections,
            grace_period,
            reload_interval,
        } = self;
        // ANCHOR: shutdown_setup
        // Cancelling this token tells the background tasks (file watcher, UDP) to stop.
        let stopping = CancellationToken::new();
        let watcher = tokio::spawn(watch_jokes_file(
            Arc::clone(&shared),
            reload_interval,
            stopping.clone(),
        ));
        let udp_task = udp.map(|(udp, limits)| {
            let (shared, stopping) = (Arc::clone(&shared), stopping.clone());
            tokio::spawn(async move {
                crate::udp::answer(udp, limits, &shared.jokes, &shared.stats, stopping).await
            })
        });
        let mut listener = Listener::new(listener, Arc::clone(&shared), max_connections);
        // Every connection task is spawned through the tracker, so that shutdown can wait for
        // exactly those tasks to finish.
        let connections = listener.connections.clone();
        // The heartbeat: the delay any ordinary task of this runtime suffers (heartbeat.rs).
        let heartbeat = tokio::spawn({
            let (shared, connections, stopping) =
                (Arc::clone(&shared), connections.clone(), stopping.clone());
            async move { shared.stats.heartbeat.beat(connections, stopping).await }
        });
        // ANCHOR_END: shutdown_setup

        // ANCHOR: run_until_shutdown
        tokio::select! {
            () = crate::timeline::accept_loop(listener.run()) => {}
            () = shutdown => {
                tracing::info!(
                    "shutting down: no new connections; {} in flight, {grace_period:?} to \
                     finish (a second Ctrl-C stops at once)",
                    crate::stats::plural(connections.len() as u64, "connection"),
                );
            }
        }
        // ANCHOR_END: run_until_shutdown
        // ANCHOR: shutdown
        // The grace period covers both what follows: serving the queue, and the jokes in flight.
        let grace_over = tokio::time::Instant::now() + grace_period;
        stopping.cancel();
        // Connections the kernel already completed for us sit in the accept queue: their
        // clients' connect() returned, and they are waiting for a joke. Serve them, then close
        // the listener, which makes the kernel refuse new connections instead of queueing them
        // for an accept that will never come.
        if tokio::time::timeout_at(grace_over, listener.serve_the_queue())
            .await
            .is_err()
        {
            tracing::warn!("the grace period ran out while the accept queue was being served");
        }
        connections.close();
        if tokio::time::timeout_at(grace_over, connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} still open after the {grace_period:?} grace period; cutting them off",
                crate::stats::plural(connections.len() as u64, "connection"),
            );
            // Each of them resets its connection, so no client mistakes a cut joke for a
            // whole one; then they are gone.
            shared.cut_off.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), connections.wait()).await;
        }
        let _ = watcher.await;
        let _ = heartbeat.await;
        if let Some(task) = udp_task {
            let _ = task.await;
        }
        shared.stats.summary()
        // ANCHOR_END: shutdown
    }
}

/// Rebuilds a running server's index on demand.
#[derive(Debug)]
pub struct ReloadHandle<A: Act> {
    shared: Arc<Shared<A>>,
}

impl<A: Act> ReloadHandle<A> {
    /// Rebuilds the index now, even if the file looks unchanged.
    pub async fn reload(&self) -> Reload {
        self.shared.jokes.reload(&self.shared.act, true).await
    }
}

/// Binds through `TcpSocket` so that we choose listen(2)'s backlog. `TcpListener::bind` listens
/// with a backlog of 128: a burst of 1000 connections overflows it, the kernel drops the extra
/// SYNs, and those clients wait a full second for their retransmission.
// ANCHOR: listen
fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server bind while old connections sit in TIME_WAIT. It does not let two
    // servers listen on one port: that still fails with "address in use" (unless both ask for
    // SO_REUSEPORT, below).
    socket.set_reuseaddr(true)?;
    // With SO_REUSEPORT, every socket bound to the port with it set (by the same user) joins
    // one group, and the kernel hands each new connection to one of them by a hash of its
    // addresses and ports: several processes share the port, and a new process can start
    // before the old one stops (a rolling restart with no moment where nobody listens).
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(backlog)
}
// ANCHOR_END: listen

/// The accept loop and what it needs: the listening socket, the connection limit, the tracker
/// of connection tasks, and the back-off for failed accepts.
#[derive(Debug)]
struct Listener<A> {
    listener: TcpListener,
    shared: Arc<Shared<A>>,
    /// The connection limit. A permit is taken *before* accepting, so at the limit we stop
    /// calling accept and new connections wait in the kernel's backlog, rather than being
    /// accepted and then left hanging. The permit moves into the connection's task and is
    /// released when the task ends.
    limit: Arc<Semaphore>,
    /// Every connection task is spawned through it, so that shutdown can wait for them.
    connections: TaskTracker,
    backoff: AcceptBackoff,
}

impl<A: Act> Listener<A> {
    fn new(listener: TcpListener, shared: Arc<Shared<A>>, max_connections: usize) -> Self {
        Listener {
            listener,
            shared,
            limit: Arc::new(Semaphore::new(max_connections)),
            connections: TaskTracker::new(),
            backoff: AcceptBackoff::default(),
        }
    }

    /// Accepts connections forever, one task each.
    // ANCHOR: accept_loop
    async fn run(&mut self) {
        loop {
            let permit = Arc::clone(&self.limit)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (socket, peer) = match self.listener.accept().await {
                Ok(accepted) => {
                    self.backoff.succeeded();
                    accepted
                }
                Err(error) => {
                    self.shared.stats.accept_failed();
                    self.backoff.failed(&error).await;
                    continue;
                }
            };
            spawn_handler(&self.connections, &self.shared, socket, peer, permit);
        }
    }
    // ANCHOR_END: accept_loop

    /// At shutdown: accepts what is already in the accept queue, each within the connection
    /// limit, until the queue is empty; then the listener is closed.
    ///
    /// The accepts are made directly on the socket (non-blocking) rather than through Tokio's
    /// readiness events: "no event yet" is not "empty", and only accept(2)'s EAGAIN says the
    /// queue is empty. A handshake that completes after that last accept and before the close
    /// is still reset by the kernel: a small race that only keeping the listener open avoids.
    async fn serve_the_queue(self) {
        let Listener {
            listener,
            shared,
            limit,
            connections,
            ..
        } = self;
        let listener = match listener.into_std() {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!("cannot serve the accept queue: {error}");
                return;
            }
        };
        let mut queued = 0u64;
        loop {
            let permit = Arc::clone(&limit)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if AcceptFailure::of(&error) == AcceptFailure::OneConnection => continue,
                Err(error) => {
                    shared.stats.accept_failed();
                    tracing::warn!("accept failed while serving the queue: {error}");
                    break;
                }
            };
            // A socket accepted through std is blocking; Tokio's must not be.
            let socket = match socket
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(socket))
            {
                Ok(socket) => socket,
                Err(_) => continue,
            };
            queued += 1;
            spawn_handler(&connections, &shared, socket, peer, permit);
        }
        if queued > 0 {
            tracing::info!("served the accept queue: {queued} connections");
        }
    }
}

/// Spawns the task of one accepted connection, holding `permit` until it ends.
fn spawn_handler<A: Act>(
    connections: &TaskTracker,
    shared: &Arc<Shared<A>>,
    socket: TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    // The task's one handle on the server: a clone of the shared state's `Arc`.
    let own = Arc::clone(shared);
    let task = async move {
        let handler = Handler {
            shared: &own,
            socket,
            peer,
        };
        own.stats.time_polls(handler.run()).await;
        drop(permit);
    };
    // Drawn on the `--timeline`, poll by poll, when one is recorded.
    connections.spawn(crate::timeline::connection_task(
        shared.stats.instrument(task),
    ));
}

/// What to do when `accept` fails.
///
/// Some failures concern only the connection being accepted (the client gave up already):
/// carry on at once. Others mean the process is out of something, typically file descriptors
/// (EMFILE). Retrying at once would fail again, spinning a core at 100%; exiting would turn a
/// load spike into an outage. So we sleep, doubling the pause each time up to a second.
///
/// At the edge of the limit, accepts tend to flap (one fails, the next succeeds because a
/// connection just closed, the one after fails again). Failures less than
/// [`QUIET`](Self::QUIET) apart belong to one episode: it is reported once when it starts and
/// once when accepting first works again, and its pause keeps growing.
#[derive(Debug, Default)]
struct AcceptBackoff {
    /// The pause after the last failure.
    pause: Duration,
    /// When `accept` last failed.
    last_failure: Option<Instant>,
    /// The episode's warning is out, and its recovery not yet announced.
    reported: bool,
}

impl AcceptBackoff {
    // ANCHOR: backoff_pauses
    const FIRST: Duration = Duration::from_millis(5);
    const LONGEST: Duration = Duration::from_secs(1);
    const QUIET: Duration = Duration::from_secs(5);
    // ANCHOR_END: backoff_pauses

    // ANCHOR: backoff
    async fn failed(&mut self, error: &io::Error) {
        if AcceptFailure::of(error) == AcceptFailure::OneConnection {
            tracing::debug!("accept: {error}");
            return;
        }
        let now = Instant::now();
        let same_episode = self
            .last_failure
            .is_some_and(|at| now.duration_since(at) < Self::QUIET);
        if same_episode {
            self.pause = (self.pause * 2).clamp(Self::FIRST, Self::LONGEST);
            tracing::debug!("accept failed again: {error}");
        } else {
            self.pause = Self::FIRST;
            self.reported = true;
            tracing::warn!("accept failed: {error}; backing off until it works again");
        }
        self.last_failure = Some(now);
        tokio::time::sleep(self.pause).await;
    }
    // ANCHOR_END: backoff

    // ANCHOR: backoff_recovered
    fn succeeded(&mut self) {
        if std::mem::take(&mut self.reported) {
            tracing::info!("accepting connections again");
        }
    }
    // ANCHOR_END: backoff_recovered
}

/// The two kinds of `accept` failure, which call for opposite reactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AcceptFailure {
    /// The failure belongs to the one pending connection `accept` was taking (the client gave
    /// up, or its network path failed): the next connection in the queue is unaffected, so
    /// accept again at once. accept(2) on Linux passes some network errors of the new socket
    /// through, and says to treat them like EAGAIN, by retrying.
    OneConnection,
    /// The process or the system is out of something (file descriptors, socket buffers,
    /// memory), or the error is one we do not know: retrying at once would fail again, so back
    /// off.
    OutOfResources,
}

impl AcceptFailure {
    /// The errors of one pending connection, as errno values: accept(2)'s "Error handling"
    /// list, which Rust's `io::ErrorKind` has no kinds for.
    const ONE_CONNECTION_ERRNOS: [rustix::io::Errno; 8] = {
        use rustix::io::Errno;
        [
            Errno::PROTO,
            Errno::NOPROTOOPT,
            Errno::HOSTDOWN,
            Errno::NONET,
            Errno::HOSTUNREACH,
            Errno::OPNOTSUPP,
            Errno::NETUNREACH,
            Errno::NETDOWN,
        ]
    };

    fn of(error: &io::Error) -> Self {
        use io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
        ) {
            return AcceptFailure::OneConnection;
        }
        match rustix::io::Errno::from_io_error(error) {
            Some(errno) if Self::ONE_CONNECTION_ERRNOS.contains(&errno) => {
                AcceptFailure::OneConnection
            }
            // EMFILE, ENFILE, ENOBUFS, ENOMEM, and whatever else: back off.
            _ => AcceptFailure::OutOfResources,
        }
    }
}

/// One connection, from accept to close.
#[derive(Debug)]
struct Handler<'a, A> {
    /// The server's shared state, borrowed from the `Arc` the connection's task holds.
    shared: &'a Shared<A>,
    socket: TcpStream,
    /// The client's address, as accept(2) reported it.
    peer: SocketAddr,
}

/// How the serving of one joke ended, when it did not end with the act's own result.
enum Cut {
    /// `--joke-timeout` ran out while the act was not waiting for the client.
    JokeTimeout,
    /// The shutdown's grace period is over.
    GraceOver,
}

impl<A: Act> Handler<'_, A> {
    /// The life of one connection: admit it (the per-address limit), serve the joke (within
    /// the joke deadline, the write progress timeout watching the client), then close in the
    /// RFC 865 way.
    async fn run(mut self) {
        let Shared {
            stats,
            limits,
            cut_off,
            per_address,
            bad_headers,
            ..
        } = self.shared;
        // Who the client is: the peer, or behind a balancer the one its PROXY header names.
        let client = match limits.proxy_protocol {
            None => self.peer,
            Some(timeout) => match crate::proxy::read_header(&mut self.socket, timeout).await {
                Ok(crate::proxy::Said::Client(client)) => {
                    stats.proxied();
                    client
                }
                Ok(crate::proxy::Said::Local) => {
                    // A health check of the balancer: it has what it wanted (a connection and
                    // a server that speaks the protocol), and closes.
                    stats.health_check();
                    return close_politely(self.socket, limits.drain_timeout, 0).await;
                }
                Err(crate::proxy::HeaderError::ClosedEarly) => {
                    stats.proxy_closed_early();
                    tracing::debug!("{}: closed before its PROXY header", self.peer);
                    return;
                }
                Err(error) => {
                    stats.proxy_header_refused();
                    if bad_headers.due() {
                        tracing::warn!(
                            "{}: {error}; closing it unserved (counted in \
                             proxy_header_refusals; logged at most every {:?})",
                            self.peer,
                            crate::per_address::Quiet::EVERY
                        );
                    }
                    return abort(self.socket);
                }
            },
        };
        // Held until the connection ends; `None` when per-address limits are off.
        let _slot = match per_address {
            Some(per_address) => match per_address.admit(client.ip()) {
                Some(slot) => Some(slot),
                None => {
                    // No joke, and a reset rather than a clean end: a clean end of an empty
                    // stream would read as an empty joke.
                    stats.per_address_refused();
                    per_address.report_refusal(client.ip());
                    return abort(self.socket);
                }
            },
            None => None,
        };
        // Streaming acts write a joke line by line. With Nagle's algorithm on, the second small
        // write would wait for the client's acknowledgement of the first, which a client may
        // delay by up to 40 ms. We want to measure the acts, not that interaction.
        let _ = self.socket.set_nodelay(true);
        // ANCHOR: write_progress
        // The write progress timeout is the kernel's: with TCP_USER_TIMEOUT, when bytes we
        // sent stay unacknowledged (or cannot be sent, the client's window being zero) for this
        // long, the kernel gives the connection up and the blocked write fails with ETIMEDOUT.
        // A slow client that keeps taking bytes resets that clock with every acknowledgement.
        let millis = u32::try_from(limits.write_timeout.as_millis()).unwrap_or(u32::MAX);
        let _ = rustix::net::sockopt::set_tcp_user_timeout(&self.socket, millis.max(1));
        // ANCHOR_END: write_progress
        // A second descriptor of the same socket, through which the joke deadline looks at the
        // socket while the act holds it (see `within_joke_deadline`). Out of descriptors, the
        // deadline simply counts the time spent waiting for the client too.
        let probe = std::os::fd::AsFd::as_fd(&self.socket)
            .try_clone_to_owned()
            .ok();
        // ANCHOR: serve_connection
        let served = tokio::select! {
            served = within_joke_deadline(
                self.serve_with_fresh_index(),
                probe.as_ref(),
                limits.joke_timeout,
            ) => served,
            // The shutdown's grace period is over: this joke will not be finished.
            () = cut_off.cancelled() => Err(Cut::GraceOver),
        };
        // The probe must be closed before the socket: the socket's last descriptor closing is
        // what sends the FIN (or the reset).
        drop(probe);
        match served {
            Ok(Ok(())) => {
                stats.served();
                tracing::debug!("served a joke to {client}");
            }
            Ok(Err(ServeError::Read(error))) => {
                // Nothing was written; the client gets a clean close and no joke.
                stats.read_failed();
                tracing::debug!("no joke served: {error}");
            }
            Ok(Err(ServeError::CutShort(error))) => {
                // Part of the joke went out; a reset tells the client it is not whole.
                stats.read_failed();
                tracing::debug!("joke cut short: {error}");
                return abort(self.socket);
            }
            Ok(Err(ServeError::Write(error))) if error.kind() == io::ErrorKind::TimedOut => {
                stats.write_timed_out();
                tracing::debug!(
                    "the client took no byte for {:?}: {error}",
                    limits.write_timeout
                );
                return abort(self.socket);
            }
            Ok(Err(ServeError::Write(error))) => {
                stats.write_failed();
                tracing::debug!("client went away: {error}");
                return;
            }
            Err(Cut::JokeTimeout) => {
                stats.joke_timed_out();
                tracing::debug!("the joke was not ready within {:?}", limits.joke_timeout);
                return abort(self.socket);
            }
            Err(Cut::GraceOver) => {
                tracing::debug!("cut off by the end of the shutdown grace period");
                return abort(self.socket);
            }
        }
        close_politely(self.socket, limits.drain_timeout, limits.drain_limit).await;
        // ANCHOR_END: serve_connection
    }

    /// Serves one joke; if the file changed since the index was built, rebuilds the index and
    /// tries again (nothing has been written when an act reports a read error).
    // ANCHOR: retry
    async fn serve_with_fresh_index(&mut self) -> Result<(), ServeError> {
        const ATTEMPTS: usize = 3;
        let Shared { act, jokes, .. } = self.shared;
        let mut attempt = 1;
        loop {
            let joke = jokes.pick();
            match act.serve_joke(joke, &mut self.socket).await {
                Err(ServeError::Read(error)) if error.is_stale() && attempt < ATTEMPTS => {
                    if jokes.reload(act, false).await == Reload::Failed {
                        return Err(ServeError::Read(error));
                    }
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
    // ANCHOR_END: retry
}

/// Runs `serve` within the joke deadline, not counting the time it waits for the client.
///
/// When `deadline` has passed, the deadline looks at the socket through `probe` (a second
/// descriptor of it): a socket that cannot take more bytes means the act is waiting for the
/// client to read, which is the write progress timeout's business (the kernel's
/// TCP_USER_TIMEOUT), so the deadline looks again a little later. A socket that could take
/// bytes while the act still has not finished means the act is waiting for something else
/// (a slow disk, a reload, a busy blocking pool): the joke timed out.
///
/// `serve` is polled first every time (`biased`), so when the deadline looks, the act has
/// just had its chance to write whatever the socket could take. Room in the buffer can still
/// appear between that poll and the look (the client read just then), so room must be seen
/// twice, [`CONFIRM`] apart, with the act polled in between, before the joke is given up on.
// ANCHOR: joke_deadline
async fn within_joke_deadline<T>(
    serve: impl Future<Output = T>,
    probe: Option<&std::os::fd::OwnedFd>,
    deadline: Duration,
) -> Result<T, Cut> {
    const LOOK_AGAIN: Duration = Duration::from_millis(100);
    const CONFIRM: Duration = Duration::from_millis(10);
    let mut serve = std::pin::pin!(serve);
    let mut until = tokio::time::Instant::now() + deadline;
    let mut room_seen = false;
    loop {
        tokio::select! {
            biased;
            result = &mut serve => return Ok(result),
            () = tokio::time::sleep_until(until) => {}
        }
        let Some(probe) = probe else {
            return Err(Cut::JokeTimeout);
        };
        if !can_take_bytes(probe) {
            // Waiting for the client: the write timeout's business.
            room_seen = false;
            until += LOOK_AGAIN;
        } else if room_seen {
            return Err(Cut::JokeTimeout);
        } else {
            room_seen = true;
            until = tokio::time::Instant::now() + CONFIRM;
        }
    }
}
// ANCHOR_END: joke_deadline

/// Whether the socket has room in its send buffer now: poll(2) with no wait, for POLLOUT.
fn can_take_bytes(socket: &std::os::fd::OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(socket, PollFlags::OUT)];
    match rustix::event::poll(
        &mut fds,
        Some(&rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    ) {
        Ok(_) => fds[0].revents().contains(PollFlags::OUT),
        // Cannot tell: do not hold the connection on a guess.
        Err(_) => true,
    }
}

/// Ends a connection whose joke was cut short with a reset rather than the usual end-of-file.
///
/// RFC 865 sends no length: a client knows it has the whole joke because the stream ended
/// cleanly. A clean end after half a joke would pass for a complete one; a reset says "this
/// was cut". A zero linger makes close(2) send RST instead of FIN.
// ANCHOR: abort
fn abort(socket: TcpStream) {
    let _ = socket.set_zero_linger();
    drop(socket);
}
// ANCHOR_END: abort

/// RFC 865's close. The server never needs the client's bytes, but if it closes a socket
/// whose receive queue holds unread bytes, the kernel answers with a reset, and a reset can
/// destroy the joke still in flight to the client. So: shut down our writing side (the client
/// sees end-of-file after the joke), read and discard what the client sends until it closes
/// too, within a time and byte budget, and only then close.
// ANCHOR: rfc865_close
async fn close_politely(mut socket: TcpStream, timeout: Duration, limit: usize) {
    if socket.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut discard = [0u8; 4096];
        let mut drained = 0;
        while drained < limit {
            match socket.read(&mut discard).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
}
// ANCHOR_END: rfc865_close

/// Checks the jokes file every `interval`, and rebuilds the index when it changed.
async fn watch_jokes_file<A: Act>(
    shared: Arc<Shared<A>>,
    interval: Duration,
    stopping: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = ticks.tick() => {
                shared.jokes.reload(&shared.act, false).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `count` connections at once to a listener that never accepts, and counts those
    /// the kernel completed within `patience`. A connection can only complete into the accept
    /// queue, whose length is the listen backlog; past it, Linux drops the SYN and the client
    /// waits a full second before trying again, so `patience` stays below a second.
    async fn completed_without_accept(addr: SocketAddr, count: usize) -> usize {
        let patience = Duration::from_millis(700);
        let attempts: Vec<_> = (0..count)
            .map(|_| tokio::spawn(tokio::time::timeout(patience, TcpStream::connect(addr))))
            .collect();
        let mut completed = Vec::new();
        for attempt in attempts {
            if let Ok(Ok(Ok(stream))) = attempt.await {
                completed.push(stream);
            }
        }
        completed.len()
    }

    #[tokio::test]
    async fn the_backlog_we_ask_for_reaches_listen() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let small = listen(loopback, 8, false).unwrap();
        let large = listen(loopback, 1024, false).unwrap();

        let into_small = completed_without_accept(small.local_addr().unwrap(), 200).await;
        let into_large = completed_without_accept(large.local_addr().unwrap(), 200).await;

        // Linux queues backlog + 1 connections; allow a little slack for the kernel's rounding.
        assert!(
            into_small <= 16,
            "backlog 8 let {into_small} connections complete"
        );
        assert_eq!(
            into_large, 200,
            "backlog 1024 must hold all 200 connections"
        );
    }

    /// Feeds `backoff` one failure with errno `errno`; says whether it started (or continued)
    /// a back-off episode.
    async fn backs_off_after(errno: rustix::io::Errno) -> bool {
        let mut backoff = AcceptBackoff::default();
        let error = io::Error::from_raw_os_error(errno.raw_os_error());
        backoff.failed(&error).await;
        backoff.last_failure.is_some()
    }

    /// The errors accept(2) says to retry like EAGAIN concern one pending connection: the
    /// next accept is tried at once, with no pause and no warning.
    #[tokio::test]
    async fn accept_errors_of_one_connection_are_retried_at_once() {
        use rustix::io::Errno;
        for errno in [
            Errno::CONNABORTED,
            Errno::CONNRESET,
            Errno::INTR,
            Errno::AGAIN,
            Errno::PROTO,
            Errno::NOPROTOOPT,
            Errno::HOSTDOWN,
            Errno::NONET,
            Errno::HOSTUNREACH,
            Errno::OPNOTSUPP,
            Errno::NETUNREACH,
            Errno::NETDOWN,
        ] {
            assert!(
                !backs_off_after(errno).await,
                "{errno:?} ({}) must be retried at once",
                io::Error::from_raw_os_error(errno.raw_os_error())
            );
        }
    }

    /// Running out of descriptors, buffers or memory (and any error we do not know) backs off:
    /// retrying at once would fail again and spin a core.
    #[tokio::test]
    async fn accept_errors_of_exhaustion_back_off() {
        use rustix::io::Errno;
        for errno in [
            Errno::MFILE,
            Errno::NFILE,
            Errno::NOBUFS,
            Errno::NOMEM,
            Errno::IO,
        ] {
            assert!(
                backs_off_after(errno).await,
                "{errno:?} ({}) must back off",
                io::Error::from_raw_os_error(errno.raw_os_error())
            );
        }
    }

    #[tokio::test]
    async fn a_port_in_use_is_refused() {
        let first = listen(SocketAddr::from(([127, 0, 0, 1], 0)), 16, false).unwrap();
        let error = listen(first.local_addr().unwrap(), 16, false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
