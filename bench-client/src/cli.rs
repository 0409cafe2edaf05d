//! The command line: the load mode's options, one struct per subcommand, and the options
//! several of them share (`--timeout`, `--output`, `--acts`, `--jokes`), each declared once and
//! flattened in where it is used.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use acts::ActEntry;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::rate::Rate;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "bench-client",
    version,
    about = "Fires a burst of connections at a joke server (RFC 865) and reports latency \
             percentiles; with --verify FILE every answer must be one joke of FILE, without it \
             only non-empty and at most 64 KiB. `compare` and `soak` start every act themselves \
             and verify every joke",
    args_conflicts_with_subcommands = true
)]
pub struct Opts {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    #[command(flatten)]
    pub(crate) load: LoadOpts,
}

/// The subcommands. Without one, bench-client runs a load against `--addr`.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start every act as its own process and run the same load against each, round by round.
    Compare(CompareOpts),
    /// Each act's latency against the offered load: for every rate of a ladder, every act in
    /// turn runs the rate mode for `--step`; prints p50/p99 response time per act per rate and
    /// each act's knee. Pins the servers and the client to different CPUs with taskset.
    Sweep(SweepOpts),
    /// Soak every act in turn: many bursts, every joke verified, the server's memory before and
    /// after. Bounded: it stops by itself after `--total` connections per act.
    Soak(SoakOpts),
    /// Run one act's server in this process (what `compare` starts its children with).
    /// `--help` after the act's name is the act's own.
    #[command(hide = true, disable_help_flag = true)]
    Serve(ServeOpts),
}

/// Options every mode has: how long a connection may take, and how the results are printed.
#[derive(Debug, Clone, Args)]
pub(crate) struct Shared {
    /// Limit on the connect, and then on the whole response (each, per connection).
    #[arg(long, default_value = "10s", value_parser = duration, allow_hyphen_values = true)]
    pub(crate) timeout: Duration,

    /// Text for people, or one JSON object for tools.
    #[arg(long, value_enum, default_value_t = OutputMode::Text)]
    pub(crate) output: OutputMode,
}

/// Options of the modes that start the acts themselves (`compare`, `soak`): which acts, and the
/// jokes file they all serve.
#[derive(Debug, Clone, Args)]
pub(crate) struct ActsOpts {
    /// The acts to run, comma-separated: full names, or prefixes such as act1, act2 (both of
    /// its modes), finale [default: all; act8-io-uring when its own build exists and is not
    /// older than its sources, see `act8-io-uring --help`].
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          value_parser = crate::separate_build::parse_selection)]
    pub(crate) acts: Vec<acts::Selection>,

    /// The jokes file every server serves and every joke is checked against
    /// [default: ./jokes.txt, else the workspace's own jokes.txt].
    #[arg(long, value_name = "PATH")]
    pub(crate) jokes: Option<PathBuf>,
}

impl ActsOpts {
    /// The acts named by `--acts`, each once, in the order named; every act this build has
    /// when none is named.
    pub(crate) fn chosen(&self) -> Vec<&'static ActEntry> {
        let mut chosen: Vec<&'static ActEntry> = Vec::new();
        for &act in self.acts.iter().flat_map(|selection| &selection.0) {
            if !chosen.iter().any(|c| std::ptr::eq(*c, act)) {
                chosen.push(act);
            }
        }
        if chosen.is_empty() {
            chosen = crate::separate_build::every_runnable_act();
        }
        chosen
    }

    /// `--jokes`, or the default jokes file.
    pub(crate) fn jokes_path(&self) -> PathBuf {
        self.jokes
            .clone()
            .unwrap_or_else(joke_server::default_jokes_path)
    }
}

/// Options of the open loop (the rate mode and `sweep`): the warm-up before the counted part
/// of each run, and the bound on connections open at once.
#[derive(Debug, Clone, Args)]
pub(crate) struct OpenLoopOpts {
    /// Run the schedule this long before counting, to warm up both sides [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) warmup: Option<Duration>,

