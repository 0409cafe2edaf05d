//! Mounting and unmounting, in a background thread of the calling process.
//!
//! Why in-process rather than a child `slowfs` process: the guarantee we need is "the mount goes
//! away at the end, even when the run is interrupted". In-process, three layers give it:
//!
//! 1. [`MountGuard`]'s `Drop` unmounts on every normal return and on a panic (unwinding runs it).
//! 2. When `fusermount3` is installed we mount through it with `auto_unmount`: fusermount3 stays
//!    behind as a tiny watcher and unmounts as soon as our process is gone, however it died —
//!    even `kill -9`, where no destructor of ours runs.
//! 3. If the mount point is still busy at the end (a server that was not stopped still has the
//!    file open), we detach it lazily: it disappears from the tree at once and the kernel lets
//!    go of it when the last file is closed.
//!
//! A child process would need all of that plus a way to learn that its parent died.

use std::fs::OpenOptions;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};

use crate::device::Counters;
use crate::fs::SlowFs;
use crate::{Error, MAX_QUEUE_DEPTH, Options, Stats, Unmounted, check_paths};

/// How long dropping a [`MountGuard`] waits for the kernel to let go of the mount.
const UNMOUNT_WAIT: Duration = Duration::from_secs(10);

/// A mounted slowfs. Dropping it unmounts (also during a panic); [`MountGuard::unmount`] does
/// the same and reports how it went.
#[derive(Debug)]
pub struct MountGuard {
    mountpoint: PathBuf,
    unmounter: SessionUnmounter,
    session: Option<JoinHandle<std::io::Result<()>>>,
    counters: Arc<Counters>,
    auto_unmount: bool,
}

/// Mounts `backing` read-only at `mountpoint`, each read taking at least `options.delay`, and
/// serves it from threads of this process until the returned guard is dropped.
///
/// ```no_run
/// # fn main() -> Result<(), slowfs::Error> {
/// use std::time::Duration;
/// let guard = slowfs::mount("data", "/tmp/slow", &slowfs::Options::with_delay(Duration::from_millis(2)))?;
/// let jokes = guard.mountpoint().join("jokes.txt"); // every read of it now takes >= 2 ms
/// # let _ = jokes;
/// drop(guard); // unmounted
/// # Ok(())
/// # }
/// ```
pub fn mount(
    backing: impl AsRef<Path>,
    mountpoint: impl AsRef<Path>,
    options: &Options,
) -> Result<MountGuard, Error> {
    let (backing, mountpoint) = (backing.as_ref(), mountpoint.as_ref());
    check_paths(mountpoint, backing)?;
    if options.queue_depth == 0 || options.queue_depth > MAX_QUEUE_DEPTH {
        return Err(Error::QueueDepth(options.queue_depth));
    }
    let fusermount3 = find_on_path("fusermount3");
    check_fuse_available(fusermount3.is_some())?;
    // Absolute, so unmounting at the end does not depend on the current directory then.
    let mountpoint = &mountpoint
        .canonicalize()
        .map_err(|source| Error::Inaccessible {
            argument: "MOUNTPOINT",
            path: mountpoint.to_path_buf(),
            source,
        })?;
    let backing = backing
        .canonicalize()
        .map_err(|source| Error::Inaccessible {
            argument: "--backing",
            path: backing.to_path_buf(),
            source,
        })?;

    let counters = Arc::new(Counters::default());
    let filesystem = || {
        SlowFs::new(backing.clone(), options.clone(), Arc::clone(&counters)).map_err(|source| {
            Error::Inaccessible {
                argument: "--backing",
                path: backing.clone(),
                source,
            }
        })
    };
    let mount_error = |source| Error::Mount {
        mountpoint: mountpoint.to_path_buf(),
        source,
    };

    let mut auto_unmount = fusermount3.is_some();
    let mut session = match Session::new(filesystem()?, mountpoint, &config(auto_unmount)) {
        Ok(session) => session,
        // fusermount3 refuses `allow_other` (which auto_unmount needs) to users other than
        // root unless /etc/fuse.conf says `user_allow_other`; mount without it then.
        Err(e) if auto_unmount && e.kind() == std::io::ErrorKind::PermissionDenied => {
            auto_unmount = false;
            Session::new(filesystem()?, mountpoint, &config(false)).map_err(mount_error)?
        }
        Err(e) => return Err(mount_error(e)),
    };
    let unmounter = session.unmount_callable();
    let session = std::thread::Builder::new()
        .name("slowfs-session".into())
        .spawn(move || session.run())
        .map_err(mount_error)?;
    Ok(MountGuard {
        mountpoint: mountpoint.to_path_buf(),
        unmounter,
        session: Some(session),
        counters,
        auto_unmount,
    })
}

fn config(auto_unmount: bool) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("slowfs".into()),
        MountOption::Subtype("slowfs".into()),
        // Let the kernel check permissions from the modes we report, as on a real disk.
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if auto_unmount {
        config.mount_options.push(MountOption::AutoUnmount);
        // auto_unmount needs allow_other; fuser still lets in only root and the owner.
        config.acl = SessionACL::RootAndOwner;
    }
    config
}

