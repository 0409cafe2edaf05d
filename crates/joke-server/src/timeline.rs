//! `--timeline FILE`: which thread ran what, and when.
//!
//! The whole tutorial is about *which thread waits where*. This recorder writes it down for one
//! run: one interval per event, with the thread it ran on, kept in memory and written at exit
//! as Chrome trace-event JSON (the format Perfetto and `chrome://tracing` open, and that
//! `bench-client compare --timeline DIR` draws as an SVG timeline). The events:
//!
//! - each poll of a connection's task, with the connection's number (in accept order);
//! - each blocking read of a joke, and each `--io-delay` sleep, with the connection they served
//!   and *where they ran*: inside a task poll (the thread was acting as a runtime worker, and
//!   no other task could use it meanwhile) or outside any (a `spawn_blocking` closure on the
//!   blocking pool);
//! - each time a worker thread parked (had nothing to do), from the runtime builder's stable
//!   `on_thread_park` / `on_thread_unpark` hooks;
//! - each poll of the accept loop.
//!
//! Threads are classified by what was running, never by name: Tokio names its workers and its
//! blocking-pool threads alike (`tokio-runtime-worker`), and `block_in_place` hands a worker's
//! core to another thread, so one thread can be a worker first and a pool thread later.
//!
//! # Why a recorder of our own, not `tracing` spans and `tracing-chrome`
//!
//! The servers already log with `tracing`, and a span per poll written out by `tracing-chrome`
//! would give a trace file too. But a span per poll goes through the subscriber's dispatch
//! (filters, span ids, a registry lookup, a channel to the writer thread) on every poll of
//! every task, which is more than the polls it measures cost; the park hooks are two separate
//! callbacks, not a scope a span can wrap; and what the pictures need most, "was this read
//! inside a task poll?", is one thread-local flag that spans do not give. The recorder below is
//! about a hundred lines: a timestamp pair pushed onto the current thread's own vector (behind
//! a mutex only that thread takes until the end), a bounded count of events, and the JSON
//! written once, at exit. When `--timeline` is not given, nothing is installed: the runtime gets
//! no hooks, connection tasks are spawned exactly as before, and each read asks one
//! `OnceLock` whether a recorder exists (one atomic load).

use std::cell::{Cell, OnceCell};
use std::fs::File;
use std::future::Future;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::Either;
use serde::{Deserialize, Serialize};

/// At most this many events are kept; past it, events are counted (`dropped`) but not kept, so
/// a recorder left on under a long load cannot fill the memory. Each event is 32 bytes.
pub const MAX_EVENTS: usize = 1_000_000;

/// What an interval of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A poll of the accept loop.
    AcceptLoop,
    /// A poll of a connection's task.
    Poll,
    /// A worker thread parked: nothing to run.
    Parked,
    /// The `--io-delay` sleep, inside a task poll: a worker thread held.
    IoDelayInTaskPoll,
    /// The blocking read of a joke, inside a task poll: a worker thread held.
    ReadInTaskPoll,
    /// The `--io-delay` sleep outside any task poll: a `spawn_blocking` closure, on the pool.
    IoDelayOnPool,
    /// The blocking read of a joke outside any task poll: on the blocking pool.
    ReadOnPool,
}

impl Kind {
    /// Every kind, in the order a legend lists them.
    pub const ALL: [Kind; 7] = [
        Kind::AcceptLoop,
        Kind::Poll,
        Kind::Parked,
        Kind::IoDelayInTaskPoll,
        Kind::ReadInTaskPoll,
        Kind::IoDelayOnPool,
        Kind::ReadOnPool,
    ];

