//! What an act's `main` calls: parse the command line, build the runtime, serve until a
//! signal, and turn the outcome into an exit code.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use joke_index::exit_code;

use crate::shutdown::{self, Shutdown};
use crate::timeline::{self, Recording};
use crate::{Act, Config, Flavor, NoActArgs, Server, ServerArgs, StatsSummary};

#[derive(Debug, Parser)]
struct Cli<X: Args> {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    act: X,
}

/// Runs act `name` with the command line of this process.
pub fn run_act<A: Act>(name: &'static str, act: A) -> ExitCode {
    run_act_with(name, |_: NoActArgs| act)
}

/// Runs act `name`, whose own options `X` are parsed next to the shared ones and handed to
/// `make` to build the act.
pub fn run_act_with<X: Args, A: Act>(name: &'static str, make: impl FnOnce(X) -> A) -> ExitCode {
    run_act_from(name, std::env::args_os(), make)
}

/// Like [`run_act_with`], with the command line given (the first item is the program name).
/// `bench-client compare` uses it to run every act from its own binary.
pub fn run_act_from<X: Args, A: Act>(
    name: &'static str,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    make: impl FnOnce(X) -> A,
) -> ExitCode {
    let command = Cli::<X>::command()
        .name(name)
        .about(format!("{name}: a joke server (RFC 865 quote of the day)"));
    // clap prints usage errors and exits with 2, and prints --help and exits with 0.
    let (cli, act_options) = match command.try_get_matches_from(args).and_then(|matches| {
        Cli::<X>::from_arg_matches(&matches).map(|cli| (cli, act_options::<X>(&matches)))
    }) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
    // `--console` in a build without the console is refused before anything starts; in a
    // build with it, its socket is bound now, so a port in use is a start-up error too.
    if let Err(error) = crate::console::check(name, cli.server.console) {
        return refuse(name, error, exit_code::BAD_INPUT);
    }
    #[cfg(all(feature = "console", tokio_unstable))]
    let console = match cli.server.console.map(crate::console::start).transpose() {
        Ok(console) => console,
        Err(error) => {
            return refuse(name, error, exit_code::BAD_INPUT);
        }
    };
    #[cfg(all(feature = "console", tokio_unstable))]
    let console_addr = console.as_ref().map(|console| console.addr);
    init_logging(
        #[cfg(all(feature = "console", tokio_unstable))]
        console,
    );
    #[cfg(all(feature = "console", tokio_unstable))]
    if let Some(addr) = console_addr {
        tracing::info!(
            "tokio-console: serving this runtime's tasks on {addr}; watch them with \
             `tokio-console http://{addr}`"
        );
    }
    // The log's last lines are written out before this returns, whichever way it returns.
    let _log_written_out = crate::log_queue::FinishOnDrop;
    let act = make(cli.act);
    let flavor = cli.server.flavor;
    // Refused before the runtime exists: an act that cannot run on this flavour says why.
    if let Err(why) = act.check_runtime(flavor.tokio()) {
        let why = format!("cannot run on --flavor {}: {why}", flavor.name());
        return refuse(name, why, exit_code::BAD_INPUT);
    }
    if flavor == Flavor::CurrentThread && cli.server.workers.is_some() {
        let why = "--workers is for --flavor multi-thread; a current-thread runtime has exactly \
                   one thread";
        return refuse(name, why, exit_code::BAD_INPUT);
    }
    // Before any thread exists: taking the sockets a service manager passed changes the
    // environment.
    let inherited = match crate::activation::Inherited::from_env() {
        Ok(inherited) => inherited,
        Err(error) => {
            return refuse(name, error, exit_code::BAD_INPUT);
        }
    };
    raise_open_files_limit();
    for warning in cli.server.warnings() {
        tracing::warn!("{warning}");
    }
    // ANCHOR: signals
    // Signal handlers are installed before the server starts, so a SIGTERM that arrives right
    // after "listening on" is a clean shutdown, not the default kill. They are received on a
    // plain thread, not by the runtime: see `shutdown.rs` for why.
    let signals = match shutdown::install() {
        Ok(signals) => signals,
        Err(error) => {
            return refuse(
                name,
                format!("cannot install signal handlers: {error}"),
                exit_code::FAILURE,
            );
        }
    };
    // ANCHOR_END: signals
    let recording = match start_timeline(&cli.server) {
        Ok(recording) => recording,
        Err(error) => {
            return refuse(name, error, exit_code::BAD_INPUT);
        }
    };

    // ANCHOR: runtime
    let mut runtime = match flavor {
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    if let Some(workers) = cli.server.workers {
        runtime.worker_threads(workers.get());
    }
    if let Some((recording, _)) = &recording {
        recording.hook(&mut runtime);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return refuse(
                name,
                format!("cannot start the Tokio runtime: {error}"),
                exit_code::FAILURE,
            );
        }
    };
    // ANCHOR_END: runtime
    let workers = runtime.metrics().num_workers();
    let mut config = Config::from_args(&cli.server);
    if let Some(inherited) = &inherited {
        tracing::info!(
            "serving the sockets the service manager passed: {} (--addr and --backlog do not \
             apply to them)",
            inherited.describe()
        );
    }
    config.inherited = inherited;
    let grace_period = config.grace_period;
    let udp = config.udp || config.inherited.as_ref().is_some_and(|i| i.udp.is_some());
    let server = match runtime.block_on(Server::bind(act, config)) {
        Ok(server) => server,
        Err(error) => {
            return refuse(name, error, exit_code::BAD_INPUT);
        }
    };
    let shutdown = Shutdown::new(name, server.stats_handle(), grace_period);
    shutdown.handle_signals(signals);
    watch_for_parent_gone(&shutdown);
    if let Some(every) = cli.server.stats_every {
        shutdown.print_every(every.into());
    }
    let about = timeline::About {
        act: name.into(),
        act_options: act_options.clone(),
        io_delay_ms: config_io_delay_ms(&cli.server),
        flavor: flavor.name().into(),
        workers,
        ..timeline::About::default()
    };
    let started = Started {
        name,
        act_options,
        udp,
    };
    let summary = runtime.block_on(serve_until_signal(started, server, &shutdown));
    // A blocking read still running now (a disk that never answers) would keep a plain drop
    // of the runtime waiting forever: give it a bound, then abandon it.
    runtime.shutdown_timeout(shutdown::RUNTIME_WIND_DOWN);
    let mut code = ExitCode::SUCCESS;
    if let Some((recording, load_average)) = recording {
        if let Err(error) = finish_timeline(recording, about, load_average) {
            tracing::error!("{error}");
            code = ExitCode::from(exit_code::FAILURE);
        }
    }
    shutdown.finish(&summary);
    code
}