    /// Connections open at once, at most; when all are open the next connection waits (and
    /// the run is reported as limited by the bound) [default: 10000, or what the open-files
    /// limit allows].
    #[arg(long, value_name = "N")]
    pub(crate) max_open: Option<NonZeroUsize>,
}

impl OpenLoopOpts {
    /// `--warmup`, or its default.
    pub(crate) fn warmup(&self) -> Duration {
        self.warmup.unwrap_or(Duration::from_secs(1))
    }

    /// `--max-open`, or its default.
    pub(crate) fn max_open(&self) -> usize {
        self.max_open.map_or(10_000, NonZeroUsize::get)
    }

    /// Whether either option was given (the burst mode has no use for them).
    pub(crate) fn given(&self) -> Option<&'static str> {
        if self.warmup.is_some() {
            Some("--warmup")
        } else if self.max_open.is_some() {
            Some("--max-open")
        } else {
            None
        }
    }
}

/// Options of the load mode.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadOpts {
    /// The server to load (a name such as localhost:12345 is resolved once, first address).
    #[arg(long, default_value = "127.0.0.1:12345", value_parser = parse_addr)]
    pub(crate) addr: SocketAddr,

    /// Connections started at the same instant, in each round.
    #[arg(long, default_value = "1000", value_parser = joke_server::parse_at_least_one)]
    pub(crate) conns: NonZeroUsize,

    /// Rounds to run, one after the other; the report gives the median wall time per round.
    #[arg(long, default_value = "1", value_parser = joke_server::parse_at_least_one)]
    pub(crate) rounds: NonZeroUsize,

    /// Check that every response is exactly one joke of this jokes file (served form). Without
    /// it, an answer only has to be non-empty and at most 64 KiB: this mode cannot know which
    /// file the server serves.
    #[arg(long, value_name = "PATH")]
    pub(crate) verify: Option<PathBuf>,

    /// Send these bytes before reading, as a chatty client would; RFC 865 servers discard them.
    /// Escapes: \n \r \t \0 \\ \xNN.
    #[arg(long, value_name = "BYTES")]
    pub(crate) send: Option<SendBytes>,

    /// Open loop instead of bursts: start connections on a schedule, this many per second
    /// (2000/s, 120/min, 2/ms), whatever became of the earlier ones, for --duration.
    // `allow_hyphen_values`: `--rate -3/s` is a bad rate (and says why), not an unknown option.
    #[arg(long, value_name = "RATE", conflicts_with_all = ["conns", "rounds"],
          allow_hyphen_values = true)]
    pub(crate) rate: Option<Rate>,

    /// How long the counted part of a --rate run lasts.
    #[arg(long, value_name = "DURATION", default_value = "10s", requires = "rate",
          value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,

    #[command(flatten)]
    pub(crate) open_loop: OpenLoopOpts,

    #[command(flatten)]
    pub(crate) shared: Shared,
}