    /// Its name in the trace file (the `name` of its events).
    pub fn name(self) -> &'static str {
        match self {
            Kind::AcceptLoop => "accept loop",
            Kind::Poll => "poll",
            Kind::Parked => "parked",
            Kind::IoDelayInTaskPoll => "io-delay in task poll",
            Kind::ReadInTaskPoll => "read in task poll",
            Kind::IoDelayOnPool => "io-delay on pool",
            Kind::ReadOnPool => "read on pool",
        }
    }

    /// The kind named `name` in a trace file.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether it is a blocking read of a joke (wherever it ran).
    pub fn is_read(self) -> bool {
        matches!(self, Kind::ReadInTaskPoll | Kind::ReadOnPool)
    }

    /// Whether it is the `--io-delay` sleep (wherever it ran).
    pub fn is_io_delay(self) -> bool {
        matches!(self, Kind::IoDelayInTaskPoll | Kind::IoDelayOnPool)
    }

    /// Whether it ran outside any task poll, on the blocking pool.
    pub fn is_on_pool(self) -> bool {
        matches!(self, Kind::IoDelayOnPool | Kind::ReadOnPool)
    }

    /// Whether it shows the thread acting as a runtime worker (polling tasks, or parked
    /// between them).
    pub fn is_worker_work(self) -> bool {
        matches!(
            self,
            Kind::Poll | Kind::Parked | Kind::IoDelayInTaskPoll | Kind::ReadInTaskPoll
        )
    }

    /// The trace file's `cat`egory: the role the thread played.
    fn category(self) -> &'static str {
        match self {
            Kind::AcceptLoop => "accept",
            k if k.is_on_pool() => "pool",
            _ => "worker",
        }
    }
}

/// One interval, as recorded: nanoseconds since the recording started.
#[derive(Debug, Clone, Copy)]
struct Event {
    kind: Kind,
    /// The connection it served, numbered from 1 in accept order; 0 for none.
    connection: u64,
    start: u64,
    end: u64,
}

/// The recorder of this process, when `--timeline` asked for one.
static RECORDER: OnceLock<Recorder> = OnceLock::new();

#[derive(Debug)]
struct Recorder {
    /// Time zero of the trace.
    epoch: Instant,
    /// Every thread that recorded something, in the order it first did.
    threads: Mutex<Vec<Arc<ThreadLog>>>,
    /// Events kept so far (at most [`MAX_EVENTS`]), and those that did not fit.
    kept: AtomicUsize,
    dropped: AtomicU64,
    /// The number the next connection gets.
    next_connection: AtomicU64,
    main_thread: std::thread::ThreadId,
}

/// One thread's events. Only that thread pushes onto them (its mutex is never contended until
/// the end, when the writer reads every thread's).
#[derive(Debug)]
struct ThreadLog {
    main: bool,
    events: Mutex<Vec<Event>>,
}

thread_local! {
    /// This thread's log, registered with the recorder at its first event.
    static THIS_THREAD: OnceCell<Arc<ThreadLog>> = const { OnceCell::new() };
    /// The connection whose task this thread is polling right now, if any: what tells a read
    /// inside a task poll (a worker held) from one on the blocking pool.
    static POLLING: Cell<u64> = const { Cell::new(0) };
    /// When this worker parked, if it is parked.
    static PARKED_SINCE: Cell<Option<u64>> = const { Cell::new(None) };
}

