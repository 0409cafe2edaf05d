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
    let io_error = |source: io::Error| ReadError::Io {
        path: index.path().to_path_buf(),
        source,
    };

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
    /// Taken once the ring is proven, in the runtime that serves.
    since: Mutex<Option<TaskCounts>>,
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

    /// Runs on the blocking pool, in the runtime that will serve, at start-up and after each
    /// reload: the place to prove the ring before the first joke.
    fn index_loaded(&self, index: &Arc<Index>) -> Result<(), ReadError> {
        let refused = |reason: String| ReadError::Io {
            path: index.path().to_path_buf(),
            source: io::Error::other(format!("io_uring is not available: {reason}")),
        };
        let handle = Handle::try_current()
            .map_err(|_| refused("not called inside a Tokio runtime".to_string()))?;
        handle.block_on(prove_the_ring(index)).map_err(refused)?;
        let mut since = self.tally.since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(handle.block_on(TaskCounts::now()));
            handle.spawn(report_at_shutdown(Arc::clone(&self.tally)));
        }
        Ok(())
    }
}
// ANCHOR_END: serve

// ANCHOR: prove
/// Makes a first ring operation (Tokio creates the ring lazily, on the first file operation
/// that could use it) and checks that the process now holds an io_uring descriptor. Tokio
/// falls back to the blocking pool without a word when the kernel refuses the ring; this is
/// how the act notices.
async fn prove_the_ring(index: &Index) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("io_uring is a Linux interface, and this is not Linux".to_string());
    }
    OpenOptions::new()
        .read(true)
        .open(index.path())
        .await
        .map_err(|error| format!("opening {}: {error}", index.path().display()))?;
    match ring_descriptors() {
        Ok(0) => Err(why_no_ring()),
        Ok(_) => Ok(()),
        Err(error) => Err(format!("cannot look at /proc/self/fd: {error}")),
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
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    let now = TaskCounts::now().await;
    let since = *tally.since.lock().unwrap_or_else(|e| e.into_inner());
    let Some(since) = since else { return };
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
