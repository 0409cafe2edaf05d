//! An act served in-process, on its own runtime, on a free loopback port.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use joke_server::{Act, Config, Server, StatsSummary};
use tokio_util::sync::CancellationToken;

/// How long a stopped server's runtime may take to wind down its last tasks (blocking reads
/// included) before it is abandoned.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(5);

/// A [`joke_server::Server`] running in this process, on a runtime and thread of its own.
///
/// The server gets its own runtime so that what a test measures is the server alone: the
/// clients of the test run on another runtime, and cannot take the server's worker threads
/// (nor be blocked by an act that blocks them). [`stop`](Self::stop) shuts it down as SIGTERM
/// would and returns its statistics; dropping it without `stop` (a failing test) shuts it down
/// too.
#[derive(Debug)]
pub struct ServerUnderTest {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<JoinHandle<StatsSummary>>,
}

impl ServerUnderTest {
    /// Serves `act` with `config` (use [`Config::new`] for the defaults on `127.0.0.1:0`) on a
    /// runtime with two worker threads.
    pub fn start<A: Act>(act: A, config: Config) -> Self {
        Self::start_with_workers(act, config, 2)
    }

    /// Like [`start`](Self::start), with `workers` runtime worker threads (`--workers`).
    ///
    /// # Panics
    /// When the runtime cannot be built or the server cannot start (bad jokes file, say).
    pub fn start_with_workers<A: Act>(act: A, config: Config, workers: usize) -> Self {
        let stop = CancellationToken::new();
        let (bound_tx, bound_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("server-under-test".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .build()
                    .expect("building the server's runtime");
                let summary = runtime.block_on(async move {
                    let server = match Server::bind(act, config).await {
                        Ok(server) => server,
                        Err(error) => {
                            let _ = bound_tx.send(Err(error.to_string()));
                            return StatsSummary::default();
                        }
                    };
                    let _ = bound_tx.send(Ok(server.local_addr()));
                    server.run(stopping.cancelled_owned()).await
                });
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
                summary
            })
            .expect("spawning the server's thread");
        let addr = match bound_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(error)) => panic!("the server did not start: {error}"),
            Err(_) => panic!("the server's thread died before binding"),
        };
        ServerUnderTest {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets jokes in flight finish, and returns the server's statistics.
    pub fn stop(mut self) -> StatsSummary {
        self.stop.cancel();
        let thread = self.thread.take().expect("stop is called once");
        match thread.join() {
            Ok(summary) => summary,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // Already unwinding from a failed assertion, most likely: don't panic again.
            let _ = thread.join();
        }
    }
}
