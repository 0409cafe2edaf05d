//! Times bursts of connections against every act's real binary, interleaved round by round,
//! and prints one line per act: median wall time of a burst, its ratio to the finale, errors,
//! and the server's own slow-poll count. A quick yardstick; `bench-client compare` is the
//! full tool.
//!
//! ```text
//! cargo build --release -p act1-naive -p act2-spawn-blocking -p act4-custom-future \
//!     -p act5-channel -p act6-framed -p act7-tokio-fs -p finale-cached
//! cargo run --release -p joke-testkit --example burst -- --conns 1000 --rounds 5
//! cargo run --release -p joke-testkit --example burst -- --io-delay 2ms --acts act1-naive,act2-spawn-blocking
//! ```
//!
//! Options: `--conns N` (1000), `--rounds N` (5), `--io-delay D` (`0ms`, as the servers take
//! it), `--acts LIST` (comma-separated binary names; `act2-spawn-blocking:block-in-place` runs
//! Act II with `--mode block-in-place`), `--bin-dir DIR` (`target/release`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use joke_server::StatsSummary;
use joke_testkit::client::{open_all_then_read, raise_open_files_limit};
use joke_testkit::{RunningBinary, client_runtime};

const ALL_ACTS: &[&str] = &[
    "act1-naive",
    "act2-spawn-blocking",
    "act2-spawn-blocking:block-in-place",
    "act4-custom-future",
    "act5-channel",
    "act6-framed",
    "act7-tokio-fs",
    "finale-cached",
];

struct Options {
    conns: usize,
    rounds: usize,
    io_delay: String,
    acts: Vec<String>,
    bin_dir: PathBuf,
}

fn parse_options() -> Options {
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut options = Options {
        conns: 1000,
        rounds: 5,
        io_delay: "0ms".into(),
        acts: ALL_ACTS.iter().map(|act| act.to_string()).collect(),
        bin_dir: workspace.join("target/release"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--conns" => options.conns = value.parse().expect("--conns N"),
            "--rounds" => options.rounds = value.parse().expect("--rounds N"),
            "--io-delay" => options.io_delay = value,
            "--acts" => options.acts = value.split(',').map(String::from).collect(),
            "--bin-dir" => options.bin_dir = value.into(),
            other => panic!("unknown option {other}"),
        }
    }
    options
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let options = parse_options();
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let jokes_path = workspace.join("jokes.txt");
    let jokes: HashSet<Vec<u8>> = joke_index::Index::build(&jokes_path, Default::default())
        .expect("indexing jokes.txt")
        .read_all_blocking()
        .expect("reading jokes.txt")
        .into_iter()
        .map(String::into_bytes)
        .collect();
    raise_open_files_limit(options.conns as u64 + 256);

    let servers: Vec<(String, RunningBinary)> = options
        .acts
        .iter()
        .map(|act| {
            let (binary, mode) = match act.split_once(':') {
                Some((binary, mode)) => (binary, Some(mode)),
                None => (act.as_str(), None),
            };
            let mut args: Vec<OsString> = vec![
                "--addr".into(),
                "127.0.0.1:0".into(),
                "--io-delay".into(),
                options.io_delay.clone().into(),
                "--jokes".into(),
                jokes_path.clone().into(),
            ];
            if let Some(mode) = mode {
                args.extend(["--mode".into(), mode.into()]);
            }
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
            let path = options.bin_dir.join(binary);
            let server = RunningBinary::start(path.to_str().expect("a UTF-8 path"), &args);
            (act.clone(), server)
        })
        .collect();

    let runtime = client_runtime();
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); servers.len()];
    let mut errors = vec![0usize; servers.len()];
    for _round in 0..options.rounds {
        for (n, (_, server)) in servers.iter().enumerate() {
            let addr = server.addr();
            let started = Instant::now();
            let received = runtime.block_on(open_all_then_read(addr, options.conns));
            walls[n].push(started.elapsed());
            errors[n] += received
                .iter()
                .filter(|reply| !matches!(reply, Ok(bytes) if jokes.contains(bytes)))
                .count();
        }
    }

    let mut rows = Vec::new();
    for ((act, server), (walls, errors)) in servers.into_iter().zip(walls.into_iter().zip(errors)) {
        let exited = server.terminate();
        let stats: StatsSummary = exited
            .stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or_default();
        rows.push((act, median(walls.clone()), walls, errors, stats));
    }
    let finale = rows
        .iter()
        .find(|row| row.0 == "finale-cached")
        .map(|row| row.1);
    println!(
        "{} connections per burst, {} bursts per act, --io-delay {}",
        options.conns, options.rounds, options.io_delay
    );
    println!(
        "{:<36} {:>10} {:>8} {:>7} {:>10} {:>8} {:>11}  bursts (ms)",
        "act", "median ms", "ratio", "errors", "slow polls", "polls", "longest µs"
    );
    for (act, median, walls, errors, stats) in rows {
        let ratio = finale
            .map(|finale| format!("{:.2}", median.as_secs_f64() / finale.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        let bursts: Vec<String> = walls
            .iter()
            .map(|wall| format!("{:.1}", wall.as_secs_f64() * 1e3))
            .collect();
        println!(
            "{:<36} {:>10.1} {:>8} {:>7} {:>10} {:>8} {:>11}  {}",
            act,
            median.as_secs_f64() * 1e3,
            ratio,
            errors,
            stats.slow_polls,
            stats.polls,
            stats.longest_poll_us,
            bursts.join(" ")
        );
    }
}
