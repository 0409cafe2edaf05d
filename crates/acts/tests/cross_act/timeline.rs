//! `--timeline FILE` tells the truth, structurally: under `--io-delay`, every act's recorded
//! reads ran where its chapter says (inside a task poll, holding a worker, for Act I and
//! `block_in_place`; outside any, on the blocking pool, for the others; nowhere for the
//! finale), every connection's events are there and in order, and the file is trace-event
//! JSON with one lane per thread that did work. Nothing here depends on how fast anything ran.

use std::collections::{BTreeMap, BTreeSet};

use acts::{ActEntry, FileIo};
use joke_server::timeline::{Interval, Kind, Trace};
use joke_testkit::JokesFile;
use joke_testkit::client::{client_runtime, fetch_concurrently};

use crate::common::{
    alongside_others, assert_whole_jokes, os, run_binary_to_exit, server_args, start_binary,
};

/// Connections in the recorded burst, all at once.
const CONNECTIONS: usize = 24;
/// Worker threads of the recorded server.
const WORKERS: usize = 2;

/// Runs `entry` with `--timeline`, `--io-delay 2ms` and two workers, serves one burst, stops
/// it, and reads its trace (also as plain JSON).
fn record(entry: &ActEntry) -> (Trace, serde_json::Value) {
    let _shared = alongside_others();
    let file = JokesFile::fixture();
    let trace_path = file.folder().join("timeline.json");
    let mut args = server_args(&file);
    args.extend(os(&["--io-delay", "2ms", "--workers", "2", "--timeline"]));
    args.push(trace_path.clone().into());
    let server = start_binary(entry, &args);
    let addr = server.addr();
    let received = client_runtime().block_on(fetch_concurrently(addr, CONNECTIONS, CONNECTIONS));
    assert_whole_jokes(&received, &file.served_jokes());
    let exited = server.terminate();
    assert_eq!(exited.code, Some(0), "stderr:\n{}", exited.stderr);
    assert!(
        exited.stderr.contains("timeline: ") && exited.stderr.contains("events written to"),
        "{}",
        exited.stderr
    );
    let text = std::fs::read_to_string(&trace_path).expect("the trace file was written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    let trace = Trace::read(&trace_path).expect("the trace reads back");
    (trace, json)
}

/// The file is Chrome's trace-event JSON: an object with `traceEvents`, every interval a
/// complete event (`"ph": "X"`) with a start, a duration, a process and a thread; and one
/// lane per thread that did work: every thread an interval names has its lane (a
/// `thread_name`), and every lane has intervals.
fn check_the_format(trace: &Trace, json: &serde_json::Value) {
    let events = json["traceEvents"].as_array().expect("traceEvents");
    assert!(!events.is_empty());
    for event in events.iter().filter(|event| event["ph"] == "X") {
        for key in ["name", "cat", "pid", "tid", "ts", "dur"] {
            assert!(!event[key].is_null(), "{key} missing from {event}");
        }
        assert!(event["dur"].as_f64().unwrap() >= 0.0, "{event}");
    }
    let lanes: Vec<u64> = trace.lanes().iter().map(|lane| lane.tid).collect();
    let distinct: BTreeSet<u64> = lanes.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        lanes.len(),
        "one lane per thread: {lanes:?}"
    );
    let with_work: BTreeSet<u64> = trace.intervals().map(|i| i.lane).collect();
    assert_eq!(
        with_work, distinct,
        "the lanes are exactly the threads that recorded intervals"
    );
    assert!(
        trace
            .lanes()
            .iter()
            .any(|lane| lane.name.starts_with("main")),
        "{:?}",
        trace.lanes()
    );
    assert_eq!(trace.other_data.workers, WORKERS);
    assert_eq!(trace.other_data.io_delay_ms, 2.0);
    assert_eq!(trace.other_data.dropped, 0);
}

/// Every connection of the burst is there, numbered 1 to N in accept order, with its polls
/// one after the other (a task is polled by one thread at a time), and everything done for it
/// (its reads, its sleeps) between its first poll's start and its last poll's end.
fn check_every_connection(trace: &Trace) -> BTreeMap<u64, Vec<Interval>> {
    let mut by_connection: BTreeMap<u64, Vec<Interval>> = BTreeMap::new();
    for interval in trace.intervals() {
        if let Some(connection) = interval.connection {
            by_connection.entry(connection).or_default().push(interval);
        }
    }
    let numbers: Vec<u64> = by_connection.keys().copied().collect();
    assert_eq!(
        numbers,
        (1..=CONNECTIONS as u64).collect::<Vec<_>>(),
        "every connection, numbered in accept order"
    );
    for (connection, events) in &by_connection {
        let mut polls: Vec<&Interval> = events.iter().filter(|i| i.kind == Kind::Poll).collect();
        assert!(!polls.is_empty(), "connection {connection} has no poll");
        polls.sort_by(|a, b| a.start_us.total_cmp(&b.start_us));
        for pair in polls.windows(2) {
            assert!(
                pair[0].end_us <= pair[1].start_us,
                "connection {connection}: two polls overlap: {pair:?}"
            );
        }
        let (first, last) = (polls[0].start_us, polls[polls.len() - 1].end_us);
        for event in events.iter().filter(|i| i.kind != Kind::Poll) {
            assert!(
                first <= event.start_us && event.end_us <= last,
                "connection {connection}: {event:?} outside its polls {first}..{last}"
            );
        }
    }
    by_connection
}