/// `--timeline FILE`: starts the recorder before the runtime exists (so that its threads'
/// first events are in it), creating the file now, so that a path that cannot be written is
/// refused at start-up. Returns it with the load average at the start, for the record.
fn start_timeline(
    args: &crate::ServerArgs,
) -> Result<Option<(Recording, Option<f64>)>, timeline::TimelineError> {
    let Some(path) = &args.timeline else {
        return Ok(None);
    };
    let load_average = timeline::load_average();
    Ok(Some((Recording::start(path)?, load_average)))
}

/// Writes the timeline recorded, once the runtime is shut down (no thread of it still runs).
fn finish_timeline(
    recording: Recording,
    mut about: timeline::About,
    load_average: Option<f64>,
) -> Result<(), String> {
    about.cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    about.load_average = load_average;
    match recording.finish(about) {
        Ok((path, kept, dropped)) => {
            let dropped = if dropped > 0 {
                format!(" ({dropped} more did not fit in {})", timeline::MAX_EVENTS)
            } else {
                String::new()
            };
            tracing::info!(
                "timeline: {kept} events written to {}{dropped}",
                path.display()
            );
            Ok(())
        }
        Err(error) => Err(format!("--timeline: writing the file: {error}")),
    }
}

fn config_io_delay_ms(args: &crate::ServerArgs) -> f64 {
    std::time::Duration::from(args.io_delay).as_secs_f64() * 1e3
}

