//! What serving one joke costs each act, in CPU time, without the network's noise.
//!
//! One criterion group, one benchmark per act this build has: the act's own `serve_joke` (the
//! function each chapter is about) writes joke N of the workspace's `jokes.txt` into one end of
//! a loopback TCP socket pair, and the other end reads exactly that joke's bytes. The pair is
//! made once per act and reused, so connecting, accepting and closing are left out: what is left
//! is each act's technique — a read on the worker (Act I), a trip to the blocking pool and back
//! (Acts II, V, VII), a channel (Act V), a codec (Act VI), Tokio's files (Act VII), a copy out of
//! memory (the finale). The jokes go round the file in order, so every act serves the same ones.
//!
//! Run with `cargo bench -p acts --bench serve_one_joke`. The runtime is a multi-thread one with
//! two workers, as the acts run by default on a two-core machine (and `block_in_place` needs
//! one). Under `cargo test --all-targets` each benchmark runs once, as a smoke test.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use joke_index::{FormatChoice, Index};
use joke_server::{Act, JokeToServe};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The jokes every act serves, and their served sizes (so the reading end knows when a joke
/// is complete: the pair stays open between jokes).
struct Jokes {
    index: Arc<Index>,
    sizes: Vec<usize>,
}

impl Jokes {
    fn load() -> Jokes {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jokes.txt");
        let index = Arc::new(Index::build(&path, FormatChoice::Auto).expect("index jokes.txt"));
        let sizes = (0..index.len())
            .map(|n| index.read_joke_blocking(n).expect("read a joke").len())
            .collect();
        Jokes { index, sizes }
    }
}

/// A connected loopback pair: the act writes into `server`, the bench reads from `client`.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (server, _) = accepted.expect("accept");
    (client.expect("connect"), server)
}

/// Adds `act`'s benchmark to the group: `iters` jokes served one after the other, each read
/// whole by the other end before the next is asked for.
fn bench_act<A: Act>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    name: &str,
    act: A,
    jokes: &Jokes,
) {
    act.index_loaded(&jokes.index)
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    let (mut client, mut server) = runtime.block_on(socket_pair());
    let mut buffer = vec![0u8; jokes.sizes.iter().copied().max().unwrap_or(0)];
    let mut next = 0usize;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let number = next % jokes.sizes.len();
                    next += 1;
                    let joke = JokeToServe::new(Arc::clone(&jokes.index), number, Duration::ZERO);
                    // Serve and read at once: a joke larger than the socket's buffers would
                    // otherwise wait for a reader that is not reading yet.
                    let want = jokes.sizes[number];
                    let (served, read) = tokio::join!(
                        act.serve_joke(joke, &mut server),
                        client.read_exact(&mut buffer[..want])
                    );
                    served.unwrap_or_else(|error| panic!("{name}: joke {number}: {error}"));
                    read.unwrap_or_else(|error| panic!("{name}: joke {number}: {error}"));
                    black_box(&buffer[..want]);
                }
                started.elapsed()
            })
        })
    });
}

fn main() {
    let jokes = Jokes::load();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("serve one joke over a loopback socket pair");
    acts::for_every_act!(|entry, act| {
        bench_act(&mut group, &runtime, entry.name, act, &jokes);
    });
    group.finish();
    criterion.final_summary();
}
