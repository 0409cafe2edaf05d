//! The act itself, in a build with `--cfg tokio_unstable`.

use std::io::{self, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use joke_index::{Index, ReadError};
use joke_server::{Act, JokeToServe, ServeError, simulate_slow_disk};
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;

// ANCHOR: read
/// Reads joke `joke` in served form: open through the ring, check with `fstat`, `lseek` to
/// the joke, read its bytes through the ring, check again. Fails without returning any of the
/// joke when the file changed.
pub async fn read_joke(joke: &JokeToServe) -> Result<String, ReadError> {
    let index = joke.index();
    let span = index.span_or_error(joke.number())?;
    let (start, len) = (span.bytes.start, span.byte_len());
    let io_error = ReadError::io(index.path());

    // The simulated slow disk (`--io-delay`) is a blocking sleep, and a blocking sleep has only
    // one right place in Tokio: the blocking pool. It is the one pool trip this act makes per
    // joke, and only with --io-delay; a slow disk that is really slow (slowfs) needs none.
    let delay = joke.io_delay();
    if !delay.is_zero() {
        tokio::task::spawn_blocking(move || simulate_slow_disk(delay))
            .await
            .map_err(|error| joke.read_task_failed(error))?;
    }

    // Through the ring: an OPENAT operation.
    let file = OpenOptions::new()
        .read(true)
        .open(index.path())
        .await
        .map_err(io_error)?;
    // A file just opened has no operation in flight, so this cannot fail; if it did, the
    // error says so rather than panicking.
    let mut std = file
        .try_into_std()
        .map_err(|_| io_error(io::Error::other("the file had an operation in flight")))?;
    // `fstat` and `lseek` on the descriptor, here on the worker: neither reads the disk.
    index.ensure_unchanged(&std.metadata().map_err(io_error)?)?;
    std.seek(SeekFrom::Start(start)).map_err(io_error)?;

    // Through the ring: one READ of the joke's bytes at the position `lseek` set. `read_exact`
    // asks for exactly `len` bytes; a file that shrank under us ends early.
    let mut file = File::from_std(std);
    let mut raw = vec![0; len as usize];
    match file.read_exact(&mut raw).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ReadError::changed(index.path()));
        }
        Err(error) => return Err(io_error(error)),
    }
    let std = file
        .try_into_std()
        .map_err(|_| io_error(io::Error::other("the file had an operation in flight")))?;
    index.ensure_unchanged(&std.metadata().map_err(io_error)?)?;
    index.served_from_raw(raw)
}
// ANCHOR_END: read

/// Reads each joke through Tokio's io_uring, then writes it; proves the ring at start-up and
/// counts the blocking pool's work at shutdown.
#[derive(Debug, Default)]
pub struct IoUring {
    tally: Arc<Tally>,
}

/// What the shutdown line reports.
#[derive(Debug, Default)]
struct Tally {
    jokes: AtomicU64,
    /// Whether the shutdown report was started (once, in the runtime that serves).
    report: Mutex<bool>,
}

// ANCHOR: serve
impl Act for IoUring {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        let text = read_joke(&joke).await?;
        self.tally.jokes.fetch_add(1, Ordering::Relaxed);
        socket.write_all(text.as_bytes()).await?;
        Ok(())
    }

    /// Runs at start-up and after each reload, before any joke is read from the index: the
    /// place to prove the ring, and to start the shutdown report in the runtime that serves.
    fn index_loaded(&self, index: &Arc<Index>) -> Result<(), ReadError> {
        prove_the_ring(index).map_err(|reason| {
            ReadError::io(index.path())(io::Error::other(format!(
                "io_uring is not available: {reason}"
            )))
        })?;
        let mut started = self.tally.report.lock().unwrap_or_else(|e| e.into_inner());
        if let (false, Ok(handle)) = (*started, Handle::try_current()) {
            handle.spawn(report_at_shutdown(Arc::clone(&self.tally)));
            *started = true;
        }
        Ok(())
    }
}
// ANCHOR_END: serve

