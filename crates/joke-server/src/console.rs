//! `--console [ADDR]`: tokio-console's live view of the runtime, in a build made for it.
//!
//! tokio-console shows every task of a running program: how often it was polled, how long it
//! was busy (inside `poll`) and idle, and a histogram of its poll times. It gets them from
//! `console-subscriber`, a `tracing` layer that reads the spans and events Tokio emits about
//! its own tasks, and serves them over gRPC to the `tokio-console` program. Tokio emits those
//! only when built with `--cfg tokio_unstable` (and its `tracing` feature), which is why the
//! console lives in a build of its own, with its own target folder:
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" cargo run --release --target-dir target/console \
//!     -p act1-naive --features joke-server/console -- --console --io-delay 2ms
//! ```
//!
//! Any other build (the ordinary one, or the `console` feature without the cfg, as
//! `--all-features` gives) has no such layer, and refuses `--console` at start-up with the
//! command above rather than run without the console that was asked for.
//!
//! The harness binds the console's socket itself, before anything else starts, instead of
//! letting console-subscriber bind it on its background thread: a port in use is then a
//! start-up error with exit 2 (not a panic on a thread nobody watches while the server runs
//! on), port 0 picks a free port, and the address bound is logged.

use std::net::SocketAddr;

/// The command that builds and runs `act` with the console, for the refusal's message.
pub fn build_command(act: &str) -> String {
    format!(
        "RUSTFLAGS=\"--cfg tokio_unstable\" cargo run --release --target-dir target/console \
         -p {act} --features joke-server/console -- --console"
    )
}

/// Why `--console` cannot be served by this build, or why its socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "--console: this build has no tokio-console support ({missing}); build and run it with: {command}"
    )]
    NotInThisBuild {
        missing: &'static str,
        command: String,
    },
    #[error("--console {addr}: cannot listen there: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What this build lacks for the console, if anything.
const MISSING: Option<&str> = if cfg!(all(feature = "console", tokio_unstable)) {
    None
} else if cfg!(feature = "console") {
    Some(
        "it was built with the `console` feature but without --cfg tokio_unstable, which Tokio \
         needs to describe its tasks",
    )
} else {
    Some("it was built without joke-server's `console` feature and --cfg tokio_unstable")
};

/// Checks that this build can serve `--console`, before anything starts.
pub(crate) fn check(act: &str, asked: Option<SocketAddr>) -> Result<(), ConsoleError> {
    match (asked, MISSING) {
        (Some(_), Some(missing)) => Err(ConsoleError::NotInThisBuild {
            missing,
            command: build_command(act),
        }),
        _ => Ok(()),
    }
}

#[cfg(all(feature = "console", tokio_unstable))]
pub(crate) use served::{Console, start};

/// The console itself: only in a build with the feature and the cfg.
#[cfg(all(feature = "console", tokio_unstable))]
mod served {
    use std::net::SocketAddr;
    use std::time::Duration;

    use console_subscriber::{ConsoleLayer, ServerParts};
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::FilterFn;

    use super::ConsoleError;

    /// How long the console keeps a task that has ended. Its default is an hour, which for a
    /// server of short connections is a list of every connection of the last hour: a minute
    /// keeps the last few bursts, enough to look at, and a bounded memory.
    const RETENTION: Duration = Duration::from_secs(60);

    /// The channel of events between the console's layer and its aggregator. The aggregator
    /// empties it when it wakes: on each publish below, and whenever the channel is half full.
    /// Each wake-up takes in at most 128 events (a receive spends a unit of Tokio's
    /// cooperative budget, and the aggregator's loop stops when the budget is gone), so the
    /// half-full wake-ups are the ones that keep pace with a busy server. console-subscriber's
    /// default of 102,400 holds them back until 51,200 events wait; at 4,096 they begin at
    /// 2,048. A server that makes events faster than the aggregator takes them in fills the
    /// channel, and the console counts what it had to drop.
    const EVENT_BUFFER: usize = 4096;

    /// How often the aggregator sends the console what changed, and takes in events below the
    /// half-full mark. console-subscriber's default is a second; a tenth of one drains the
    /// last 2,048 waiting events in under two seconds once the load stops.
    const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

    /// The console's layer, for the logging set-up to put under its own, and where it listens.
    pub(crate) struct Console {
        pub(crate) layer: Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>,
        pub(crate) addr: SocketAddr,
    }

    /// The spans and events the console reads: Tokio's own (`runtime.*` names, `tokio` and
    /// `runtime` targets), as console-subscriber's own set-up filters them. A filter on this
    /// layer alone, so the log's filter (`RUST_LOG`) and this one do not restrict each other.
    fn tokio_instrumentation(meta: &tracing::Metadata<'_>) -> bool {
        if meta.is_event() {
            meta.target().starts_with("runtime") || meta.target().starts_with("tokio")
        } else {
            meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
        }
    }

    /// Binds `addr` and starts the console's gRPC server on a thread of its own, with a
    /// one-thread runtime of its own, so it never takes a worker of the runtime it watches.
    pub(crate) fn start(addr: SocketAddr) -> Result<Console, ConsoleError> {
        let bind_error = |source| ConsoleError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(bind_error)?;
        let (layer, server) = ConsoleLayer::builder()
            .retention(RETENTION)
            .event_buffer_capacity(EVENT_BUFFER)
            .publish_interval(PUBLISH_INTERVAL)
            .build();
        let ServerParts {
            instrument_server,
            aggregator,
            ..
        } = server.into_parts();
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                // The console's own tasks would otherwise describe themselves to the console,
                // and its log lines would describe every update it sends.
                let quiet =
                    tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
                let served = runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    // Inside Tokio's cooperative budget, as an ordinary task: run outside it
                    // (`tokio::task::unconstrained`), the aggregator empties the channel before
                    // doing anything else, and under a load that refills it as fast (Act II
                    // serving thousands of connections a second) it never stops emptying: this
                    // thread's gRPC server is never polled and the console freezes.
                    tokio::spawn(aggregator.run());
                    tonic::transport::Server::builder()
                        .add_service(instrument_server)
                        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                            listener,
                        ))
                        .await
                        .map_err(std::io::Error::other)
                });
                drop(quiet);
                if let Err(error) = served {
                    tracing::error!("--console {bound}: the console's server stopped: {error}");
                }
            })
            .map_err(bind_error)?;
        let layer = layer.with_filter(FilterFn::new(tokio_instrumentation));
        Ok(Console {
            layer: Box::new(layer),
            addr: bound,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_the_command_that_builds_the_console() {
        let asked = Some("127.0.0.1:0".parse().unwrap());
        let result = check("act1-naive", asked);
        if cfg!(all(feature = "console", tokio_unstable)) {
            assert!(result.is_ok(), "{result:?}");
        } else {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(&build_command("act1-naive")), "{message}");
            assert!(message.contains("--cfg tokio_unstable"), "{message}");
        }
        assert!(check("act1-naive", None).is_ok());
    }
}
