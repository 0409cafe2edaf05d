//! The real binary against real servers on loopback: an act started in this process, tiny
//! misbehaving servers, and `compare` with every act as its own process.
//!
//! Every run is bounded (small `--conns`, short `--timeout`, and an outer limit that fails the
//! test instead of hanging it); no assertion depends on how fast this machine is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use joke_server::{Config, StatsSummary};
use joke_testkit::ServerUnderTest;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const BENCH_CLIENT: &str = env!("CARGO_BIN_EXE_bench-client");

/// Far longer than any of these runs needs, even in a debug build on a busy machine; it only
/// turns a hang into a failure.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn jokes_file() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../jokes.txt"))
}

/// Runs bench-client with `args` and returns its exit code, stdout and stderr.
async fn bench_client(args: &[&str]) -> (Option<i32>, String, String) {
    let run = tokio::process::Command::new(BENCH_CLIENT)
        .args(args)
        .kill_on_drop(true)
        .output();
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("bench-client {args:?} still running after {RUN_LIMIT:?}"))
        .expect("bench-client runs");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs bench-client with `--output json` added and parses what it prints.
async fn bench_client_json(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let (code, stdout, stderr) = bench_client(&args).await;
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, json, stderr)
}

/// Act I, served in this process by joke-testkit, on a runtime and thread of its own.
struct InProcessAct {
    addr: SocketAddr,
    server: ServerUnderTest,
}

impl InProcessAct {
    async fn start() -> Self {
        // Starting waits for the bind and stopping joins the server's thread: both block, so
        // they run off this test's worker threads.
        let server = tokio::task::spawn_blocking(|| {
            ServerUnderTest::start(acts::make::act1_naive(), Config::new(jokes_file()))
        })
        .await
        .expect("act1 starts");
        InProcessAct {
            addr: server.addr(),
            server,
        }
    }

    async fn stop(self) -> StatsSummary {
        tokio::task::spawn_blocking(move || self.server.stop())
            .await
            .expect("the server stops")
    }
}

/// A server that answers every connection with `text` and closes.
async fn serve_text(text: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.write_all(text).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// A server that accepts every connection, keeps it open and writes nothing (until the
/// returned task is aborted).
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, holder)
}

