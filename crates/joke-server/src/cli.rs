//! The command line every act shares.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};

use clap::Args;
use joke_index::FormatChoice;
use joke_index::pick::{LengthLimits, Weighting};

use crate::{Config, JokeChoice};

/// The address a server listens on when `--addr` is not given. (A [`Config::new`] listens on a
/// free port instead, as a test wants.)
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 12345));

/// The options of every joke server (`act1-naive --help` shows them). Their defaults are
/// [`Config`]'s `DEFAULT_*` constants, and [`DEFAULT_ADDR`].
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on: an IP address and port such as 127.0.0.1:12345, or a host name such
    /// as localhost:12345 (resolved at start-up, first address); port 0 picks a free port (the
    /// bound address is logged).
    #[arg(long, default_value_t = DEFAULT_ADDR, value_parser = parse_listen_addr)]
    pub addr: SocketAddr,

    /// The jokes file, or a directory of them laid out as fortune's (/usr/share/games/fortunes)
    /// [default: ./jokes.txt, else a copy of the project's jokes.txt built into this binary]
    #[arg(long)]
    pub jokes: Option<PathBuf>,

    /// Format of the jokes file: detected from its separators, or forced.
    #[arg(long, value_enum, default_value_t = Config::DEFAULT_FORMAT)]
    pub format: FormatChoice,

    /// How a file of a directory is chosen: by-jokes (in proportion to its number of jokes, so
    /// every joke is equally likely: fortune's default) or equal-files (fortune -e).
    #[arg(long, value_enum, default_value_t = Weighting::ByJokes)]
    pub weighting: Weighting,

    /// Serve only jokes of at most N bytes (served form); without N, 160: fortune -s (-n 160).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "160", value_parser = parse_length)]
    pub max_length: Option<usize>,

    /// Serve only jokes of at least N bytes; without N, 161 (longer than 160): fortune -l.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "161", value_parser = parse_length)]
    pub min_length: Option<usize>,

    /// Also serve the offensive fortunes of the directory's off/ folder, decoded from ROT13
    /// (fortune -a).
    #[arg(long)]
    pub offensive: bool,

    /// Length of the queue of connections the kernel completes for us before we accept them
    /// (listen(2)'s backlog; the kernel caps it at net.core.somaxconn). Neither it nor --addr
    /// applies to a socket a service manager passes (LISTEN_FDS, systemd socket activation).
    #[arg(long, default_value_t = Config::DEFAULT_BACKLOG, value_parser = parse_backlog)]
    pub backlog: u32,

    /// Bind with SO_REUSEPORT: several servers started with it share the port, the kernel
    /// spreading new connections over them by a hash of the client's address and port. For
    /// replicas on one machine, and rolling restarts (start the new one, then SIGTERM the old).
    #[arg(long)]
    pub reuse_port: bool,

    /// Expect a PROXY protocol header (v1 or v2, as HAProxy's send-proxy/send-proxy-v2 write)
    /// at the start of every connection, and take the client's address from it. Only behind a
    /// balancer that alone can reach this port: anyone who can connect can claim any address
    /// in the header. Connections without a valid header are reset unserved and counted; v2
    /// LOCAL (health checks) are counted as checks.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// With --proxy-protocol: how long the header may take to arrive.
    #[arg(long, default_value_t = Config::DEFAULT_PROXY_HEADER_TIMEOUT.into(), value_parser = parse_period, allow_hyphen_values = true)]
    pub proxy_header_timeout: humantime::Duration,

    /// The runtime: multi-thread (worker threads that steal each other's tasks), or
    /// current-thread (every task on one thread, where one blocking call stops them all).
    #[arg(long, value_enum, default_value_t = Flavor::MultiThread)]
    pub flavor: Flavor,

    /// Runtime worker threads of the multi-thread runtime [default: one per CPU].
    #[arg(long, value_parser = parse_at_least_one)]
    pub workers: Option<NonZeroUsize>,

    /// Connections served at once; more wait in the backlog.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_CONNECTIONS, value_parser = parse_at_least_one)]
    pub max_connections: NonZeroUsize,

    /// Deadline for getting the joke ready: the act's read, a reload, the wait for a blocking
    /// thread, and handing the joke to the kernel. Time spent waiting for a slow client to take
    /// bytes does not count (that is --write-timeout's). Past it: a reset, counted in
    /// joke_timeouts.
    #[arg(long, default_value_t = Config::DEFAULT_JOKE_TIMEOUT.into(), value_parser = parse_period, allow_hyphen_values = true)]
    pub joke_timeout: humantime::Duration,

    /// Write progress timeout: a client that accepts no byte of its joke for this long is cut
    /// off with a reset (the kernel's TCP_USER_TIMEOUT); a slow client that keeps reading is
    /// never cut. Counted in write_timeouts.
    #[arg(long, default_value_t = Config::DEFAULT_WRITE_TIMEOUT.into(), value_parser = parse_write_timeout, allow_hyphen_values = true)]
    pub write_timeout: humantime::Duration,

    /// At most N connections at once from one client address (an IPv4 address, or an IPv6
    /// /64); the next one from that address is reset, unserved, and counted in
    /// per_address_refusals [default: off]. Behind a balancer, turn it on only with
    /// --proxy-protocol, or every client shares the balancer's address.
    #[arg(long, value_parser = parse_at_least_one)]
    pub max_per_address: Option<NonZeroUsize>,

    /// On SIGINT/SIGTERM: how long the connections already queued and the jokes in flight get
    /// to finish. The process ends at most 3 s after it, however blocked it is.
    #[arg(long, default_value_t = Config::DEFAULT_GRACE_PERIOD.into(), value_parser = parse_duration, allow_hyphen_values = true)]
    pub grace_period: humantime::Duration,

    /// Log the live statistics (the exit line's fields) every this long; SIGUSR1 logs them at
    /// any time.
    #[arg(long, value_parser = parse_period, allow_hyphen_values = true)]
    pub stats_every: Option<humantime::Duration>,

    /// Simulate a slow disk: a blocking sleep of this long wherever the act reads the file
    /// (more than a minute is warned about: it is rarely meant).
    #[arg(long, default_value_t = Config::DEFAULT_IO_DELAY.into(), value_parser = parse_duration, allow_hyphen_values = true)]
    pub io_delay: humantime::Duration,

    /// Also answer UDP datagrams on the same address, one joke per datagram. Only jokes of at
    /// most 512 bytes are sent (start-up fails when none is that short), within a rate per
    /// source and a global one, so that the server cannot be used as a reflection amplifier.
    #[arg(long)]
    pub udp: bool,

    /// With --udp: replies per second to one source (an IPv4 address, or an IPv6 /64).
    #[arg(long, default_value_t = Config::DEFAULT_UDP_RATE, value_parser = parse_rate)]
    pub udp_rate: NonZeroU32,

    /// With --udp: how many replies one source may get at once before --udp-rate applies.
    #[arg(long, default_value_t = Config::DEFAULT_UDP_BURST, value_parser = parse_rate)]
    pub udp_burst: NonZeroU32,

    /// With --udp: replies per second to all sources together.
    #[arg(long, default_value_t = Config::DEFAULT_UDP_GLOBAL_RATE, value_parser = parse_rate)]
    pub udp_global_rate: NonZeroU32,

    /// Record which thread ran what (each connection task's polls, each blocking read and
    /// --io-delay sleep and whether it held a worker or ran on the blocking pool, worker
    /// parks, the accept loop) and write it at exit to FILE as Chrome trace-event JSON, for
    /// Perfetto or chrome://tracing. Keeps at most 1000000 events.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,

    /// Serve tokio-console's view of the runtime (every task's polls, busy and idle time) on
    /// ADDR [default when given without a value: 127.0.0.1:6669, where `tokio-console` looks].
    /// Needs a build with the console (book: "Finding blocking in your own service"):
    /// RUSTFLAGS="--cfg tokio_unstable" cargo run --release --target-dir target/console -p ACT
    /// --features joke-server/console -- --console; any other build refuses it.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:6669", value_parser = parse_listen_addr)]
    pub console: Option<SocketAddr>,
}