impl Recorder {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn record(&self, kind: Kind, connection: u64, start: u64, end: u64) {
        if self.kept.fetch_add(1, Ordering::Relaxed) >= MAX_EVENTS {
            self.kept.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let event = Event {
            kind,
            connection,
            start,
            end,
        };
        THIS_THREAD.with(|log| {
            let log = log.get_or_init(|| {
                let log = Arc::new(ThreadLog {
                    main: std::thread::current().id() == self.main_thread,
                    events: Mutex::new(Vec::with_capacity(1024)),
                });
                lock(&self.threads).push(Arc::clone(&log));
                log
            });
            lock(&log.events).push(event);
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A recording in progress: made by [`Recording::start`] before the runtime is built, written
/// by [`Recording::finish`] after it is shut down.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    file: File,
}

/// Why the timeline could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("--timeline {}: cannot write the file: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--timeline: a recorder is already running in this process")]
    AlreadyRecording,
}

impl Recording {
    /// Starts recording for the whole process, and creates `path` now, so that a path that
    /// cannot be written is refused at start-up rather than after the run.
    pub fn start(path: &Path) -> Result<Recording, TimelineError> {
        let file = File::create(path).map_err(|source| TimelineError::Create {
            path: path.to_owned(),
            source,
        })?;
        let recorder = Recorder {
            epoch: Instant::now(),
            threads: Mutex::new(Vec::new()),
            kept: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            next_connection: AtomicU64::new(1),
            main_thread: std::thread::current().id(),
        };
        RECORDER
            .set(recorder)
            .map_err(|_| TimelineError::AlreadyRecording)?;
        Ok(Recording {
            path: path.to_owned(),
            file,
        })
    }

    /// Puts the park hooks on the runtime to be built.
    pub fn hook(&self, runtime: &mut tokio::runtime::Builder) {
        runtime
            .on_thread_park(worker_parked)
            .on_thread_unpark(worker_unparked);
    }

    /// Writes what was recorded, described by `about`, to the file, and returns its path
    /// and how many events were kept and dropped.
    pub fn finish(self, mut about: About) -> io::Result<(PathBuf, usize, u64)> {
        let recorder = RECORDER.get().expect("started");
        about.dropped = recorder.dropped.load(Ordering::Relaxed);
        about.max_events = MAX_EVENTS;
        let threads: Vec<Arc<ThreadLog>> = lock(&recorder.threads).clone();
        let trace = Trace::from_threads(&threads, about);
        let mut out = BufWriter::new(self.file);
        serde_json::to_writer(&mut out, &trace)?;
        out.write_all(b"\n")?;
        out.flush()?;
        let kept = trace.intervals().count();
        Ok((self.path, kept, trace.other_data.dropped))
    }
}

/// What a trace is of: the run's parameters, written into the file's `otherData`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct About {
    /// The act (`act2-spawn-blocking`).
    pub act: String,
    /// The act's own options (`--mode block-in-place`), or empty.
    pub act_options: String,
    pub io_delay_ms: f64,
    /// The runtime (`multi-thread`, `current-thread`) and its worker threads.
    pub flavor: String,
    pub workers: usize,
    /// The CPUs the machine has.
    pub cpus: usize,
    /// `/proc/loadavg`'s one-minute load average at start-up, when there is one.
    pub load_average: Option<f64>,
    /// Events that did not fit in the bound ([`MAX_EVENTS`]).
    pub dropped: u64,
    pub max_events: usize,
}

/// A trace file: Chrome's trace-event JSON, object form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub trace_events: Vec<TraceEvent>,
    pub display_time_unit: String,
    pub other_data: About,
}

/// One entry of `traceEvents`: a complete event (`ph: "X"`, an interval) or a metadata event
/// (`ph: "M"`, a lane's name and order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceEvent {
    pub ph: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat: Option<String>,
    pub pid: u32,
    pub tid: u64,
    /// Start, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<f64>,
    /// Duration, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dur: Option<f64>,
    #[serde(default)]
    pub args: EventArgs,
}

/// The `args` of an event: the connection of an interval, the name or order of a lane.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_index: Option<u64>,
}

/// One interval read back from a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub kind: Kind,
    /// The lane (thread) it ran on.
    pub lane: u64,
    pub connection: Option<u64>,
    /// Start and end, in microseconds since the recording started.
    pub start_us: f64,
    pub end_us: f64,
}

/// A lane of the trace: one thread that recorded something.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub tid: u64,
    pub name: String,
}