fn count(json: &Value, key: &str) -> u64 {
    json[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {json:#}"))
}

fn errors_total(errors: &Value) -> u64 {
    ["refused", "reset", "timeout", "invalid", "other"]
        .iter()
        .map(|kind| {
            errors[kind]
                .as_u64()
                .unwrap_or_else(|| panic!("errors.{kind} missing in {errors}"))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_joke_from_a_real_act_verifies() {
    let act = InProcessAct::start().await;
    let addr = act.addr.to_string();
    let jokes = jokes_file();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "50",
        "--rounds",
        "2",
        "--verify",
        jokes.to_str().unwrap(),
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    let stats = act.stop().await;

    assert_eq!(code, Some(0), "{json:#}\n{stderr}");
    assert_eq!(count(&json, "connections"), 100);
    assert_eq!(count(&json, "succeeded"), 100);
    assert_eq!(count(&json, "failed"), 0);
    assert_eq!(errors_total(&json["errors"]), 0);
    assert_eq!(json["success_rate"], 1.0);
    assert_eq!(json["wall_ms"]["rounds"].as_array().unwrap().len(), 2);
    assert!(count(&json, "bytes_received") > 100, "{json:#}");
    let latency = &json["latency_ms"];
    for key in ["min", "mean", "p50", "p90", "p99", "p99_9", "max"] {
        assert!(
            latency[key].as_f64().is_some(),
            "latency_ms.{key}: {json:#}"
        );
    }
    assert!(latency["min"].as_f64() <= latency["p50"].as_f64());
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64());
    assert!(latency["p99"].as_f64() <= latency["max"].as_f64());
    let buckets: u64 = json["latency_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(buckets, 100);
    // The server agrees: it served every one of them.
    assert_eq!(stats.served, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_report_has_its_sections_in_order() {
    let act = InProcessAct::start().await;
    let addr = act.addr.to_string();
    let (code, stdout, stderr) = bench_client(&["--addr", &addr, "--conns", "20"]).await;
    act.stop().await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let order = [
        "Success rate",
        "Total",
        "Slowest",
        "Fastest",
        "Average",
        "Connections/sec",
        "Latency histogram",
        "Latency percentiles",
        "99.90%",
        "Errors: none",
    ];
    let mut from = 0;
    for heading in order {
        let at = stdout[from..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading:?} missing or out of order in:\n{stdout}"));
        from += at;
    }
    // Not a terminal: no colour codes.
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_client_still_gets_its_joke() {
    let act = InProcessAct::start().await;
    let addr = act.addr.to_string();
    let jokes = jokes_file();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "30",
        "--send",
        "HELLO? is this the joke line?\\r\\n",
        "--verify",
        jokes.to_str().unwrap(),
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    let stats = act.stop().await;
    assert_eq!(code, Some(0), "{json:#}\n{stderr}");
    assert_eq!(count(&json, "succeeded"), 30);
    let sent = "HELLO? is this the joke line?\r\n".len() as u64;
    assert_eq!(count(&json, "send_bytes"), sent);
    assert_eq!(count(&json, "bytes_sent"), 30 * sent);
    assert_eq!(stats.served, 30);
    assert_eq!(stats.write_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_serving_something_else_fails_verification() {
    let addr = serve_text(b"This is not a joke from the file.\n")
        .await
        .to_string();
    let jokes = jokes_file();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "10",
        "--verify",
        jokes.to_str().unwrap(),
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    assert_eq!(code, Some(1), "{json:#}\n{stderr}");
    assert_eq!(count(&json, "succeeded"), 0);
    assert_eq!(json["errors"]["invalid"], 10);
    assert_eq!(errors_total(&json["errors"]), 10);
    let example = json["error_examples"]["invalid"].as_str().unwrap();
    assert!(example.contains("not one joke"), "{example}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_joke_is_not_a_joke() {
    let text = std::fs::read(jokes_file()).unwrap();
    let (_, jokes) = joke_index::jokes_in(&text, joke_index::FormatChoice::Auto).unwrap();
    let joke = jokes.iter().find(|j| j.len() > 20).unwrap();
    let half: &'static [u8] = joke.as_bytes()[..joke.len() / 2].to_vec().leak();
    let addr = serve_text(half).await.to_string();
    let path = jokes_file();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "5",
        "--verify",
        path.to_str().unwrap(),
    ];
    let (code, json, _) = bench_client_json(&args).await;
    assert_eq!(code, Some(1));
    assert_eq!(json["errors"]["invalid"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_writes_is_a_counted_timeout() {
    let (addr, holder) = silent_server().await;
    let args = ["--addr", &addr, "--conns", "5", "--timeout", "300ms"];
    let (code, json, stderr) = bench_client_json(&args).await;
    holder.abort();
    assert_eq!(code, Some(1), "{json:#}\n{stderr}");
    assert_eq!(json["errors"]["timeout"], 5, "{json:#}");
    assert_eq!(count(&json, "succeeded"), 0);
    assert!(json["latency_ms"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_counted_as_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let (code, json, _) = bench_client_json(&["--addr", &addr, "--conns", "3"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(json["errors"]["refused"], 3, "{json:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    for args in [
        &["--conns", "many"][..],
        &["--conns", "0"],
        &["--output", "yaml"],
        &["--send", "\\q"],
        &["compare", "--acts", "act3"],
        &["compare", "--rounds", "0"],
        &["--conns", "5", "compare"],
    ] {
        let (code, _, stderr) = bench_client(args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?} printed no message");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_say_what_is_expected() {
    for (args, expected) in [
        (&["--conns", "0"][..], "at least 1"),
        (&["compare", "--rounds", "0"], "at least 1"),
        (&["--timeout", "soon"], "expected a duration such as 2ms"),
        (&["compare", "--io-delay", "-1ms"], "cannot be negative"),
    ] {
        let (code, _, stderr) = bench_client(args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_verify_file_is_bad_input() {
    let (code, _, stderr) =
        bench_client(&["--conns", "1", "--verify", "/nonexistent/jokes.txt"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/jokes.txt"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_runs_every_act_and_draws_the_chart() {
    let folder = tempfile::tempdir().unwrap();
    let chart = folder.path().join("charts/compare.svg");
    let args = [
        "compare",
        "--conns",
        "20",
        "--rounds",
        "2",
        "--chart",
        chart.to_str().unwrap(),
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    assert_eq!(code, Some(0), "{json:#}\n{stderr}");

    assert_eq!(json["conns"], 20);
    assert_eq!(json["rounds"], 2);
    let acts = json["acts"].as_array().unwrap();
    let names: Vec<&str> = acts.iter().map(|a| a["act"].as_str().unwrap()).collect();
    // Every act this build has, and Act VIII when this build lacks it but its own build
    // (`act8_io_uring::BUILD_COMMAND`) has been made and is not stale: compare starts that
    // binary. A stale one (its sources changed since; the unit tests of `separate_build` check
    // how that is told) is left out with a warning that says so.
    let built = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join(act8_io_uring::BUILT_BINARY)
        .is_file();
    let stale = stderr.contains("act8-io-uring) is not in this run: its own build, ");
    assert!(
        !stale || built,
        "a build that does not exist called stale: {stderr}"
    );
    let expected: Vec<&str> = acts::ACTS
        .iter()
        .filter(|a| a.is_available() || (a.name == "act8-io-uring" && built && !stale))
        .map(|a| a.name)
        .collect();
    assert_eq!(names, expected, "every act, in story order");
    if !expected.contains(&"act8-io-uring") {
        // Left out, and the note (or, for a stale build, the warning) says how to include it.
        assert!(
            stderr.contains(&act8_io_uring::BUILD_COMMAND.replacen("cargo run", "cargo build", 1)),
            "no note on Act VIII: {stderr}"
        );
        if stale {
            assert!(stderr.contains("bench-client: warning: "), "{stderr}");
            assert!(stderr.contains(", is stale ("), "{stderr}");
        }
    }
    let has_baseline = expected.contains(&acts::BASELINE);
    for act in acts {
        let name = &act["act"];
        let load = &act["load"];
        assert_eq!(count(load, "connections"), 40, "{name}");
        assert_eq!(count(load, "succeeded"), 40, "{name}: {load:#}");
        assert_eq!(errors_total(&load["errors"]), 0, "{name}");
        assert_eq!(load["wall_ms"]["rounds"].as_array().unwrap().len(), 2);
        assert!(load["latency_ms"]["p99"].as_f64().is_some(), "{name}");
        let server = &act["server"];
        assert_eq!(count(server, "served"), 40, "{name}: {server:#}");
        for key in [
            "slow_polls",
            "polls",
            "longest_poll_us",
            "slow_poll_threshold_us",
        ] {
            count(server, key);
        }
        assert!(server["mean_poll_us"].as_f64().is_some(), "{name}");
        assert_eq!(act["server_exit_code"], 0, "{name}");
        assert!(
            act["server_problem"].is_null(),
            "{name}: {}",
            act["server_problem"]
        );
        // A number, or null for an act the 2018 article did not have (Act VIII).
        let in_2018 = !acts::entry(name.as_str().unwrap())
            .seed_ratio_2018
            .low
            .is_nan();
        assert_eq!(
            act["seed_ratio_2018"]["low"].as_f64().is_some(),
            in_2018,
            "{name}"
        );
        assert_eq!(act["ratio_to_baseline"].is_number(), has_baseline, "{name}");
    }

    // The chart is a well-formed SVG that names every act.
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    let document = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
    assert_eq!(document.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(str::trim)
        .collect();
    for name in &expected {
        assert!(
            texts.contains(name),
            "{name} missing from the chart: {texts:?}"
        );
    }
    let rects = document
        .descendants()
        .filter(|node| node.has_tag_name("rect"))
        .count();
    assert!(
        rects >= expected.len(),
        "{rects} rects for {} bars",
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_prints_one_table() {
    let (code, stdout, stderr) = bench_client(&[
        "compare", "--conns", "10", "--rounds", "1", "--acts", "act1",
    ])
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let header = stdout
        .lines()
        .find(|line| line.starts_with("act "))
        .unwrap_or_else(|| panic!("no table header in:\n{stdout}"));
    for column in ["wall", "p50", "p99", "errors", "slow polls", "2018"] {
        assert!(header.contains(column), "{column} missing: {header}");
    }
    let row = stdout
        .lines()
        .find(|line| line.starts_with("act1-naive"))
        .unwrap_or_else(|| panic!("no act1 row in:\n{stdout}"));
    assert!(row.contains("6.6×"), "{row}");
    if cfg!(debug_assertions) {
        assert!(stderr.contains("debug build"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_verifies_every_joke_and_reads_the_servers_memory() {
    let args = [
        "soak",
        "--total",
        "300",
        "--burst",
        "100",
        "--acts",
        "act1,finale",
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    assert_eq!(code, Some(0), "{json:#}\n{stderr}");
    assert_eq!(json["total"], 300);
    assert_eq!(json["burst"], 100);
    let acts = json["acts"].as_array().unwrap();
    let names: Vec<&str> = acts.iter().map(|a| a["act"].as_str().unwrap()).collect();
    assert_eq!(names, ["act1-naive", "finale-cached"]);
    for act in acts {
        let name = &act["act"];
        assert_eq!(count(&act["load"], "succeeded"), 300, "{name}");
        assert_eq!(errors_total(&act["load"]["errors"]), 0, "{name}");
        assert_eq!(
            act["load"]["wall_ms"]["rounds"].as_array().unwrap().len(),
            3
        );
        assert_eq!(count(&act["server"], "served"), 300, "{name}");
        for key in ["rss_kib_idle", "rss_kib_after_first_burst", "rss_kib_end"] {
            assert!(count(act, key) > 0, "{name}: {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_with_a_bad_jokes_file_is_bad_input() {
    let folder = tempfile::tempdir().unwrap();
    let empty = folder.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let (code, _, stderr) = bench_client(&[
        "soak",
        "--total",
        "10",
        "--burst",
        "10",
        "--jokes",
        empty.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("empty.txt"), "{stderr}");
}

// The rate mode and `sweep`. Rates are low and runs a second or two: these check what the
// client does (its schedule, its bound, its report), never how fast anything is.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_mode_keeps_its_schedule_against_a_real_act() {
    let act = InProcessAct::start().await;
    let addr = act.addr.to_string();
    let jokes = jokes_file();
    let args = [
        "--addr",
        &addr,
        "--rate",
        "20/s",
        "--duration",
        "1s",
        "--warmup",
        "250ms",
        "--verify",
        jokes.to_str().unwrap(),
    ];
    let began = std::time::Instant::now();
    let (code, json, stderr) = bench_client_json(&args).await;
    let took = began.elapsed();
    let stats = act.stop().await;

    assert_eq!(code, Some(0), "{json:#}\n{stderr}");
    assert_eq!(json["rate"], "20/s");
    // 5 warm-up connections (250 ms at 20/s), then 20 counted, every one started and verified.
    assert_eq!(count(&json, "warmup_connections"), 5, "{json:#}");
    for key in ["scheduled", "started", "succeeded"] {
        assert_eq!(count(&json, key), 20, "{key}: {json:#}");
    }
    assert_eq!(count(&json, "not_started"), 0);
    assert_eq!(count(&json, "failed"), 0);
    assert_eq!(count(&json, "waited_for_slot"), 0);
    assert!(json["limited_by"].is_null(), "{json:#}");
    assert_eq!(errors_total(&json["errors"]), 0);
    assert!(json["schedule_kept"].is_boolean(), "{json:#}");
    // The server saw the warm-up too.
    assert_eq!(stats.served, 25);
    // A schedule, not a burst: the last connection was due 1.2 s after the first, so the run
    // cannot end sooner (a lower bound only the schedule produces).
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    // A response time runs from the moment the connection was due, never later than its
    // connect: it can only be longer than the service time, at every percentile.
    for key in ["p50", "p90", "p99", "max"] {
        let response = json["response_ms"][key].as_f64().unwrap();
        let service = json["service_ms"][key].as_f64().unwrap();
        assert!(response >= service, "{key}: {json:#}");
    }
    assert!(json["lateness_ms"]["max"].as_f64().unwrap() >= 0.0);
    assert!(json["achieved_per_sec"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_mode_says_when_its_bound_limits_the_run() {
    let (addr, holder) = silent_server().await;
    let args = [
        "--addr",
        &addr,
        "--rate",
        "40/s",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--max-open",
        "4",
        "--timeout",
        "300ms",
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    holder.abort();
    assert_eq!(code, Some(1), "{json:#}\n{stderr}");
    assert_eq!(json["limited_by"], "max-open", "{json:#}");
    assert_eq!(count(&json, "max_open"), 4);
    assert!(count(&json, "waited_for_slot") > 0, "{json:#}");
    assert!(json["errors"]["timeout"].as_u64().unwrap() > 0, "{json:#}");
    assert!(
        stderr.contains("--max-open 4 was reached")
            && stderr.contains("the client, not the server"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_files_limit_is_named_when_it_is_the_bound() {
    let (addr, holder) = silent_server().await;
    // A shell lowers the limit to 80 open files, hard and soft, then becomes bench-client;
    // 64 of them are kept for things other than connections. Each connection is held for the
    // whole 300 ms timeout, so about 30 are open at once at 100/s: more than the 16 that fit.
    let command = format!(
        "ulimit -n 80 && exec {BENCH_CLIENT} --addr {addr} --rate 100/s --duration 1s \
         --warmup 0s --max-open 1000 --timeout 300ms --output json"
    );
    let run = tokio::process::Command::new("sh")
        .args(["-c", &command])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_LIMIT, run).await.unwrap().unwrap();
    holder.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(output.status.code(), Some(1), "{json:#}\n{stderr}");
    assert_eq!(json["max_open_set_by"], "open-files", "{json:#}");
    assert_eq!(count(&json, "max_open"), 16, "{json:#}");
    assert_eq!(json["limited_by"], "open-files", "{json:#}");
    assert!(stderr.contains("the open-files limit"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rates_exit_2_naming_the_argument() {
    for (args, names) in [
        (&["--rate", "0/s"][..], "--rate"),
        (&["--rate", "fast"], "--rate"),
        (&["--rate", "-3/s"], "--rate"),
        (&["--rate", "5/h"], "--rate"),
        (&["--warmup", "1s"], "--warmup"),
        (&["--max-open", "5"], "--max-open"),
        (&["--duration", "1s"], "--rate"),
        (&["--rate", "10/s", "--conns", "5"], "--conns"),
        (&["sweep", "--rates", "100/s,0/s"], "--rates"),
        (&["sweep", "--step", "soon"], "--step"),
    ] {
        let (code, stdout, stderr) = bench_client(args).await;
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(names),
            "{args:?} should name {names}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_sweep_climbs_every_rate_and_writes_its_chart_and_figures() {
    let folder = tempfile::tempdir().unwrap();
    let chart = folder.path().join("curve.svg");
    let figures = folder.path().join("figures").join("sweep.md");
    let args = [
        "sweep",
        "--acts",
        "act1,finale",
        "--rates",
        "10/s,5/s",
        "--step",
        "1s",
        "--warmup",
        "0s",
        // Generous: this checks the bookkeeping, not the speed of a debug build.
        "--threshold",
        "10s",
        "--chart",
        chart.to_str().unwrap(),
        "--figures",
        figures.to_str().unwrap(),
    ];
    let (code, json, stderr) = bench_client_json(&args).await;
    assert_eq!(code, Some(0), "{json:#}\n{stderr}");
    // Climbed in increasing order, whatever the order given.
    assert_eq!(json["rates"], serde_json::json!([5.0, 10.0]));
    assert!(
        stderr.contains("pinned") || stderr.contains("not pinned"),
        "{stderr}"
    );
    assert!(
        json["pinning"]["note"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
    let acts = json["acts"].as_array().unwrap();
    let names: Vec<&str> = acts.iter().map(|a| a["act"].as_str().unwrap()).collect();
    assert_eq!(names, ["act1-naive", "finale-cached"]);
    for act in acts {
        let steps = act["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2, "{act:#}");
        for (step, expected) in steps.iter().zip([5, 10]) {
            assert_eq!(step["passed"], true, "{step:#}");
            assert_eq!(count(&step["run"], "scheduled"), expected);
            assert_eq!(count(&step["run"], "succeeded"), expected);
        }
        assert_eq!(act["knee_per_sec"], 10.0, "{act:#}");
        assert_eq!(act["passed_every_rate"], true);
        assert_eq!(act["server"]["served"], 15, "{act:#}");
    }
    assert_eq!(json["highest_sustained"]["rate_per_sec"], 10.0);

    let svg = std::fs::read_to_string(&chart).unwrap();
    let document = roxmltree::Document::parse(&svg).expect("the chart is well-formed SVG");
    let text: String = document
        .descendants()
        .filter_map(|node| node.text())
        .collect();
    for name in ["act1-naive", "finale-cached", "offered rate"] {
        assert!(text.contains(name), "{name} missing from the chart");
    }

    let figures = std::fs::read_to_string(&figures).unwrap();
    assert!(
        figures.starts_with("<!-- generated by `cargo run --release -p bench-client -- sweep "),
        "{figures}"
    );
    for key in [
        "table",
        "act1_naive_knee_per_s",
        "finale_cached_10_p99_ms",
        "threshold_ms",
    ] {
        assert!(
            figures.contains(&format!("<!-- ANCHOR: {key} -->\n")),
            "{key}: {figures}"
        );
        assert!(
            figures.contains(&format!("<!-- ANCHOR_END: {key} -->\n")),
            "{key}"
        );
    }
    assert!(
        figures.contains("<!-- ANCHOR: act1_naive_knee_per_s -->\n10\n"),
        "{figures}"
    );
}