impl ServerArgs {
    /// The jokes file to serve: `--jokes`, else `jokes.txt` in the current folder, else the copy
    /// of the project's `jokes.txt` built into the binary (see [`default_jokes_path`]).
    pub fn jokes_path(&self) -> PathBuf {
        self.jokes.clone().unwrap_or_else(default_jokes_path)
    }

    /// What the options allow but almost certainly do not mean, one warning each, for the log
    /// at start-up: an `--io-delay` of minutes or hours (`2h` for `2ms`) would make every
    /// client wait that long for its joke without a word.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if *self.io_delay > LONGEST_PLAUSIBLE_IO_DELAY {
            warnings.push(format!(
                "--io-delay {}: every joke will wait that long for its read, longer than any \
                 client waits (bench-client gives up after 10s); a simulated slow disk is a few \
                 milliseconds, such as --io-delay 2ms",
                self.io_delay
            ));
        }
        warnings
    }

    /// How a joke is chosen (`--weighting`, `--max-length`, `--min-length`, `--offensive`).
    pub fn joke_choice(&self) -> JokeChoice {
        JokeChoice {
            weighting: self.weighting,
            lengths: LengthLimits {
                min: self.min_length.unwrap_or(0),
                max: self.max_length.unwrap_or(usize::MAX),
            },
            offensive: self.offensive,
        }
    }
}

