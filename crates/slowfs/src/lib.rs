//! slowfs: a disk that is really slow, in the kernel, for every act alike.
//!
//! `--io-delay` in the acts is a blocking sleep placed where an act does its I/O. That is a fair
//! model for the acts that block a thread, and no model at all for io_uring, where no thread of
//! ours waits. slowfs puts the slowness where a real slow disk has it: below the system calls.
//! It is a FUSE filesystem that serves a backing folder **read-only** and makes every read
//! request take at least `delay` (and every open at least `open_delay`), whoever sends it.
//!
//! Three things make it behave like a device rather than like a sleep in our own code:
//!
//! - **No page cache.** Every open is answered with `FOPEN_DIRECT_IO`, so the kernel sends each
//!   `read` to us instead of serving it from memory, and the delay is paid every time. Attributes
//!   and names are given a time-to-live of zero, so a file replaced in the backing folder (a live
//!   edit) is seen at once.
//! - **A queue depth.** At most `queue_depth` requests are in service at once, like the command
//!   queue of a real disk; the rest wait in line. A request's service time starts when a slot
//!   takes it, so with queue depth 1, N reads take N delays.
//! - **Real concurrency.** fuser reads requests from the kernel on one thread. That thread only
//!   hands each read to a pool of `queue_depth` worker threads, which do the `pread`, sleep out the
//!   rest of the delay and reply; the reply objects fuser gives us can be moved to another thread
//!   for exactly this.
//!
//! Use it from the command line (`slowfs MOUNTPOINT --backing DIR --delay 2ms`, see the README)
//! or from another crate with [`mount`], whose [`MountGuard`] unmounts when dropped.
//!
//! FUSE is Linux-only here. On other systems this crate still builds, [`mount`] returns
//! [`Error::NotLinux`] and the binary says so and exits with status 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(target_os = "linux")]
mod device;
#[cfg(target_os = "linux")]
mod fs;
#[cfg(target_os = "linux")]
mod mount;

#[cfg(target_os = "linux")]
pub use mount::{MountGuard, mount};

/// The default queue depth: 32 requests in service at once.
///
/// That is the command queue of a SATA SSD (AHCI's NCQ holds 32 commands), and the depth at
/// which NVMe SSDs' data sheets quote their random-read figures ("4 KiB random read, QD32").
/// A fast SSD serves that many reads at once; a spinning disk effectively far fewer.
pub const DEFAULT_QUEUE_DEPTH: usize = 32;

/// The largest queue depth we accept: each slot is a worker thread.
pub const MAX_QUEUE_DEPTH: usize = 1024;

/// How slow the disk is, and how many requests it serves at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The least time each read request takes, from the moment a queue slot takes it.
    pub delay: Duration,
    /// The least time each open takes (zero: opens are answered at once, outside the queue).
    pub open_delay: Duration,
    /// How many requests are in service at once (1 ..= [`MAX_QUEUE_DEPTH`]).
    pub queue_depth: usize,
    /// Whether the kernel may send us reads asynchronously (FUSE's `FUSE_ASYNC_DIO`), as it
    /// would queue them to a real device. With it, an io_uring (or AIO) read is queued to us
    /// and its submitter goes on; without it, FUSE makes the thread that submitted the io_uring
    /// read wait inside `io_uring_enter` until we answer, one read at a time. Plain `read`
    /// and `pread` calls wait for their answer either way. Default: on.
    pub async_reads: bool,
}

impl Options {
    /// Reads that take at least `delay` each, opens that cost nothing, the default queue depth.
    pub fn with_delay(delay: Duration) -> Self {
        Options {
            delay,
            open_delay: Duration::ZERO,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            async_reads: true,
        }
    }
}

/// What the device did so far (see [`MountGuard::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Read requests the kernel sent us (a large `read` is split into requests of up to 1 MiB).
    pub reads: u64,
    /// Opens of files (not directories).
    pub opens: u64,
    /// The most requests ever in service at once; never above the queue depth.
    pub max_in_service: usize,
}

