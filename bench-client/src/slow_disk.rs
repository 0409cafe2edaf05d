//! `compare --slow-disk DELAY`: every act served from a disk that is really slow.
//!
//! `--io-delay` is a blocking sleep where an act reads; it models the acts that block a thread
//! and says nothing about io_uring, where no thread of ours waits. This mounts `slowfs` over the
//! jokes file's folder (read-only, no page cache, every read request at least DELAY, a queue
//! depth of 32), points every act at the mounted copy, and takes the mount away at the end:
//!
//! - on a normal end and on a panic, [`SlowDisk`]'s `Drop` unmounts (unwinding runs it);
//! - on Ctrl-C and SIGTERM, [`unless_interrupted`] turns the signal into an early return (the
//!   handlers go in before the mount, so no signal can kill us with the mount in place), the
//!   servers are killed as their handles drop, and then the mount goes;
//! - on `kill -9`, where nothing of ours runs, slowfs mounts through fusermount3 with
//!   `auto_unmount` when it can, and fusermount3 removes the mount once we are gone.
//!
//! It also counts, while each act serves its round, the threads that wait for the disk: Tokio's
//! blocking pool (our threads) and io_uring's `iou-wrk-*` workers (the kernel's, in our
//! process), so the table can say who did the waiting.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::BadInput;
use crate::compare::{ActReport, CompareReport};

/// The disk a `compare` run read its jokes from, as the report and the figures name it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DiskReport {
    /// `page-cache` (the file as it is, after its first read in memory), `io-delay` (a
    /// blocking sleep in each act where it reads) or `slowfs`.
    pub(crate) kind: &'static str,
    /// The delay per read: `--io-delay` or `--slow-disk`, in milliseconds.
    pub(crate) delay_ms: f64,
    /// slowfs's queue depth (`null` for the other disks).
    pub(crate) queue_depth: Option<usize>,
    /// The read requests slowfs served during the whole run (`null` for the other disks).
    pub(crate) reads: Option<u64>,
}

impl DiskReport {
    /// The disk of a run without `--slow-disk`.
    pub(crate) fn plain(io_delay: Duration) -> DiskReport {
        DiskReport {
            kind: if io_delay.is_zero() {
                "page-cache"
            } else {
                "io-delay"
            },
            delay_ms: io_delay.as_secs_f64() * 1e3,
            queue_depth: None,
            reads: None,
        }
    }

    /// One line for the table's heading and the figures' `disk` key.
    pub(crate) fn describe(&self) -> String {
        let delay = humantime::format_duration(Duration::from_secs_f64(self.delay_ms / 1e3));
        match (self.kind, self.queue_depth) {
            ("slowfs", Some(depth)) => format!(
                "slowfs (FUSE, no page cache): each read request at least {delay}, queue depth {depth}{}",
                self.reads
                    .map(|reads| format!(", {reads} read requests served"))
                    .unwrap_or_default()
            ),
            ("io-delay", _) => format!("page cache, with a blocking sleep of {delay} per read"),
            _ => "page cache (no delay)".to_string(),
        }
    }
}

/// A mounted slowfs serving the jokes file's folder, and the mount point made for it. Dropping
/// it unmounts and removes the mount point.
#[derive(Debug)]
pub(crate) struct SlowDisk {
    /// `None` once unmounted.
    guard: Option<slowfs::MountGuard>,
    mountpoint: PathBuf,
    /// The jokes file, through the mount.
    pub(crate) jokes: PathBuf,
    delay: Duration,
}

impl SlowDisk {
    /// Mounts slowfs over `jokes`'s folder in a new folder under the temporary directory.
    /// No FUSE here (or not Linux) is bad input: exit 2, with slowfs's reason.
    pub(crate) fn mount(jokes: &Path, delay: Duration) -> anyhow::Result<SlowDisk> {
        let jokes =
            std::path::absolute(jokes).with_context(|| format!("resolving {}", jokes.display()))?;
        let (Some(folder), Some(name)) = (jokes.parent(), jokes.file_name()) else {
            return Err(BadInput(format!("--jokes {}: not a file", jokes.display())).into());
        };
        if !jokes.is_file() {
            return Err(BadInput(format!("--jokes {}: no such file", jokes.display())).into());
        }
        let mountpoint =
            std::env::temp_dir().join(format!("bench-client-slowfs-{}", std::process::id()));
        std::fs::create_dir_all(&mountpoint)
            .with_context(|| format!("creating the mount point {}", mountpoint.display()))?;
        let options = slowfs::Options::with_delay(delay);
        let guard = match slowfs::mount(folder, &mountpoint, &options) {
            Ok(guard) => guard,
            Err(error) => {
                let _ = std::fs::remove_dir(&mountpoint);
                let message = format!("--slow-disk: {error}");
                return Err(match error {
                    slowfs::Error::FuseUnavailable(_) | slowfs::Error::NotLinux(_) => {
                        BadInput(message).into()
                    }
                    _ => anyhow::anyhow!(message),
                });
            }
        };
        eprintln!(
            "bench-client: slowfs mounted at {} (each read request at least {}, queue depth {}); \
             every act serves {}",
            mountpoint.display(),
            humantime::format_duration(delay),
            options.queue_depth,
            mountpoint.join(name).display()
        );
        Ok(SlowDisk {
            guard: Some(guard),
            jokes: mountpoint.join(name),
            mountpoint,
            delay,
        })
    }