/// Refuses early, with the reason, when this machine cannot mount FUSE at all.
fn check_fuse_available(have_fusermount3: bool) -> Result<(), Error> {
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(device) => match device.metadata() {
            Ok(meta) if meta.file_type().is_char_device() => {}
            _ => {
                return Err(Error::FuseUnavailable(
                    "/dev/fuse is not the FUSE character device".into(),
                ));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::FuseUnavailable(
                "no /dev/fuse (load the module: modprobe fuse; in a container: --device /dev/fuse)"
                    .into(),
            ));
        }
        Err(e) => return Err(Error::FuseUnavailable(format!("opening /dev/fuse: {e}"))),
    }
    // Only root may call mount(2); everyone else mounts through the setuid fusermount3.
    if !rustix::process::geteuid().is_root() && !have_fusermount3 {
        return Err(Error::FuseUnavailable(
            "not root and no fusermount3 on PATH (Debian: apt-get install fuse3)".into(),
        ));
    }
    Ok(())
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl MountGuard {
    /// Where the slow copy of the backing folder is.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// What the device did so far.
    pub fn stats(&self) -> Stats {
        Stats {
            reads: self.counters.reads.load(Ordering::Relaxed),
            opens: self.counters.opens.load(Ordering::Relaxed),
            max_in_service: self.counters.max_in_service.load(Ordering::SeqCst),
        }
    }

    /// Whether the filesystem is still being served. False once someone unmounted it from
    /// outside (`fusermount3 -u`, `umount`).
    pub fn is_serving(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.is_finished())
    }

    /// Whether fusermount3 watches this mount and removes it even if this process is killed.
    pub fn unmounts_if_killed(&self) -> bool {
        self.auto_unmount
    }

    /// Unmounts and waits (up to 10 s) until the kernel has let go of the mount. `Ok` means
    /// the mount is gone from the mount table; [`Unmounted`] says whether the filesystem had
    /// been served until then.
    pub fn unmount(mut self) -> std::io::Result<Unmounted> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<Unmounted> {
        let Some(session) = self.session.take() else {
            return Ok(Unmounted {
                stopped_early: None,
            });
        };
        // A session that ended before we asked had its mount taken away from outside
        // (`umount`, `fusermount3 -u`) or its connection cut under it; either way the mount
        // table, not the thread, says whether anything is left to remove.
        let ended_by_itself = session.is_finished();
        if crate::is_mounted(&self.mountpoint) {
            self.unmount_now()?;
        }
        // Lets go of fuser's own record of the mount (a no-op now that it is unmounted; with
        // auto_unmount it also ends the fusermount3 watcher).
        let _ = self.unmounter.unmount();
        let deadline = Instant::now() + UNMOUNT_WAIT;
        while !session.is_finished() {
            if Instant::now() >= deadline {
                return Err(std::io::Error::other(format!(
                    "{} is detached but still in use; it goes away when its last file is closed",
                    self.mountpoint.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let ended = match session.join() {
            Ok(ended) => ended,
            Err(_) => Err(std::io::Error::other("the slowfs session thread panicked")),
        };
        if crate::is_mounted(&self.mountpoint) {
            return Err(std::io::Error::other(format!(
                "{} is still mounted after the unmount",
                self.mountpoint.display()
            )));
        }
        let stopped_early = match ended {
            Ok(()) => None,
            // After an unmount the kernel ends the session's read of /dev/fuse with ENODEV,
            // which fuser takes as the normal end. One CI run (an interrupted `compare`, its
            // servers killed mid-read) saw the session end with ECONNABORTED instead; we do not
            // know whether before or after the unmount, and some 200 tries here did not make it
            // happen again. After the unmount the mount table above is the answer, and it is
            // empty: that is an unmount like any other.
            Err(e)
                if !ended_by_itself
                    && e.raw_os_error() == Some(rustix::io::Errno::CONNABORTED.raw_os_error()) =>
            {
                None
            }
            Err(e) if ended_by_itself => Some(e),
            Err(e) => return Err(e),
        };
        Ok(Unmounted { stopped_early })
    }
}

impl MountGuard {
    /// Removes the mount. We do it ourselves even with auto_unmount: fusermount3's watcher only
    /// acts when our process has died (it checks for a dead connection, so as never to unmount
    /// something else mounted there since).
    fn unmount_now(&self) -> std::io::Result<()> {
        use rustix::io::Errno;
        use rustix::mount::{UnmountFlags, unmount};
        let context = |what: &str, e: &dyn std::fmt::Display| {
            std::io::Error::other(format!("{what} {}: {e}", self.mountpoint.display()))
        };
        match unmount(&self.mountpoint, UnmountFlags::empty()) {
            Ok(()) => Ok(()),
            // No longer a mount point: fuser removes a mount whose session has ended on its
            // own, and it may do so between our look at the mount table and this call. The
            // caller looks at the table again afterwards.
            Err(Errno::INVAL) => Ok(()),
            // Still in use (a server that was not stopped has the file open): detach it from
            // the tree now; the kernel finishes the unmount when the last file is closed.
            Err(Errno::BUSY) => unmount(&self.mountpoint, UnmountFlags::DETACH)
                .map_err(|e| context("detaching", &e)),
            // Not root: the setuid fusermount3 unmounts for us (lazily, for the same reason).
            Err(Errno::PERM) => {
                let output = std::process::Command::new("fusermount3")
                    .args(["-u", "-z", "--"])
                    .arg(&self.mountpoint)
                    .output()
                    .map_err(|e| context("running fusermount3 -u for", &e))?;
                if output.status.success() {
                    Ok(())
                } else {
                    Err(context(
                        "fusermount3 -u",
                        &String::from_utf8_lossy(&output.stderr).trim(),
                    ))
                }
            }
            Err(e) => Err(context("unmounting", &e)),
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        match self.shutdown() {
            Ok(Unmounted {
                stopped_early: Some(e),
            }) => eprintln!("slowfs: it had stopped serving before the unmount: {e}"),
            Ok(_) => {}
            Err(e) => eprintln!("slowfs: {e}"),
        }
    }
}