/// Why slowfs could not start. Every message names the argument or the resource at fault, so
/// the binary can print it as one line and exit with status 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// FUSE is Linux-only in this project.
    #[error("slowfs needs Linux (a FUSE filesystem); this system is {0}")]
    NotLinux(&'static str),
    /// The mount point does not exist.
    #[error("MOUNTPOINT {}: does not exist", .0.display())]
    MountpointMissing(PathBuf),
    /// The mount point is not a directory.
    #[error("MOUNTPOINT {}: not a directory", .0.display())]
    MountpointNotDir(PathBuf),
    /// The backing folder does not exist.
    #[error("--backing {}: does not exist", .0.display())]
    BackingMissing(PathBuf),
    /// The backing path is not a directory.
    #[error("--backing {}: not a directory", .0.display())]
    BackingNotDir(PathBuf),
    /// A path could not be examined for another reason (permissions, I/O).
    #[error("{argument} {}: {source}", path.display())]
    Inaccessible {
        /// `MOUNTPOINT` or `--backing`.
        argument: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The queue depth is out of range.
    #[error("--queue-depth {0}: must be between 1 and {MAX_QUEUE_DEPTH}")]
    QueueDepth(usize),
    /// The FUSE device or the helper needed to mount is missing.
    #[error("FUSE is not available: {0}")]
    FuseUnavailable(String),
    /// The kernel or fusermount3 refused the mount.
    #[error("mounting slowfs at {}: {source}", mountpoint.display())]
    Mount {
        /// Where we tried to mount.
        mountpoint: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Checks the two paths the way the command line names them, before any FUSE work, so a typo
/// is reported as a typo even on a machine without FUSE.
pub fn check_paths(mountpoint: &Path, backing: &Path) -> Result<(), Error> {
    check_dir(
        "MOUNTPOINT",
        mountpoint,
        Error::MountpointMissing,
        Error::MountpointNotDir,
    )?;
    check_dir(
        "--backing",
        backing,
        Error::BackingMissing,
        Error::BackingNotDir,
    )
}

fn check_dir(
    argument: &'static str,
    path: &Path,
    missing: fn(PathBuf) -> Error,
    not_dir: fn(PathBuf) -> Error,
) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(not_dir(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing(path.to_path_buf())),
        Err(source) => Err(Error::Inaccessible {
            argument,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What an unmount found. The mount is gone whenever there is one of these.
#[derive(Debug)]
pub struct Unmounted {
    /// Why the filesystem had stopped being served before the unmount, when its session ended
    /// on its own with an error. `None` when it was served until the unmount, or ended the way
    /// an unmount ends it: an unmount from outside (`umount`, `fusermount3 -u`) or a
    /// connection cut through fusectl's `abort` (the kernel tells the session the same).
    pub stopped_early: Option<std::io::Error>,
}

/// Whether something is mounted at `path` (as written in the mount table: give a canonical
/// path), as this process sees the mount table. Always false where there is no
/// `/proc/self/mountinfo` (systems other than Linux).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // The fifth field of each line is the mount point (spaces in it are escaped as \040, so
    // splitting at spaces is safe).
    let path = path.to_string_lossy();
    table
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(&*path))
}

/// On systems other than Linux there is no slowfs: this always refuses, naming the system.
#[cfg(not(target_os = "linux"))]
pub fn mount(
    _backing: impl AsRef<Path>,
    _mountpoint: impl AsRef<Path>,
    _options: &Options,
) -> Result<MountGuard, Error> {
    Err(Error::NotLinux(std::env::consts::OS))
}

/// On systems other than Linux no mount can exist, so no guard is ever made; the methods exist
/// so that callers compile everywhere.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct MountGuard {
    never: std::convert::Infallible,
}

#[cfg(not(target_os = "linux"))]
impl MountGuard {
    /// Where the slow copy of the backing folder is.
    pub fn mountpoint(&self) -> &Path {
        match self.never {}
    }
    /// What the device did so far.
    pub fn stats(&self) -> Stats {
        match self.never {}
    }
    /// Whether the filesystem is still being served.
    pub fn is_serving(&self) -> bool {
        match self.never {}
    }
    /// Whether fusermount3 watches this mount and removes it even if this process is killed.
    pub fn unmounts_if_killed(&self) -> bool {
        match self.never {}
    }
    /// Unmounts.
    pub fn unmount(self) -> std::io::Result<Unmounted> {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_errors_name_the_argument() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let missing = dir.path().join("missing");

        let e = check_paths(&missing, dir.path()).unwrap_err();
        assert!(matches!(e, Error::MountpointMissing(_)), "{e}");
        assert!(e.to_string().starts_with("MOUNTPOINT "), "{e}");

        let e = check_paths(&file, dir.path()).unwrap_err();
        assert!(matches!(e, Error::MountpointNotDir(_)), "{e}");

        let e = check_paths(dir.path(), &missing).unwrap_err();
        assert!(matches!(e, Error::BackingMissing(_)), "{e}");
        assert!(e.to_string().starts_with("--backing "), "{e}");

        let e = check_paths(dir.path(), &file).unwrap_err();
        assert!(matches!(e, Error::BackingNotDir(_)), "{e}");

        check_paths(dir.path(), dir.path()).unwrap();
    }
}
