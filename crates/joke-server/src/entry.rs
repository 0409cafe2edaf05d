//! What an act's `main` calls: parse the command line, build the runtime, serve until a
//! signal, and turn the outcome into an exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use joke_index::exit_code;
use tokio::signal::unix::{SignalKind, signal};

use crate::{Act, Config, Flavor, NoActArgs, Server, ServerArgs};

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
    init_logging();
    let act = make(cli.act);
    let flavor = cli.server.flavor;
    // Refused before the runtime exists: an act that cannot run on this flavour says why.
    if let Err(why) = act.check_runtime(flavor.tokio()) {
        eprintln!(
            "{name}: error: cannot run on --flavor {}: {why}",
            flavor.name()
        );
        return ExitCode::from(exit_code::BAD_INPUT);
    }
    if flavor == Flavor::CurrentThread && cli.server.workers.is_some() {
        eprintln!(
            "{name}: error: --workers is for --flavor multi-thread; a current-thread runtime \
             has exactly one thread"
        );
        return ExitCode::from(exit_code::BAD_INPUT);
    }
    raise_open_files_limit();

    // ANCHOR: runtime
    let mut runtime = match flavor {
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    if let Some(workers) = cli.server.workers {
        runtime.worker_threads(workers.get());
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: error: cannot start the Tokio runtime: {error}");
            return ExitCode::from(exit_code::FAILURE);
        }
    };
    // ANCHOR_END: runtime
    let config = Config::from_args(&cli.server);
    runtime.block_on(serve_until_signal(name, act, config, act_options))
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

async fn serve_until_signal<A: Act>(
    name: &'static str,
    act: A,
    config: Config,
    act_options: String,
) -> ExitCode {
    let udp = config.udp;
    // Signal handlers are installed before the server starts, so a SIGTERM that arrives right
    // after "listening on" is a clean shutdown, not the default kill.
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    let (mut interrupt, mut terminate, mut hangup) = match signals {
        (Ok(i), Ok(t), Ok(h)) => (i, t, h),
        _ => {
            eprintln!("{name}: error: cannot install signal handlers");
            return ExitCode::from(exit_code::FAILURE);
        }
    };

    let server = match Server::bind(act, config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{name}: error: {error}");
            return ExitCode::from(exit_code::BAD_INPUT);
        }
    };
    let jokes = server.jokes().current();
    tracing::info!(
        "{name} serving {} from {}{}{}",
        crate::stats::plural(jokes.len() as u64, "joke"),
        jokes.path().display(),
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
    // For the person who just typed `cargo run`: how to get a joke, and how to stop.
    tracing::info!(
        "try `nc -d {} {}`, or `cargo run --release -p bench-client -- --addr {addr}`; Ctrl-C stops",
        addr.ip(),
        addr.port()
    );

    // ANCHOR: sighup
    let reload = server.reload_handle();
    let reload_on_hangup = tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the jokes file");
            reload.reload().await;
        }
    });
    // ANCHOR_END: sighup
    // ANCHOR: signals
    let parent_gone = parent_gone();
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            () = parent_gone => tracing::info!("stdin closed: the supervisor is gone"),
        }
    };
    // ANCHOR_END: signals
    let summary = server.run(shutdown).await;
    reload_on_hangup.abort();
    tracing::info!("{name}: {summary}");
    // One JSON line on stdout: the statistics, for `bench-client compare` and other tools.
    println!("{}", crate::wire::stats_line(&summary));
    ExitCode::SUCCESS
}

/// Completes when stdin reaches end-of-file, if the environment asks for that with
/// [`wire::STOP_ON_STDIN_EOF`](crate::wire::STOP_ON_STDIN_EOF); otherwise never.
///
/// A supervisor (`bench-client compare`, the tests) holds the other end of our stdin, and the
/// kernel closes it when that process dies, by any means: this is how a server follows its
/// supervisor's death. The reading happens on a plain thread of its own, not through
/// `tokio::io::stdin`: that one reads on the blocking pool, and a read that never returns
/// would keep the runtime from shutting down.
fn parent_gone() -> impl std::future::Future<Output = ()> {
    let (gone, gone_rx) = tokio::sync::oneshot::channel::<()>();
    if std::env::var_os(crate::wire::STOP_ON_STDIN_EOF).is_some_and(|value| value == "1") {
        let watcher = std::thread::Builder::new()
            .name("stdin-watcher".into())
            .spawn(move || {
                // Whatever the supervisor might write is thrown away; only the end matters. A
                // read error means there is nothing to watch any more: treated as the end.
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = gone.send(());
            });
        if let Err(error) = watcher {
            tracing::warn!("cannot watch stdin for the supervisor's death: {error}");
        }
    }
    async move {
        // The sender dropped without sending: nothing is watched, so wait for a signal.
        if gone_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Logs go to stderr; `RUST_LOG` chooses what (default: `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not for a log file or a test reading it.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