/// `--max-length`, `--min-length`: a number of bytes.
fn parse_length(text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected a number of bytes, such as 160".to_owned())
}

/// Above this, [`ServerArgs::warnings`] warns about `--io-delay` (the book's longest is 15s).
const LONGEST_PLAUSIBLE_IO_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// The jokes file a server serves when `--jokes` is not given: `jokes.txt` in the current
/// folder, else a copy of the project's `jokes.txt` built into this binary. Tools that start
/// servers (`bench-client compare`) use it too, so they check jokes against the very file the
/// servers read.
///
/// The built-in copy is what makes an installed binary (`cargo install --path crates/...`)
/// work anywhere, and the same everywhere: it never reads the checkout it was built from, so it
/// neither depends on that folder still existing nor silently serves whatever it holds today.
/// The harness reads jokes from a file (it indexes, watches and re-reads it), so the copy is
/// written once to the temporary folder, under a name made of the version and the content's
/// hash; a server that finds it there with other content writes a fresh one of its own.
pub fn default_jokes_path() -> PathBuf {
    default_jokes_path_in(Path::new(""))
}

/// [`default_jokes_path`], looking for `jokes.txt` in `folder` instead of the current one.
pub fn default_jokes_path_in(folder: &Path) -> PathBuf {
    let here = folder.join("jokes.txt");
    if here.exists() {
        here
    } else {
        built_in_jokes_file()
    }
}

/// The project's `jokes.txt`, as it was when this binary was built.
pub const BUILT_IN_JOKES: &str = include_str!("../../../jokes.txt");

/// A file holding [`BUILT_IN_JOKES`], in the temporary folder.
pub fn built_in_jokes_file() -> PathBuf {
    // FNV-1a: a stable hash of the content, so that two builds with different jokes never
    // share a file, and every process of one build does.
    let hash = BUILT_IN_JOKES
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let name = format!("tokio-jokes-{}-{hash:016x}", env!("CARGO_PKG_VERSION"));
    let shared = std::env::temp_dir().join(&name).join("jokes.txt");
    if holds_built_in_jokes(&shared)
        || (write_built_in_jokes(&shared) && holds_built_in_jokes(&shared))
    {
        return shared;
    }
    // Someone else's file (or folder) with that name: one of our own, for this process.
    let own = std::env::temp_dir()
        .join(format!("{name}-{}", std::process::id()))
        .join("jokes.txt");
    write_built_in_jokes(&own);
    own
}

fn holds_built_in_jokes(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes == BUILT_IN_JOKES.as_bytes())
}

/// Writes the copy under a temporary name and renames it into place, so that a server starting
/// at the same moment never reads half of it. Returns whether that worked.
fn write_built_in_jokes(path: &Path) -> bool {
    let Some(folder) = path.parent() else {
        return false;
    };
    let partial = folder.join(format!("jokes.txt.{}.partial", std::process::id()));
    std::fs::create_dir_all(folder).is_ok()
        && std::fs::write(&partial, BUILT_IN_JOKES).is_ok()
        && std::fs::rename(&partial, path).is_ok()
}