    /// The disk as the report names it, with the reads served so far.
    pub(crate) fn report(&self) -> DiskReport {
        DiskReport {
            kind: "slowfs",
            delay_ms: self.delay.as_secs_f64() * 1e3,
            queue_depth: Some(slowfs::DEFAULT_QUEUE_DEPTH),
            reads: self.guard.as_ref().map(|guard| guard.stats().reads),
        }
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            match guard.unmount() {
                Ok(unmounted) => {
                    // The mount is gone either way; a disk that had stopped serving during
                    // the run is worth a line of its own (the acts' reads would have failed).
                    if let Some(e) = unmounted.stopped_early {
                        eprintln!("bench-client: slowfs had stopped serving before the end: {e}");
                    }
                    eprintln!(
                        "bench-client: slowfs unmounted from {}",
                        self.mountpoint.display()
                    )
                }
                Err(error) => eprintln!("bench-client: slowfs: {error}"),
            }
        }
        // Empty once unmounted; if the kernel still holds a detached mount, it stays behind
        // (empty) in the temporary directory.
        let _ = std::fs::remove_dir(&self.mountpoint);
    }
}

/// A run cut short by SIGINT or SIGTERM: exit code 128 + the signal's number, as a shell
/// reports a process killed by it.
#[derive(Debug)]
pub(crate) struct Interrupted {
    pub(crate) signal: &'static str,
    pub(crate) number: u8,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted by {}; the servers were stopped",
            self.signal
        )
    }
}

impl std::error::Error for Interrupted {}

/// Signal handlers for SIGINT and SIGTERM, installed now (call it before mounting, inside the
/// runtime); [`Signals::unless_interrupted`] then runs the work until one arrives.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing a SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing a SIGTERM handler")?,
        })
    }

    /// Runs `work` to its end, or until SIGINT or SIGTERM; then `work` is dropped, and with it
    /// every server it started (they are killed when their handles drop).
    pub(crate) async fn unless_interrupted<T>(
        mut self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            result = work => result,
            _ = self.interrupt.recv() => Err(Interrupted { signal: "SIGINT", number: 2 }.into()),
            _ = self.terminate.recv() => Err(Interrupted { signal: "SIGTERM", number: 15 }.into()),
        }
    }
}

/// The most threads of each kind a server had at once while it was sampled.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct ThreadPeaks {
    /// Threads named as Tokio names its own (`tokio-rt-worker`; older Tokios said
    /// `tokio-runtime-worker`: the workers *and* the blocking pool's threads). The
    /// blocking pool's are these minus the workers.
    pub(crate) tokio: usize,
    /// io_uring's io-wq workers (`iou-wrk-*`): kernel threads of the server's process that
    /// wait for the requests the kernel could not complete at once.
    pub(crate) io_wq: usize,
}

impl ThreadPeaks {
    pub(crate) fn max(self, other: ThreadPeaks) -> ThreadPeaks {
        ThreadPeaks {
            tokio: self.tokio.max(other.tokio),
            io_wq: self.io_wq.max(other.io_wq),
        }
    }
}

/// Counts a process's threads by name, now (`None` when it cannot: not Linux, gone).
fn count_threads(pid: u32) -> Option<ThreadPeaks> {
    let mut peaks = ThreadPeaks::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        // A thread can end between the listing and the read: skip it.
        let Ok(name) = std::fs::read_to_string(task.ok()?.path().join("comm")) else {
            continue;
        };
        // Tokio's default name (the kernel keeps 15 bytes of it: `tokio-runtime-w` for the
        // older `tokio-runtime-worker`).
        if name.starts_with("tokio-rt-worker") || name.starts_with("tokio-runtime-w") {
            peaks.tokio += 1;
        } else if name.starts_with("iou-wrk-") {
            peaks.io_wq += 1;
        }
    }
    Some(peaks)
}

/// Samples a server's threads every few milliseconds while it is loaded.
pub(crate) struct ThreadSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<ThreadPeaks>>,
}

/// How often the sampler looks: often enough to catch the pool at its largest in a round of a
/// few hundred milliseconds, and cheap (one small read per thread).
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

impl ThreadSampler {
    /// Starts sampling `pid` (nothing to sample without one).
    pub(crate) fn start(pid: Option<u32>) -> ThreadSampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let pid = pid?;
            let mut peaks = count_threads(pid)?;
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                // /proc reads are quick and never wait for a disk: fine on the runtime.
                if let Some(now) = count_threads(pid) {
                    peaks = peaks.max(now);
                }
            }
            Some(peaks)
        });
        ThreadSampler { stop, task }
    }

    /// Stops sampling and returns the peaks (with one last look).
    pub(crate) async fn stop(self) -> Option<ThreadPeaks> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

