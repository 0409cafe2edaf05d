//! # bench-client: a burst of connections, every joke checked
//!
//! The seed article measured its servers with a client that opened 1000 connections and printed
//! one total time. This is that client grown up, because it is how a reader *sees* each lesson:
//!
//! - **Load mode** (`bench-client --conns 1000 --rounds 5 --verify jokes.txt`): opens `--conns`
//!   connections at the same instant, reads each to end-of-stream, and reports latency
//!   percentiles, wall time per round, errors by kind. With `--verify` every response must be
//!   exactly one joke of the file.
//! - **`compare`** (`cargo run --release -p bench-client -- compare`): starts every act as its
//!   own process, runs the same load against each, round by round, and prints one table with
//!   the server's own count of blocked worker threads beside the client's timings.
//!
//! The shape follows oha, a load generator people like: a thin `main`, and here a library with
//! [`Opts`] (parsed by clap) and [`run`]. The output is text for people or JSON for tools
//! (`--output json`; the keys are documented in `bench-client/README.md`).
//!
//! Exit codes: 0 when every connection succeeded (and verified); 1 when any failed or something
//! else went wrong; 2 for bad usage or a bad `--verify`/`--jokes` file.

mod chart;
mod compare;
mod load;
mod servers;
mod soak;
mod stats;
mod text;
mod verify;

pub use compare::{ActReport, CompareReport, CompareSettings, compare};
pub use load::{
    ConnOutcome, ErrorKind, Failure, LoadPlan, MAX_RESPONSE, Round, Timings, run_round,
};
pub use soak::{SoakAct, SoakReport, SoakSettings, soak};
pub use stats::{DurationTally, ErrorCounts, LoadReport, Percentiles, Tally, median};
pub use verify::JokeSet;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Exit code when some connection failed, or anything else went wrong at run time.
const EXIT_FAILED: u8 = 1;
/// Exit code for bad input found before the first connection (clap uses 2 for usage errors).
const EXIT_BAD_INPUT: u8 = 2;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "bench-client",
    version,
    about = "Fires a burst of connections at a joke server (RFC 865), verifies every joke, and \
             reports latency percentiles; `compare` does it for every act",
    args_conflicts_with_subcommands = true
)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub load: LoadOpts,
}

/// The subcommands. Without one, bench-client runs a load against `--addr`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start every act as its own process and run the same load against each, round by round.
    Compare(CompareOpts),
    /// Soak every act in turn: many bursts, every joke verified, the server's memory before and
    /// after. Bounded: it stops by itself after `--total` connections per act.
    Soak(SoakOpts),
    /// Run one act's server in this process (what `compare` starts its children with).
    /// `--help` after the act's name is the act's own.
    #[command(hide = true, disable_help_flag = true)]
    Serve(ServeOpts),
}

/// Options of the load mode.
#[derive(Debug, Clone, Args)]
pub struct LoadOpts {
    /// The server to load (a name such as localhost:12345 is resolved once, first address).
    #[arg(long, default_value = "127.0.0.1:12345", value_parser = parse_addr)]
    pub addr: SocketAddr,

    /// Connections started at the same instant, in each round.
    #[arg(long, default_value = "1000")]
    pub conns: NonZeroUsize,

    /// Rounds to run, one after the other; the report gives the median wall time per round.
    #[arg(long, default_value = "1")]
    pub rounds: NonZeroUsize,

    /// Limit on the connect, and then on the whole response (each, per connection).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Check that every response is exactly one joke of this jokes file (served form).
    #[arg(long, value_name = "PATH")]
    pub verify: Option<PathBuf>,

    /// Send these bytes before reading, as a chatty client would; RFC 865 servers discard them.
    /// Escapes: \n \r \t \0 \\ \xNN.
    #[arg(long, value_name = "BYTES")]
    pub send: Option<SendBytes>,

    /// Text for people, or one JSON object for tools.
    #[arg(long, value_enum, default_value_t = OutputMode::Text)]
    pub output: OutputMode,
}