/// `--addr`: a socket address, or a host name and port resolved now (the first address wins),
/// so `localhost:12345` works as it does for bench-client.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let expected = "expected an address such as 127.0.0.1:12345, [::1]:12345 or localhost:12345";
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text} resolves to no address; {expected}")),
        Err(error) => Err(format!("{expected} ({error})")),
    }
}

/// A duration option (`--io-delay`, `--write-timeout`): what humantime reads, with a message
/// that says what is expected.
pub fn parse_duration(text: &str) -> Result<humantime::Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err("a duration cannot be negative; expected one such as 2ms, 1.5s or 0ms".into());
    }
    humantime::parse_duration(text)
        .map(humantime::Duration::from)
        .map_err(|error| format!("expected a duration such as 2ms, 1.5s or 10s ({error})"))
}

/// A duration that must be more than zero: a period (`--stats-every`).
pub fn parse_period(text: &str) -> Result<humantime::Duration, String> {
    let period = parse_duration(text)?;
    if period.is_zero() {
        return Err("a period must be more than zero; expected one such as 10s or 1m".into());
    }
    Ok(period)
}

/// `--write-timeout`: more than zero, and whole milliseconds the kernel can take (it becomes
/// TCP_USER_TIMEOUT, a 32-bit count of milliseconds).
fn parse_write_timeout(text: &str) -> Result<humantime::Duration, String> {
    let timeout = parse_period(text)?;
    if timeout.as_millis() == 0 || timeout.as_millis() > u128::from(u32::MAX) {
        return Err("expected a duration from 1ms to 49 days, such as 10s".into());
    }
    Ok(timeout)
}

/// A rate or a burst (`--udp-rate`, `--udp-burst`, `--udp-global-rate`): at least 1.
fn parse_rate(text: &str) -> Result<NonZeroU32, String> {
    let number: u32 = text
        .trim()
        .parse()
        .map_err(|_| "expected a whole number, at least 1".to_owned())?;
    NonZeroU32::new(number).ok_or_else(|| "expected a whole number, at least 1 (not 0)".into())
}

/// A count that must be at least 1 (`--workers`, `--max-connections`).
pub fn parse_at_least_one(text: &str) -> Result<NonZeroUsize, String> {
    let number: usize = text
        .trim()
        .parse()
        .map_err(|_| "expected a whole number, at least 1".to_owned())?;
    NonZeroUsize::new(number).ok_or_else(|| "expected a whole number, at least 1 (not 0)".into())
}

/// `--backlog`: listen(2) with 0 queues next to nothing, which nobody means.
fn parse_backlog(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("at least 1 (the kernel caps it at net.core.somaxconn)".into()),
        Ok(backlog) => Ok(backlog),
        Err(_) => Err("expected a whole number, at least 1".into()),
    }
}

/// The runtime an act runs on (`--flavor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// `Builder::new_multi_thread`: `--workers` threads, idle ones stealing queued tasks.
    #[default]
    MultiThread,
    /// `Builder::new_current_thread`: every task, the timers and the I/O driver on one thread.
    CurrentThread,
}

impl Flavor {
    /// Its name on the command line (`current-thread`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::MultiThread => "multi-thread",
            Flavor::CurrentThread => "current-thread",
        }
    }

    /// Tokio's name for it.
    pub fn tokio(self) -> tokio::runtime::RuntimeFlavor {
        match self {
            Flavor::MultiThread => tokio::runtime::RuntimeFlavor::MultiThread,
            Flavor::CurrentThread => tokio::runtime::RuntimeFlavor::CurrentThread,
        }
    }
}