/// The blocking pool's threads at the peak: Tokio's threads minus its workers (`None` without
/// the server's statistics or a sample).
fn pool_threads(act: &ActReport) -> Option<usize> {
    let workers = act.server.as_ref()?.workers as usize;
    Some(act.threads?.tokio.saturating_sub(workers))
}

/// What `compare`'s text report adds: the disk, and who waited for it.
pub(crate) fn text_lines(report: &CompareReport) -> Vec<String> {
    let mut lines = vec![format!("disk: {}", report.disk.describe())];
    let threads: Vec<String> = report
        .acts
        .iter()
        .map(|act| {
            let or_unknown = |n: Option<usize>| n.map_or("?".into(), |n| n.to_string());
            format!(
                "{} {}/{}",
                act.act,
                or_unknown(pool_threads(act)),
                or_unknown(act.threads.map(|t| t.io_wq))
            )
        })
        .collect();
    lines.push(format!(
        "threads at their peak, blocking pool / io_uring's io-wq workers: {}",
        threads.join(", ")
    ));
    lines
}

/// What `compare --figures` adds: `disk` (one line), `threads_table` (per act: the threads
/// that waited for the disk) and per act `<act>_pool_threads_peak` and
/// `<act>_io_wq_threads_peak`.
pub(crate) fn figures(report: &CompareReport) -> Vec<(String, String)> {
    let or_unknown = |n: Option<usize>| n.map_or("?".into(), |n| n.to_string());
    let mut table = String::from(
        "| act | blocking-pool threads (peak) | io-wq threads, `iou-wrk-*` (peak) |\n|---|---:|---:|",
    );
    let mut keys = vec![("disk".to_string(), report.disk.describe())];
    for act in &report.acts {
        let (pool, io_wq) = (
            or_unknown(pool_threads(act)),
            or_unknown(act.threads.map(|t| t.io_wq)),
        );
        table.push_str(&format!("\n| {} | {pool} | {io_wq} |", act.act));
        let prefix = act.act.replace('-', "_");
        keys.push((format!("{prefix}_pool_threads_peak"), pool));
        keys.push((format!("{prefix}_io_wq_threads_peak"), io_wq));
    }
    keys.insert(1, ("threads_table".to_string(), table));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_describe_themselves() {
        assert_eq!(
            DiskReport::plain(Duration::ZERO).describe(),
            "page cache (no delay)"
        );
        let delayed = DiskReport::plain(Duration::from_millis(2));
        assert_eq!(delayed.kind, "io-delay");
        assert!(delayed.describe().contains("2ms"), "{}", delayed.describe());
        let slow = DiskReport {
            kind: "slowfs",
            delay_ms: 2.0,
            queue_depth: Some(32),
            reads: Some(7),
        };
        let text = slow.describe();
        assert!(text.starts_with("slowfs"), "{text}");
        assert!(text.contains("queue depth 32"), "{text}");
        assert!(text.contains("7 read requests"), "{text}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sampler_counts_tokio_threads_by_name() {
        let peaks = ThreadSampler::start(Some(std::process::id()));
        tokio::time::sleep(SAMPLE_EVERY * 4).await;
        let peaks = peaks.stop().await.expect("this process can be sampled");
        // This test's runtime has two workers, named as Tokio names them.
        assert!(peaks.tokio >= 2, "{peaks:?}");
        assert!(ThreadSampler::start(None).stop().await.is_none());
    }

    #[test]
    fn a_missing_jokes_file_is_bad_input() {
        let error =
            SlowDisk::mount(Path::new("/nonexistent/jokes.txt"), Duration::ZERO).unwrap_err();
        assert!(error.is::<BadInput>(), "{error:#}");
        assert!(
            error.to_string().contains("/nonexistent/jokes.txt"),
            "{error}"
        );
    }
}

#[cfg(all(test, feature = "system-tests"))]
mod system_tests {
    use super::*;

    #[test]
    fn a_panic_with_the_disk_mounted_unmounts_it() {
        let jokes = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../jokes.txt"));
        let disk = SlowDisk::mount(&jokes, Duration::from_millis(1)).expect("slowfs mounts");
        let mountpoint = disk.mountpoint.clone();
        assert!(slowfs::is_mounted(&mountpoint));
        assert_eq!(
            std::fs::read(&disk.jokes).unwrap(),
            std::fs::read(&jokes).unwrap()
        );
        let unwound = std::thread::spawn(move || {
            let _disk = disk;
            panic!("a panic in the middle of a run");
        })
        .join();
        assert!(unwound.is_err());
        assert!(
            !slowfs::is_mounted(&mountpoint),
            "still mounted after the panic"
        );
        assert!(!mountpoint.exists(), "the mount point was left behind");
    }
}