impl Trace {
    /// Reads a trace file.
    pub fn read(path: &Path) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading {}: {error}", path.display()))?;
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    fn from_threads(threads: &[Arc<ThreadLog>], about: About) -> Trace {
        let pid = std::process::id();
        let metadata = |name: &str, tid: u64, args: EventArgs| TraceEvent {
            ph: "M".into(),
            name: name.into(),
            cat: None,
            pid,
            tid,
            ts: None,
            dur: None,
            args,
        };
        let mut events = vec![metadata(
            "process_name",
            0,
            EventArgs {
                name: Some(about.act.clone()),
                ..EventArgs::default()
            },
        )];
        let mut intervals = Vec::new();
        // The main thread first, then the others in the order they first recorded.
        let mut order: Vec<&Arc<ThreadLog>> = threads.iter().collect();
        order.sort_by_key(|log| !log.main);
        for (n, log) in order.into_iter().enumerate() {
            let tid = n as u64 + 1;
            let recorded = lock(&log.events).clone();
            let name = lane_name(tid, log.main, &recorded);
            events.push(metadata(
                "thread_name",
                tid,
                EventArgs {
                    name: Some(name),
                    ..EventArgs::default()
                },
            ));
            events.push(metadata(
                "thread_sort_index",
                tid,
                EventArgs {
                    sort_index: Some(tid),
                    ..EventArgs::default()
                },
            ));
            intervals.extend(recorded.into_iter().map(|event| (tid, event)));
        }
        intervals.sort_by_key(|(tid, event)| (event.start, *tid));
        events.extend(intervals.into_iter().map(|(tid, event)| TraceEvent {
            ph: "X".into(),
            name: event.kind.name().into(),
            cat: Some(event.kind.category().into()),
            pid,
            tid,
            ts: Some(event.start as f64 / 1e3),
            dur: Some(event.end.saturating_sub(event.start) as f64 / 1e3),
            args: EventArgs {
                connection: (event.connection != 0).then_some(event.connection),
                ..EventArgs::default()
            },
        }));
        Trace {
            trace_events: events,
            display_time_unit: "ms".into(),
            other_data: about,
        }
    }

    /// The lanes, in order.
    pub fn lanes(&self) -> Vec<Lane> {
        let mut lanes: Vec<(u64, Lane)> = self
            .trace_events
            .iter()
            .filter(|event| event.ph == "M" && event.name == "thread_name")
            .map(|event| {
                let name = event.args.name.clone().unwrap_or_default();
                (
                    event.tid,
                    Lane {
                        tid: event.tid,
                        name,
                    },
                )
            })
            .collect();
        lanes.sort_by_key(|(tid, _)| *tid);
        lanes.into_iter().map(|(_, lane)| lane).collect()
    }

    /// The intervals this recorder writes (events of other kinds are passed over).
    pub fn intervals(&self) -> impl Iterator<Item = Interval> + '_ {
        self.trace_events
            .iter()
            .filter(|event| event.ph == "X")
            .filter_map(|event| {
                let kind = Kind::from_name(&event.name)?;
                let start_us = event.ts?;
                Some(Interval {
                    kind,
                    lane: event.tid,
                    connection: event.args.connection,
                    start_us,
                    end_us: start_us + event.dur.unwrap_or(0.0),
                })
            })
    }
}

/// A lane's name: its number and the roles its thread played, in the order it played them
/// (`thread 3: worker, then pool`).
fn lane_name(tid: u64, main: bool, events: &[Event]) -> String {
    let mut roles: Vec<&str> = Vec::new();
    let mut by_start: Vec<&Event> = events.iter().collect();
    by_start.sort_by_key(|event| event.start);
    for event in by_start {
        let role = match event.kind {
            Kind::AcceptLoop => "accept loop",
            kind if kind.is_on_pool() => "pool",
            _ => "worker",
        };
        if roles.last() != Some(&role) && !roles.contains(&role) {
            roles.push(role);
        }
    }
    let who = if main {
        "main".to_owned()
    } else {
        format!("thread {tid}")
    };
    if roles.is_empty() {
        who
    } else {
        format!("{who}: {}", roles.join(", then "))
    }
}

/// Whether a recorder is running in this process.
pub fn is_recording() -> bool {
    RECORDER.get().is_some()
}

/// The connection whose task this thread is polling, if a recorder runs and a task is being
/// polled.
pub(crate) fn current_connection() -> Option<u64> {
    RECORDER.get()?;
    let connection = POLLING.with(Cell::get);
    (connection != 0).then_some(connection)
}

/// Runs `work`, a blocking read of a joke for `connection`, recording it when a recorder runs.
pub(crate) fn blocking_read<T>(connection: Option<u64>, work: impl FnOnce() -> T) -> T {
    record_blocking(Kind::ReadInTaskPoll, Kind::ReadOnPool, connection, work)
}

/// Runs `sleep`, the `--io-delay` sleep for `connection`, recording it when a recorder runs.
pub(crate) fn io_delay<T>(connection: Option<u64>, sleep: impl FnOnce() -> T) -> T {
    record_blocking(
        Kind::IoDelayInTaskPoll,
        Kind::IoDelayOnPool,
        connection,
        sleep,
    )
}