/// For acts with no options of their own.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct NoActArgs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_without_a_value_is_tokio_consoles_default_address() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            server: ServerArgs,
        }
        let parse = |args: &[&str]| {
            <Cli as clap::Parser>::try_parse_from(
                std::iter::once("act").chain(args.iter().copied()),
            )
            .map(|cli| cli.server.console)
        };
        assert_eq!(parse(&[]).unwrap(), None);
        let default = Some("127.0.0.1:6669".parse().unwrap());
        assert_eq!(parse(&["--console"]).unwrap(), default);
        assert_eq!(parse(&["--console", "--io-delay", "2ms"]).unwrap(), default);
        let given = Some("127.0.0.1:7000".parse().unwrap());
        assert_eq!(parse(&["--console", "127.0.0.1:7000"]).unwrap(), given);
        let bad = parse(&["--console", "nowhere"]).unwrap_err().to_string();
        assert!(
            bad.contains("--console") && bad.contains("expected an address"),
            "{bad}"
        );
    }

    #[test]
    fn a_period_of_zero_is_refused() {
        assert!(parse_period("0s").unwrap_err().contains("more than zero"));
        assert!(parse_period("-1s").is_err());
        assert_eq!(
            *parse_period("10s").unwrap(),
            std::time::Duration::from_secs(10)
        );
    }

    #[test]
    fn timeouts_and_rates_refuse_nonsense() {
        assert!(parse_write_timeout("0s").is_err());
        assert!(parse_write_timeout("100us").is_err());
        assert!(parse_write_timeout("100 days").is_err());
        assert_eq!(
            *parse_write_timeout("250ms").unwrap(),
            std::time::Duration::from_millis(250)
        );
        assert!(parse_rate("0").unwrap_err().contains("at least 1"));
        assert!(parse_rate("-3").unwrap_err().contains("at least 1"));
        assert_eq!(parse_rate("20").unwrap().get(), 20);
    }

    #[test]
    fn a_jokes_txt_in_the_folder_wins() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("jokes.txt"), "mine\n").unwrap();
        assert_eq!(
            default_jokes_path_in(folder.path()),
            folder.path().join("jokes.txt")
        );
    }

    #[test]
    fn elsewhere_the_built_in_copy_is_served_never_the_checkout() {
        let empty = tempfile::tempdir().unwrap();
        let path = default_jokes_path_in(empty.path());
        assert!(path.starts_with(std::env::temp_dir()), "{}", path.display());
        assert!(
            !path.starts_with(env!("CARGO_MANIFEST_DIR").trim_end_matches("/crates/joke-server")),
            "{} is in the checkout",
            path.display()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BUILT_IN_JOKES);
        // The same file every time.
        assert_eq!(default_jokes_path_in(empty.path()), path);
        assert!(
            BUILT_IN_JOKES.contains("---"),
            "the project's jokes.txt is built in"
        );
    }

    #[test]
    fn host_names_are_resolved_and_nonsense_says_what_is_expected() {
        assert_eq!(
            parse_listen_addr("127.0.0.1:12345").unwrap(),
            "127.0.0.1:12345".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_listen_addr("localhost:0").unwrap().ip().is_loopback());
        let error = parse_listen_addr("not-an-address").unwrap_err();
        assert!(error.starts_with("expected an address such as"), "{error}");
    }

    #[test]
    fn durations_say_what_is_expected() {
        assert_eq!(
            *parse_duration("2ms").unwrap(),
            std::time::Duration::from_millis(2)
        );
        let error = parse_duration("nonsense").unwrap_err();
        assert!(
            error.starts_with("expected a duration such as 2ms"),
            "{error}"
        );
        let error = parse_duration("-1ms").unwrap_err();
        assert!(error.contains("cannot be negative"), "{error}");
    }

    #[test]
    fn an_io_delay_of_hours_is_warned_about() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Test {
            #[command(flatten)]
            server: ServerArgs,
        }
        let args = |delay: &str| Test::parse_from(["test", "--io-delay", delay]).server;
        assert_eq!(args("2ms").warnings(), Vec::<String>::new());
        assert_eq!(args("15s").warnings(), Vec::<String>::new());
        let warnings = args("2h").warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("--io-delay 2h: "), "{warnings:?}");
        assert!(warnings[0].contains("--io-delay 2ms"), "{warnings:?}");
    }

    #[test]
    fn counts_must_be_at_least_one() {
        assert_eq!(parse_at_least_one("4").unwrap().get(), 4);
        assert!(parse_at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(
            parse_at_least_one("many")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(parse_backlog("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_backlog("128").unwrap(), 128);
    }
}