/// Whether `inner` ran inside `outer`, on the same thread.
fn within(inner: &Interval, outer: &Interval) -> bool {
    inner.lane == outer.lane && outer.start_us <= inner.start_us && inner.end_us <= outer.end_us
}

/// The lanes that ran intervals `keep` picks.
fn lanes_of(trace: &Trace, keep: impl Fn(&Interval) -> bool) -> BTreeSet<u64> {
    trace
        .intervals()
        .filter(|i| keep(i))
        .map(|i| i.lane)
        .collect()
}

fn timeline_shows_where_each_read_ran(entry: &ActEntry) {
    let (trace, json) = record(entry);
    check_the_format(&trace, &json);
    let by_connection = check_every_connection(&trace);
    let intervals: Vec<Interval> = trace.intervals().collect();
    let reads: Vec<&Interval> = intervals.iter().filter(|i| i.kind.is_read()).collect();
    let sleeps: Vec<&Interval> = intervals.iter().filter(|i| i.kind.is_io_delay()).collect();
    let polling = lanes_of(&trace, |i| i.kind == Kind::Poll);
    match entry.file_io {
        FileIo::OnTheWorker => {
            // Every read and every sleep held the thread inside the connection's own poll.
            for (connection, events) in &by_connection {
                let blocking: Vec<&Interval> = events
                    .iter()
                    .filter(|i| i.kind.is_read() || i.kind.is_io_delay())
                    .collect();
                assert!(
                    blocking.iter().any(|i| i.kind == Kind::ReadInTaskPoll)
                        && blocking.iter().any(|i| i.kind == Kind::IoDelayInTaskPoll),
                    "connection {connection}: no read and sleep inside a task poll: {events:?}"
                );
                for work in blocking {
                    assert!(
                        events
                            .iter()
                            .any(|poll| poll.kind == Kind::Poll && within(work, poll)),
                        "connection {connection}: {work:?} is not inside one of its polls"
                    );
                }
            }
            assert!(
                !intervals.iter().any(|i| i.kind.is_on_pool()),
                "nothing on the pool"
            );
            if entry.args.contains(&"block-in-place") {
                // block_in_place hands the worker's core to another thread before blocking:
                // tasks were polled on more threads than there are workers.
                assert!(
                    polling.len() > WORKERS,
                    "block_in_place: tasks polled on {} threads only: {:?}",
                    polling.len(),
                    trace.lanes()
                );
            } else {
                // Act I: the workers block; no other thread ever polls a task.
                assert!(
                    polling.len() <= WORKERS,
                    "tasks polled on {} threads: {:?}",
                    polling.len(),
                    trace.lanes()
                );
            }
        }
        FileIo::OffTheWorkers => {
            assert!(
                !intervals
                    .iter()
                    .any(|i| i.kind == Kind::ReadInTaskPoll || i.kind == Kind::IoDelayInTaskPoll),
                "a read or a sleep held a worker"
            );
            // One sleep per joke, each on the pool (Act VII's comes with no connection: it
            // calls the sleep itself, in its own spawn_blocking).
            assert_eq!(
                sleeps
                    .iter()
                    .filter(|i| i.kind == Kind::IoDelayOnPool)
                    .count(),
                CONNECTIONS,
                "{sleeps:?}"
            );
            // The pool's threads are not the ones that polled tasks.
            let pool = lanes_of(&trace, |i| i.kind.is_on_pool());
            assert!(!pool.is_empty());
            assert!(
                pool.is_disjoint(&polling),
                "pool work on threads that polled tasks: pool {pool:?}, polling {polling:?}"
            );
            if !matches!(entry.name, "act7-tokio-fs" | "act8-io-uring") {
                // Our reads, with their connections. Act VII reads through tokio::fs and Act
                // VIII through tokio's io_uring instead, which the harness does not see.
                for (connection, events) in &by_connection {
                    assert!(
                        events.iter().any(|i| i.kind == Kind::ReadOnPool),
                        "connection {connection}: no read on the pool: {events:?}"
                    );
                }
            }
        }
        FileIo::None => {
            assert!(reads.is_empty(), "the finale read: {reads:?}");
            assert!(sleeps.is_empty(), "the finale slept: {sleeps:?}");
        }
    }
}

/// A `--timeline` path that cannot be written is refused at start-up, with exit code 2 and a
/// message naming the option and the path.
#[test]
fn a_timeline_file_that_cannot_be_written_is_refused_at_start_up() {
    let _shared = alongside_others();
    let file = JokesFile::fixture();
    let missing = file.folder().join("no/such/folder/trace.json");
    let mut args = server_args(&file);
    args.extend(os(&["--timeline"]));
    args.push(missing.clone().into());
    let exited = run_binary_to_exit(acts::entry("act1-naive"), &args);
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("--timeline"), "{}", exited.stderr);
    assert!(
        exited.stderr.contains(&missing.display().to_string()),
        "{}",
        exited.stderr
    );
}

acts::for_every_act! {
    tests(entry, act) {
        #[test]
        fn timeline_shows_where_each_read_ran() {
            super::timeline_shows_where_each_read_ran(entry);
        }
    }
}