fn record_blocking<T>(
    in_poll: Kind,
    on_pool: Kind,
    connection: Option<u64>,
    work: impl FnOnce() -> T,
) -> T {
    let Some(recorder) = RECORDER.get() else {
        return work();
    };
    let polling = POLLING.with(Cell::get);
    let kind = if polling != 0 { in_poll } else { on_pool };
    let connection = connection.unwrap_or(polling);
    let start = recorder.now();
    let output = work();
    recorder.record(kind, connection, start, recorder.now());
    output
}

fn worker_parked() {
    if let Some(recorder) = RECORDER.get() {
        PARKED_SINCE.with(|since| since.set(Some(recorder.now())));
    }
}

fn worker_unparked() {
    if let Some(recorder) = RECORDER.get() {
        if let Some(start) = PARKED_SINCE.with(Cell::take) {
            recorder.record(Kind::Parked, 0, start, recorder.now());
        }
    }
}

/// `task`, the whole life of one connection, with each of its polls recorded when a recorder
/// runs; `task` itself, untouched, when none does.
pub(crate) fn connection_task<F: Future>(task: F) -> Either<Polls<F>, F> {
    match RECORDER.get() {
        Some(recorder) => Either::Left(Polls {
            task: Box::pin(task),
            kind: Kind::Poll,
            connection: recorder.next_connection.fetch_add(1, Ordering::Relaxed),
        }),
        None => Either::Right(task),
    }
}

/// `accept_loop` with each of its polls recorded when a recorder runs.
pub(crate) fn accept_loop<F: Future>(accept_loop: F) -> Either<Polls<F>, F> {
    match RECORDER.get() {
        Some(_) => Either::Left(Polls {
            task: Box::pin(accept_loop),
            kind: Kind::AcceptLoop,
            connection: 0,
        }),
        None => Either::Right(accept_loop),
    }
}

/// A future whose every poll is an interval of the timeline. (Boxed, so that it can poll
/// through `Pin::new` without unsafe code; only made while recording.)
pub(crate) struct Polls<F> {
    task: Pin<Box<F>>,
    kind: Kind,
    connection: u64,
}

impl<F: Future> Future for Polls<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let recorder = RECORDER.get().expect("made while recording");
        let (kind, connection) = (self.kind, self.connection);
        // A connection task marks the thread as polling it, for the reads inside the poll.
        let outer = (kind == Kind::Poll).then(|| POLLING.with(|p| p.replace(connection)));
        let start = recorder.now();
        let output = self.task.as_mut().poll(cx);
        let end = recorder.now();
        if let Some(outer) = outer {
            POLLING.with(|p| p.set(outer));
        }
        recorder.record(kind, connection, start, end);
        output
    }
}

/// `/proc/loadavg`'s one-minute load average, for the record of a run.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_by_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("something else"), None);
    }

    fn event(kind: Kind, start: u64) -> Event {
        Event {
            kind,
            connection: 0,
            start,
            end: start + 1,
        }
    }

    #[test]
    fn a_lane_is_named_by_the_roles_its_thread_played_in_order() {
        let worker_then_pool = [event(Kind::ReadOnPool, 9), event(Kind::Poll, 1)];
        assert_eq!(
            lane_name(4, false, &worker_then_pool),
            "thread 4: worker, then pool"
        );
        assert_eq!(
            lane_name(1, true, &[event(Kind::AcceptLoop, 0)]),
            "main: accept loop"
        );
        assert_eq!(
            lane_name(
                5,
                false,
                &[event(Kind::IoDelayOnPool, 0), event(Kind::ReadOnPool, 1)]
            ),
            "thread 5: pool"
        );
    }

    /// No test here starts a recorder (it is one per process): with none, the hooks run the
    /// work and record nothing.
    #[test]
    fn without_a_recorder_the_hooks_only_run_the_work() {
        assert!(!is_recording());
        assert_eq!(current_connection(), None);
        assert_eq!(blocking_read(Some(3), || 42), 42);
        assert_eq!(io_delay(None, || "slept"), "slept");
        assert!(matches!(
            connection_task(std::future::ready(())),
            Either::Right(_)
        ));
    }
}