/// Options of `compare`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompareOpts {
    /// Connections started at the same instant, per act and round.
    #[arg(long, default_value = "1000", value_parser = joke_server::parse_at_least_one)]
    pub(crate) conns: NonZeroUsize,

    /// Rounds; each round loads every act once, one act after the other.
    #[arg(long, default_value = "10", value_parser = joke_server::parse_at_least_one)]
    pub(crate) rounds: NonZeroUsize,

    /// Passed to every server: a blocking sleep wherever the act reads the jokes file.
    #[arg(long, default_value = "0ms", value_parser = duration, allow_hyphen_values = true)]
    pub(crate) io_delay: Duration,

    /// Serve the jokes file from a disk that is really slow: mount slowfs (every read request
    /// takes at least DELAY, no page cache, 32 requests at once) over the file's folder in a
    /// temporary mount point, point every act at the mounted copy, unmount at the end (also on
    /// Ctrl-C, SIGTERM or a panic). Needs FUSE: root, or fusermount3 (Debian: fuse3); Linux.
    #[arg(long, value_name = "DELAY", value_parser = duration, conflicts_with = "io_delay",
          allow_hyphen_values = true)]
    pub(crate) slow_disk: Option<Duration>,

    /// Passed to every server: the runtime it runs on.
    #[arg(long, value_enum, default_value_t = joke_server::Flavor::MultiThread)]
    pub(crate) flavor: joke_server::Flavor,

    /// Also draw the results as a bar chart into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) chart: Option<PathBuf>,

    /// Also write the results as a keyed figures file for the book (Markdown: the table, and
    /// one anchored value per act and metric; see docs/src/figures/).
    #[arg(long, value_name = "FILE.md")]
    pub(crate) figures: Option<PathBuf>,

    /// Instead of the table: for each act, record one burst of --timeline-conns connections
    /// with the servers' --timeline and draw it, writing DIR/ACT.json (Chrome trace-event JSON,
    /// for Perfetto) and DIR/ACT.svg (one lane per thread); then measure the recorder's cost,
    /// the act recording and not recording side by side, over --rounds bursts of --conns.
    /// --figures then writes the timelines' figures.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["chart", "slow_disk"])]
    pub(crate) timeline: Option<PathBuf>,

    /// Connections of the burst each --timeline picture shows.
    #[arg(long, value_name = "N", default_value = "100", requires = "timeline",
          value_parser = joke_server::parse_at_least_one)]
    pub(crate) timeline_conns: NonZeroUsize,

    #[command(flatten)]
    pub(crate) acts: ActsOpts,

    #[command(flatten)]
    pub(crate) shared: Shared,
}

/// Options of `sweep`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SweepOpts {
    /// The offered rates, comma-separated, each as --rate takes it, climbed in this order.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "250/s,500/s,1000/s,1500/s,2000/s,3000/s,5000/s,8000/s"
    )]
    pub(crate) rates: Vec<Rate>,

    /// How long each act runs at each rate (counted; the warm-up comes before).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    pub(crate) step: Duration,

    /// An act's knee is the highest rate at which its p99 response time stays within this,
    /// with no errors (at that rate and every lower one).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub(crate) threshold: Duration,

    /// Passed to every server: a blocking sleep wherever the act reads the jokes file.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub(crate) io_delay: Duration,

    /// Keep climbing after an act's first failed rate (by default the act stops there: its
    /// knee is below, and every higher rate only queues more).
    #[arg(long)]
    pub(crate) every_rate: bool,

    /// Do not pin the servers and the client to different CPUs.
    #[arg(long)]
    pub(crate) no_pin: bool,

    /// Also draw latency against offered rate, one line per act, into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) chart: Option<PathBuf>,

    /// Also write the results as the book's keyed figures (see docs/src/figures/).
    #[arg(long, value_name = "FILE.md")]
    pub(crate) figures: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) open_loop: OpenLoopOpts,

    #[command(flatten)]
    pub(crate) acts: ActsOpts,

    #[command(flatten)]
    pub(crate) shared: Shared,
}

/// Options of `soak`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SoakOpts {
    /// Connections per act, in all.
    #[arg(long, default_value = "100000", value_parser = joke_server::parse_at_least_one)]
    pub(crate) total: NonZeroUsize,

    /// Connections started at the same instant.
    #[arg(long, default_value = "5000", value_parser = joke_server::parse_at_least_one)]
    pub(crate) burst: NonZeroUsize,

    #[command(flatten)]
    pub(crate) acts: ActsOpts,

    #[command(flatten)]
    pub(crate) shared: Shared,
}

/// Options of the hidden `serve` subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeOpts {
    /// The act to run.
    #[arg(value_parser = acts::parse_act)]
    pub(crate) act: &'static ActEntry,

    /// The server's own options (`--addr`, `--io-delay`, ...), passed on untouched.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<OsString>,
}

/// A duration option (`--timeout`, `--io-delay`), with the servers' message for a bad one.
fn duration(text: &str) -> Result<Duration, String> {
    joke_server::parse_duration(text).map(Into::into)
}

/// How results are printed (see the `printer` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputMode {
    /// A summary for people, coloured on a terminal.
    Text,
    /// One JSON object with stable keys (see bench-client/README.md).
    Json,
}