/// The act's own options as they were given or defaulted (`--mode block-in-place`), for the
/// start-up line: a reader of the log should not have to guess which variant ran.
fn act_options<X: Args>(matches: &clap::ArgMatches) -> String {
    X::augment_args(clap::Command::new("act"))
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let values = matches.get_raw(arg.get_id().as_str())?;
            let values: Vec<String> = values
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            Some(format!("--{long} {}", values.join(",")))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the start-up line says besides the jokes.
struct Started {
    name: &'static str,
    act_options: String,
    udp: bool,
}

async fn serve_until_signal<A: Act>(
    started: Started,
    server: Server<A>,
    shutdown: &Arc<Shutdown>,
) -> StatsSummary {
    let Started {
        name,
        act_options,
        udp,
    } = started;
    let jokes = server.jokes().current();
    let eligible = jokes.eligible_jokes();
    let jokes_served = jokes.jokes();
    tracing::info!(
        "{name} serving {}{} from {}{}{}",
        crate::stats::plural(jokes.jokes() as u64, "joke"),
        if eligible == jokes.jokes() {
            String::new()
        } else {
            format!(" ({eligible} of the length asked)")
        },
        server.jokes().path().display(),
        if act_options.is_empty() {
            String::new()
        } else {
            format!(" ({act_options})")
        },
        if udp { "; answering UDP too" } else { "" },
    );
    drop(jokes);
    let addr = server.local_addr();
    tracing::info!("{}", crate::wire::ready_line(addr));
    // A service manager that asked to be told (`Type=notify`) learns it now.
    let status = format!(
        "serving {}",
        crate::stats::plural(jokes_served as u64, "joke")
    );
    if let Err(error) = crate::activation::notify_ready(&status) {
        tracing::warn!("cannot tell the service manager we are ready (NOTIFY_SOCKET): {error}");
    }
    // For the person who just typed `cargo run`: how to get a joke, and how to stop.
    tracing::info!(
        "try `nc -d {} {}`, or `cargo run --release -p bench-client -- --addr {addr}`; Ctrl-C stops",
        addr.ip(),
        addr.port()
    );

    // ANCHOR: sighup
    let reload = server.reload_handle();
    let hangups = Arc::clone(shutdown);
    let reload_on_hangup = tokio::spawn(async move {
        loop {
            hangups.hangup.notified().await;
            reload.reload().await;
        }
    });
    // ANCHOR_END: sighup
    let summary = server
        .run(shutdown.requested.clone().cancelled_owned())
        .await;
    reload_on_hangup.abort();
    summary
}

/// Asks for a shutdown when stdin reaches end-of-file, if the environment asks for that with
/// [`wire::STOP_ON_STDIN_EOF`](crate::wire::STOP_ON_STDIN_EOF).
///
/// A supervisor (`bench-client compare`, the tests) holds the other end of our stdin, and the
/// kernel closes it when that process dies, by any means: this is how a server follows its
/// supervisor's death. The reading happens on a plain thread of its own, not through
/// `tokio::io::stdin`: that one reads on the blocking pool, and a read that never returns
/// would keep the runtime from shutting down.
fn watch_for_parent_gone(shutdown: &Arc<Shutdown>) {
    if std::env::var_os(crate::wire::STOP_ON_STDIN_EOF).is_none_or(|value| value != "1") {
        return;
    }
    let shutdown = Arc::clone(shutdown);
    let watcher = std::thread::Builder::new()
        .name("stdin-watcher".into())
        .spawn(move || {
            // Whatever the supervisor might write is thrown away; only the end matters. A
            // read error means there is nothing to watch any more: treated as the end.
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            shutdown.request("stdin closed: the supervisor is gone");
        });
    if let Err(error) = watcher {
        tracing::warn!("cannot watch stdin for the supervisor's death: {error}");
    }
}

/// Logs go to stderr; `RUST_LOG` chooses what (default: `info`).
fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Colours only for a person at a terminal, not for a log file or a test reading it.
fn log_in_colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// The log, and tokio-console's layer beside it when `--console` asked for it (only in a build
/// with the console). Each layer has its own filter: `RUST_LOG` decides what the log shows, and
/// the console still sees Tokio's task spans, which are far below the log's `info`.
fn init_logging(
    #[cfg(all(feature = "console", tokio_unstable))] console: Option<crate::console::Console>,
) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let log = tracing_subscriber::fmt::layer()
        // Through a queue and a thread of its own: a log reader that stops reading must never
        // block a worker (see `log_queue.rs`).
        .with_writer(crate::log_queue::stderr())
        .with_ansi(log_in_colour())
        // A log line that cannot be written (its reader closed the pipe) is dropped. By default
        // the subscriber would report that failure with `eprintln!`, to the same closed stderr,
        // and `eprintln!` panics when it cannot write: on the signal thread that panic would
        // swallow SIGTERM, on the main thread end the server with 101.
        .log_internal_errors(false)
        .with_filter(log_filter());
    let registry = tracing_subscriber::registry();
    #[cfg(all(feature = "console", tokio_unstable))]
    let registry = registry.with(console.map(|console| console.layer));
    let _ = registry.with(log).try_init();
}

/// Each connection is a file descriptor, and the usual soft limit (1024) is below the bursts
/// this server is built for. Raise it to the hard limit.
// ANCHOR: open_files
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 4096 => {
            tracing::warn!("open files limited to {limit}; large bursts will see accept errors")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!("cannot raise the open files limit: {error}"),
    }
}
// ANCHOR_END: open_files

/// Ends a start-up that cannot go on: the log lines queued before it are written first (so a
/// warning that explains the error comes before it), then `NAME: error: WHY` on stderr, and the
/// exit status `code`. A closed stderr loses the message but is no reason to panic.
fn refuse(name: &str, why: impl std::fmt::Display, code: u8) -> ExitCode {
    crate::log_queue::write_out();
    let _ = writeln!(std::io::stderr(), "{name}: error: {why}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Args)]
    struct Mode {
        /// Which way.
        #[arg(long, default_value = "spawn-blocking")]
        mode: String,
    }

    #[test]
    fn an_acts_own_options_are_named_in_the_start_up_line() {
        let command = Cli::<Mode>::command();
        let matches = command
            .clone()
            .try_get_matches_from(["act", "--mode", "block-in-place"])
            .unwrap();
        assert_eq!(act_options::<Mode>(&matches), "--mode block-in-place");
        let defaulted = command.try_get_matches_from(["act"]).unwrap();
        assert_eq!(act_options::<Mode>(&defaulted), "--mode spawn-blocking");
        let none = Cli::<NoActArgs>::command()
            .try_get_matches_from(["act"])
            .unwrap();
        assert_eq!(act_options::<NoActArgs>(&none), "");
    }
}