// ANCHOR: prove
/// Makes a first ring operation and checks that the process then holds an io_uring
/// descriptor: Tokio falls back to the blocking pool without a word when the kernel refuses the
/// ring, and this is how the act notices. Tokio creates a runtime's ring lazily, on its first
/// file operation; whether the kernel grants one is decided for the whole process (the sysctl,
/// a seccomp filter), so the probe runs in a small runtime of its own, on a thread of its own:
/// that works wherever `index_loaded` is called from, even inside another runtime. The serving
/// runtime's own ring is counted in the shutdown report.
fn prove_the_ring(index: &Index) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("io_uring is a Linux interface, and this is not Linux".to_string());
    }
    let probe = || -> Result<usize, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start a Tokio runtime: {error}"))?;
        runtime.block_on(async {
            // Held open until the count: the ring lives as long as this runtime.
            let _file = OpenOptions::new()
                .read(true)
                .open(index.path())
                .await
                .map_err(|error| format!("opening {}: {error}", index.path().display()))?;
            ring_descriptors().map_err(|error| format!("cannot look at /proc/self/fd: {error}"))
        })
    };
    let rings = std::thread::scope(|scope| scope.spawn(probe).join())
        .map_err(|_| "the probe thread panicked".to_string())??;
    if rings == 0 {
        Err(why_no_ring())
    } else {
        Ok(())
    }
}

/// How many io_uring instances this process holds: each is a descriptor whose link in
/// `/proc/self/fd` reads `anon_inode:[io_uring]`.
pub fn ring_descriptors() -> io::Result<usize> {
    let mut rings = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        // A descriptor can close between the listing and the readlink: skip it.
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            rings += usize::from(target.as_os_str() == "anon_inode:[io_uring]");
        }
    }
    Ok(rings)
}

/// The likeliest reason the kernel refused, in one line.
fn why_no_ring() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(value) if value.trim() != "0" => format!(
            "the sysctl kernel.io_uring_disabled is {} (0 allows it)",
            value.trim()
        ),
        _ => "the kernel refused io_uring_setup(2): a seccomp filter (as in many containers) or a kernel built without io_uring".to_string(),
    }
}
// ANCHOR_END: prove

// ANCHOR: count
/// Tokio numbers every task, async or blocking, from one process-wide counter (its task ID),
/// and its runtime metrics count the async tasks spawned (`spawned_tasks_count`). So between
/// two readings, the IDs used minus the async tasks spawned is the number of jobs handed to
/// the blocking pool: `spawn_blocking` calls, ours or Tokio's own.
#[derive(Debug, Clone, Copy)]
struct TaskCounts {
    next_id: u64,
    spawned: u64,
}

impl TaskCounts {
    async fn now() -> TaskCounts {
        let metrics = Handle::current().metrics();
        loop {
            let before = metrics.spawned_tasks_count();
            // The ID of a task spawned now is the counter's current value.
            let id = tokio::spawn(async { tokio::task::id() }).await;
            let spawned = metrics.spawned_tasks_count();
            // Only our probe was spawned in between: the two readings agree.
            if let (Ok(id), true) = (id, spawned == before + 1) {
                let next_id = id.to_string().parse().unwrap_or(0);
                return TaskCounts { next_id, spawned };
            }
        }
    }

    /// Jobs the blocking pool was given after `earlier` and before `self`.
    fn blocking_since(self, earlier: TaskCounts) -> u64 {
        let ids = self.next_id.saturating_sub(earlier.next_id);
        let spawned = self.spawned.saturating_sub(earlier.spawned);
        ids.saturating_sub(spawned)
    }
}

/// At SIGINT or SIGTERM, logs how many jokes were read, how many jobs the blocking pool ran
/// meanwhile, and how many threads it has: the evidence that the reads did not go there.
async fn report_at_shutdown(tally: Arc<Tally>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    // Counted from here, before the first joke: the index is loaded, nothing is served yet.
    let since = TaskCounts::now().await;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    let now = TaskCounts::now().await;
    let jokes = tally.jokes.load(Ordering::Relaxed);
    let blocking = now.blocking_since(since);
    let metrics = Handle::current().metrics();
    tracing::info!(
        "act8-io-uring: {jokes} jokes read through io_uring ({} io_uring descriptor(s) held); \
         the blocking pool ran {blocking} jobs meanwhile ({:.3} per joke), and has {} threads \
         (none is a read: the harness's jokes-file watcher makes one `stat` there per reload \
         interval, and --io-delay's sleep one per joke)",
        ring_descriptors().unwrap_or(0),
        blocking as f64 / jokes.max(1) as f64,
        metrics.num_blocking_threads(),
    );
}
// ANCHOR_END: count