/// The bytes of `--send`, with escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendBytes(pub(crate) Vec<u8>);

impl FromStr for SendBytes {
    type Err = String;

    /// Decodes `\n`, `\r`, `\t`, `\0`, `\\` and `\xNN`; every other character stands for its
    /// UTF-8 bytes. A shell makes a real newline awkward to type, hence the escapes.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut bytes = Vec::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                let mut buffer = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                continue;
            }
            match chars.next() {
                Some('n') => bytes.push(b'\n'),
                Some('r') => bytes.push(b'\r'),
                Some('t') => bytes.push(b'\t'),
                Some('0') => bytes.push(0),
                Some('\\') => bytes.push(b'\\'),
                Some('x') => {
                    let hex: String = chars.by_ref().take(2).collect();
                    let byte = (hex.len() == 2)
                        .then(|| u8::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .ok_or_else(|| format!("\\x needs two hex digits, not {hex:?}"))?;
                    bytes.push(byte);
                }
                Some(other) => return Err(format!("unknown escape \\{other}")),
                None => return Err("a lone \\ at the end".into()),
            }
        }
        Ok(SendBytes(bytes))
    }
}

/// Resolves `--addr`: an IP address and port, or a name and port.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .map_err(|error| format!("cannot resolve {text:?}: {error}"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_bytes_decode_escapes() {
        let decode = |s: &str| s.parse::<SendBytes>().map(|b| b.0);
        assert_eq!(decode("hi\\r\\n").unwrap(), b"hi\r\n");
        assert_eq!(decode("a\\tb\\\\c\\0").unwrap(), b"a\tb\\c\0");
        assert_eq!(decode("\\x41\\xff").unwrap(), [0x41, 0xff]);
        assert_eq!(decode("é").unwrap(), "é".as_bytes());
        assert!(decode("\\x4").is_err());
        assert!(decode("\\q").is_err());
        assert!(decode("end\\").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Opts::command().debug_assert();
        let opts = Opts::parse_from(["bench-client", "compare", "--acts", "act1,act1-naive"]);
        match opts.command {
            Some(Command::Compare(compare)) => {
                assert_eq!(compare.acts.acts.len(), 2);
                // Named twice, run once.
                assert_eq!(compare.acts.chosen().len(), 1);
            }
            other => panic!("{other:?}"),
        }
        let opts = Opts::parse_from(["bench-client", "serve", "act1-naive", "--addr", "x"]);
        match opts.command {
            Some(Command::Serve(serve)) => assert_eq!(serve.args, ["--addr", "x"]),
            other => panic!("{other:?}"),
        }
        // The act's own --help, not ours.
        let opts = Opts::parse_from(["bench-client", "serve", "act1-naive", "--help"]);
        match opts.command {
            Some(Command::Serve(serve)) => assert_eq!(serve.args, ["--help"]),
            other => panic!("{other:?}"),
        }
        // The shared options, in every mode.
        for args in [
            &["bench-client", "--timeout", "3s", "--output", "json"][..],
            &[
                "bench-client",
                "compare",
                "--timeout",
                "3s",
                "--output",
                "json",
            ],
            &[
                "bench-client",
                "sweep",
                "--timeout",
                "3s",
                "--output",
                "json",
            ],
            &[
                "bench-client",
                "soak",
                "--timeout",
                "3s",
                "--output",
                "json",
            ],
        ] {
            let opts = Opts::parse_from(args);
            let shared = match opts.command {
                None => opts.load.shared,
                Some(Command::Compare(compare)) => compare.shared,
                Some(Command::Soak(soak)) => soak.shared,
                Some(Command::Sweep(sweep)) => sweep.shared,
                Some(other) => panic!("{other:?}"),
            };
            assert_eq!(shared.timeout, Duration::from_secs(3), "{args:?}");
            assert_eq!(shared.output, OutputMode::Json, "{args:?}");
        }
        assert!(Opts::try_parse_from(["bench-client", "--conns", "0"]).is_err());
        assert!(Opts::try_parse_from(["bench-client", "--conns", "5", "compare"]).is_err());
    }
}