/// Options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareOpts {
    /// Connections started at the same instant, per act and round.
    #[arg(long, default_value = "1000")]
    pub conns: NonZeroUsize,

    /// Rounds; each round loads every act once, one act after the other.
    #[arg(long, default_value = "10")]
    pub rounds: NonZeroUsize,

    /// Passed to every server: a blocking sleep wherever the act reads the jokes file.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub io_delay: Duration,

    /// The acts to run, comma-separated: full names, or prefixes such as act1, act2 (both of
    /// its modes), finale [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = acts::parse_selection)]
    pub acts: Vec<acts::Selection>,

    /// The jokes file every server serves and every joke is checked against
    /// [default: ./jokes.txt, else the workspace's own jokes.txt].
    #[arg(long, value_name = "PATH")]
    pub jokes: Option<PathBuf>,

    /// Also draw the results as a bar chart into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,

    /// Limit on the connect, and then on the whole response (each, per connection).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Text for people, or one JSON object for tools.
    #[arg(long, value_enum, default_value_t = OutputMode::Text)]
    pub output: OutputMode,
}

/// Options of `soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakOpts {
    /// Connections per act, in all.
    #[arg(long, default_value = "100000")]
    pub total: NonZeroUsize,

    /// Connections started at the same instant.
    #[arg(long, default_value = "5000")]
    pub burst: NonZeroUsize,

    /// The acts to soak, comma-separated, as for `compare` [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = acts::parse_selection)]
    pub acts: Vec<acts::Selection>,

    /// The jokes file every server serves and every joke is checked against
    /// [default: ./jokes.txt, else the workspace's own jokes.txt].
    #[arg(long, value_name = "PATH")]
    pub jokes: Option<PathBuf>,

    /// Limit on the connect, and then on the whole response (each, per connection).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Text for people, or one JSON object for tools.
    #[arg(long, value_enum, default_value_t = OutputMode::Text)]
    pub output: OutputMode,
}

/// Options of the hidden `serve` subcommand.
#[derive(Debug, Clone, Args)]
pub struct ServeOpts {
    /// The act to run.
    #[arg(value_parser = acts::parse_act)]
    pub act: &'static acts::ActEntry,

    /// The server's own options (`--addr`, `--io-delay`, ...), passed on untouched.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// A summary for people, coloured on a terminal.
    Text,
    /// One JSON object with stable keys (see bench-client/README.md).
    Json,
}

/// The bytes of `--send`, with escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendBytes(pub Vec<u8>);

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

/// Bad input found before any connection (an unreadable `--verify` file, say): exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

