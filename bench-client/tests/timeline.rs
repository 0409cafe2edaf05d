//! `compare --timeline DIR`: the real binary starting real acts, recording and drawing them.
//! Bounded (a few connections, short timeouts, an outer limit); nothing depends on speed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use joke_server::timeline::{Kind, Trace};

const BENCH_CLIENT: &str = env!("CARGO_BIN_EXE_bench-client");

/// Far longer than any of these runs needs, even in a debug build on a busy machine; it only
/// turns a hang into a failure.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// Runs bench-client with `args` (killed after [`RUN_LIMIT`]; the servers it starts follow its
/// death by themselves) and returns its exit code, stdout and stderr.
fn bench_client(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(BENCH_CLIENT)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bench-client runs");
    let started = Instant::now();
    while child
        .try_wait()
        .expect("waiting for bench-client")
        .is_none()
    {
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("bench-client {args:?} still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("bench-client's output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The texts of an SVG file, which must be well-formed.
fn svg_texts(path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).expect("the SVG was written");
    let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_owned())
        .collect()
}

/// The value of `key` in a keyed figures file.
fn figure(figures: &str, key: &str) -> String {
    let start = format!("<!-- ANCHOR: {key} -->\n");
    let at = figures
        .find(&start)
        .unwrap_or_else(|| panic!("{key} missing:\n{figures}"));
    figures[at + start.len()..]
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn compare_timeline_draws_every_act_and_writes_its_trace_and_figures() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("timelines");
    let figures_path = folder.path().join("figures/timeline.md");
    let (code, stdout, stderr) = bench_client(&[
        "compare",
        "--timeline",
        dir.to_str().unwrap(),
        "--acts",
        "act1,act2-spawn-blocking,finale",
        "--timeline-conns",
        "12",
        "--conns",
        "8",
        "--rounds",
        "2",
        "--io-delay",
        "1ms",
        "--timeout",
        "20s",
        "--figures",
        figures_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for act in ["act1-naive", "act2-spawn-blocking", "finale-cached"] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(act))
            .unwrap_or_else(|| panic!("no row for {act}:\n{stdout}"));
        assert!(row.split_whitespace().count() >= 12, "{row}");

        let trace = Trace::read(&dir.join(format!("{act}.json"))).expect("the trace reads");
        assert_eq!(trace.other_data.act, act);
        let connections: std::collections::BTreeSet<u64> = trace
            .intervals()
            .filter(|i| i.kind == Kind::Poll)
            .filter_map(|i| i.connection)
            .collect();
        assert_eq!(connections.len(), 12, "{act}: one burst of 12");

        let texts = svg_texts(&dir.join(format!("{act}.svg")));
        let title = texts
            .iter()
            .find(|text| text.starts_with(act))
            .unwrap_or_else(|| panic!("{act}: no title in {texts:?}"));
        assert!(title.contains("12 connections"), "{title}");
        assert!(title.contains("--io-delay 1ms"), "{title}");
        for lane in trace.lanes() {
            assert!(texts.contains(&lane.name), "{act}: lane {lane:?} not drawn");
        }
        assert!(
            texts.iter().any(|t| t == "poll of a connection's task"),
            "{act}: no legend in {texts:?}"
        );
    }
    // The scratch traces of the cost measurement are gone.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let figures = std::fs::read_to_string(&figures_path).expect("the figures were written");
    assert!(figures.starts_with(
        "<!-- generated by `cargo run --release -p bench-client -- compare --timeline"
    ));
    assert_eq!(figure(&figures, "conns"), "12");
    assert_eq!(
        figure(&figures, "act1_naive_timeline_reads_in_task_poll"),
        "12"
    );
    assert_eq!(figure(&figures, "act1_naive_timeline_reads_on_pool"), "0");
    assert_eq!(
        figure(&figures, "act2_spawn_blocking_timeline_reads_in_task_poll"),
        "0"
    );
    assert_eq!(
        figure(&figures, "act2_spawn_blocking_timeline_reads_on_pool"),
        "12"
    );
    assert_eq!(
        figure(&figures, "finale_cached_timeline_reads_on_pool"),
        "0"
    );
    assert!(
        figure(&figures, "act1_naive_timeline_cost_ratio")
            .parse::<f64>()
            .is_ok()
    );
}

#[test]
fn timeline_usage_errors_exit_2_and_say_why() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().to_str().unwrap();
    for (args, expected) in [
        (&["compare", "--timeline-conns", "5"][..], "--timeline"),
        (
            &["compare", "--timeline", dir, "--timeline-conns", "0"],
            "at least 1",
        ),
        (
            &["compare", "--timeline", dir, "--chart", "x.svg"],
            "--chart",
        ),
        (
            &["compare", "--timeline", dir, "--output", "json"],
            "--output json",
        ),
    ] {
        let (code, _, stderr) = bench_client(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