// ANCHOR: run
/// Runs what the command line asks for, and returns the exit code.
pub fn run(opts: Opts) -> ExitCode {
    let outcome = match opts.command {
        // The server builds its own runtime and installs its own signal handlers: hand it the
        // process before we start anything of ours.
        Some(Command::Serve(serve)) => {
            die_with_parent();
            return serve.act.run(serve.args);
        }
        Some(Command::Compare(compare)) => run_compare(compare),
        Some(Command::Soak(soak)) => run_soak(soak),
        None => run_load(opts.load),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILED),
        Err(error) => {
            eprintln!("bench-client: error: {error:#}");
            if error.is::<BadInput>() {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}
// ANCHOR_END: run

/// The load mode. Returns whether every connection succeeded.
fn run_load(opts: LoadOpts) -> anyhow::Result<bool> {
    warn_if_unoptimised();
    let conns = opts.conns.get();
    let rounds = opts.rounds.get();
    load::ensure_open_files(conns);
    let verify = match &opts.verify {
        Some(path) => Some(Arc::new(
            JokeSet::load(path).map_err(|error| BadInput(format!("--verify: {error:#}")))?,
        )),
        None => None,
    };
    let send = opts.send.clone().map(|s| s.0).unwrap_or_default();
    let plan = Arc::new(LoadPlan {
        addr: opts.addr,
        conns,
        timeout: opts.timeout,
        send: Arc::from(send),
        verify,
    });

    let tally = client_runtime()?.block_on(async {
        let progress = progress_bar((conns * rounds) as u64);
        let mut tally = Tally::default();
        for round in 1..=rounds {
            progress.set_message(format!("round {round}/{rounds}"));
            tally.add_round(&run_round(&plan, &progress).await);
        }
        progress.finish_and_clear();
        tally
    });
    let report = tally.report();

    match opts.output {
        OutputMode::Text => {
            let heading = text::LoadHeading {
                addr: opts.addr.to_string(),
                conns,
                rounds,
                verify: opts.verify.as_ref().map(|p| p.display().to_string()),
                send_bytes: plan.send.len(),
            };
            print!("{}", text::load_report(&heading, &report));
        }
        OutputMode::Json => {
            let json = LoadJson {
                addr: opts.addr,
                conns,
                rounds,
                timeout_ms: opts.timeout.as_secs_f64() * 1e3,
                verify: opts.verify.clone(),
                send_bytes: plan.send.len(),
                optimized: !cfg!(debug_assertions),
                report: &report,
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    Ok(report.all_succeeded())
}

/// The JSON of the load mode: what was asked, then the report's keys.
#[derive(Debug, Serialize)]
struct LoadJson<'a> {
    addr: SocketAddr,
    conns: usize,
    rounds: usize,
    timeout_ms: f64,
    verify: Option<PathBuf>,
    send_bytes: usize,
    optimized: bool,
    #[serde(flatten)]
    report: &'a LoadReport,
}

/// `compare`. Returns whether every act served every connection and exited cleanly.
fn run_compare(opts: CompareOpts) -> anyhow::Result<bool> {
    warn_if_unoptimised();
    load::ensure_open_files(opts.conns.get());
    let settings = CompareSettings {
        acts: chosen_acts(opts.acts),
        conns: opts.conns.get(),
        rounds: opts.rounds.get(),
        timeout: opts.timeout,
        io_delay: opts.io_delay,
        jokes: opts.jokes.unwrap_or_else(joke_server::default_jokes_path),
    };
    let report = client_runtime()?.block_on(compare(&settings))?;
    print_report(opts.output, &report, text::compare_report)?;
    if let Some(path) = &opts.chart {
        chart::write_chart(path, &report)?;
        eprintln!("bench-client: chart written to {}", path.display());
    }
    Ok(report.all_ok())
}

/// `soak`. Returns whether every connection to every act succeeded and verified.
fn run_soak(opts: SoakOpts) -> anyhow::Result<bool> {
    warn_if_unoptimised();
    load::ensure_open_files(opts.burst.get());
    let settings = SoakSettings {
        acts: chosen_acts(opts.acts),
        total: opts.total.get(),
        burst: opts.burst.get(),
        timeout: opts.timeout,
        jokes: opts.jokes.unwrap_or_else(joke_server::default_jokes_path),
    };
    let report = client_runtime()?.block_on(soak(&settings))?;
    print_report(opts.output, &report, soak::soak_report_text)?;
    Ok(report.all_ok())
}

/// The client's runtime: multi-threaded, so the connections of a round are read in parallel.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Prints `report` as text for people (`text` formats it) or as one JSON object.
fn print_report<R: Serialize>(
    output: OutputMode,
    report: &R,
    text: impl Fn(&R) -> String,
) -> anyhow::Result<()> {
    match output {
        OutputMode::Text => print!("{}", text(report)),
        OutputMode::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(())
}

/// The acts named by `--acts`, each once, in the order named; all of them when none is.
fn chosen_acts(selections: Vec<acts::Selection>) -> Vec<&'static acts::ActEntry> {
    let mut chosen: Vec<&'static acts::ActEntry> = Vec::new();
    for act in selections.into_iter().flat_map(|selection| selection.0) {
        if !chosen.iter().any(|c| std::ptr::eq(*c, act)) {
            chosen.push(act);
        }
    }
    if chosen.is_empty() {
        chosen = acts::available().collect();
    }
    chosen
}

/// The servers `compare` starts must not outlive it. When it returns or fails they are killed
/// as their handles drop (`kill_on_drop`), but when it is killed itself no destructor runs. Linux
/// can send a process a signal when its parent dies: we ask for SIGTERM, which the server
/// answers with its own clean shutdown.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
    {
        eprintln!("bench-client serve: warning: cannot follow the parent's death: {error}");
    }
}

/// A debug build runs several times slower, and not evenly across the acts: its numbers would
/// teach the wrong lesson.
fn warn_if_unoptimised() {
    if cfg!(debug_assertions) {
        eprintln!(
            "bench-client: warning: this is a debug build (client and servers unoptimised); \
             the timings are not meaningful. Use `cargo run --release -p bench-client -- ...`."
        );
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal: in a pipe or a log file it
/// would only be noise.
pub(crate) fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {msg:32} [{bar:30}] {pos}/{len} connections ({per_sec}, {eta} left)",
    )
    .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
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
            Some(Command::Compare(compare)) => assert_eq!(compare.acts.len(), 2),
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
        assert!(Opts::try_parse_from(["bench-client", "--conns", "0"]).is_err());
        assert!(Opts::try_parse_from(["bench-client", "--conns", "5", "compare"]).is_err());
    }
}
