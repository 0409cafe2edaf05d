//! Real FUSE mounts of real files in temporary folders (`--features system-tests`; needs
//! /dev/fuse and, for the watcher and non-root users, Debian's fuse3, which .ci/run installs).
//!
//! Every mount lives in a [`Fixture`] whose guard is dropped first, so the mount is gone even
//! when an assertion fails; every operation on the mount runs under a time limit.
#![cfg(all(target_os = "linux", feature = "system-tests"))]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use slowfs::{MountGuard, Options, is_mounted};

/// The longest any single test step may take before the test fails (and unmounts).
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Field order matters: the guard is dropped (unmounted) before the folders are removed.
struct Fixture {
    guard: Option<MountGuard>,
    mountpoint: tempfile::TempDir,
    backing: tempfile::TempDir,
}

impl Fixture {
    fn new(options: Options, files: &[(&str, &[u8])]) -> Fixture {
        let backing = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(backing.path().join(name), bytes).unwrap();
        }
        let mountpoint = tempfile::tempdir().unwrap();
        let guard = slowfs::mount(backing.path(), mountpoint.path(), &options).unwrap();
        Fixture {
            guard: Some(guard),
            mountpoint,
            backing,
        }
    }

    fn slow(&self, name: &str) -> PathBuf {
        self.mountpoint.path().join(name)
    }

    fn guard(&self) -> &MountGuard {
        self.guard.as_ref().unwrap()
    }
}

fn options(delay: Duration, queue_depth: usize) -> Options {
    Options {
        queue_depth,
        ..Options::with_delay(delay)
    }
}

/// Runs `step` on another thread and fails the test if it takes longer than [`STEP_LIMIT`].
fn within<T: Send + 'static>(what: &str, step: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(step());
    });
    result
        .recv_timeout(STEP_LIMIT)
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP_LIMIT:?}"))
}

/// Bytes that are not all alike, so a misplaced block would show (xorshift, fixed seed).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn repository_jokes() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jokes.txt")).unwrap()
}

#[test]
fn reads_through_the_mount_are_byte_identical() {
    let big = pseudo_random(5 * 1024 * 1024 + 123);
    let jokes = repository_jokes();
    let fixture = Fixture::new(
        options(Duration::from_micros(100), 32),
        &[("big.bin", &big), ("jokes.txt", &jokes)],
    );
    let (big_path, jokes_path) = (fixture.slow("big.bin"), fixture.slow("jokes.txt"));
    let (read_big, read_jokes) = within("reading both files", move || {
        (
            std::fs::read(big_path).unwrap(),
            std::fs::read(jokes_path).unwrap(),
        )
    });
    assert!(read_big == big, "5 MiB file differs through the mount");
    assert_eq!(read_jokes, jokes, "jokes.txt differs through the mount");
    // Direct I/O: the reads reached us, and a second read of the file reaches us again.
    let before = fixture.guard().stats().reads;
    assert!(
        before >= 6,
        "a 5 MiB file takes several read requests, saw {before}"
    );
    let again = fixture.slow("jokes.txt");
    within("reading jokes.txt again", move || {
        std::fs::read(again).unwrap()
    });
    assert!(
        fixture.guard().stats().reads > before,
        "second read served from a cache"
    );

    let names: Vec<String> = std::fs::read_dir(fixture.mountpoint.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"big.bin".to_string()) && names.contains(&"jokes.txt".to_string()));
}

#[test]
fn each_read_takes_at_least_the_delay() {
    let delay = Duration::from_millis(25);
    let fixture = Fixture::new(options(delay, 32), &[("jokes.txt", &repository_jokes())]);
    let path = fixture.slow("jokes.txt");
    let timings = within("three reads", move || {
        let file = File::open(path).unwrap();
        let mut buf = [0u8; 4096];
        (0..3)
            .map(|i| {
                let start = Instant::now();
                let n = file.read_at(&mut buf, i * 1000).unwrap();
                assert!(n > 0);
                start.elapsed()
            })
            .collect::<Vec<_>>()
    });
    for t in timings {
        assert!(
            t >= delay,
            "a read took {t:?}, less than the {delay:?} delay"
        );
    }
}

#[test]
fn an_open_takes_at_least_the_open_delay() {
    let open_delay = Duration::from_millis(40);
    let fixture = Fixture::new(
        Options {
            open_delay,
            ..options(Duration::ZERO, 4)
        },
        &[("jokes.txt", b"a joke\n")],
    );
    let path = fixture.slow("jokes.txt");
    let took = within("an open", move || {
        let start = Instant::now();
        let _file = File::open(path).unwrap();
        start.elapsed()
    });
    assert!(took >= open_delay, "open took {took:?}");
}

/// N concurrent readers, each one 4 KiB read at its own offset, all started together.
fn concurrent_reads(fixture: &Fixture, readers: usize) -> Duration {
    let path = fixture.slow("big.bin");
    within("concurrent reads", move || {
        let barrier = Arc::new(Barrier::new(readers + 1));
        let threads: Vec<_> = (0..readers)
            .map(|i| {
                let file = File::open(&path).unwrap();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    barrier.wait();
                    file.read_at(&mut buf, i as u64 * 4096).unwrap();
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for t in threads {
            t.join().unwrap();
        }
        start.elapsed()
    })
}

#[test]
fn queue_depth_one_serves_one_read_at_a_time() {
    let (delay, readers) = (Duration::from_millis(20), 8);
    let big = pseudo_random(64 * 4096);
    let serial = Fixture::new(options(delay, 1), &[("big.bin", &big)]);
    let took = concurrent_reads(&serial, readers);
    assert!(
        took >= delay * readers as u32,
        "{readers} reads at queue depth 1 took {took:?}, less than {readers} x {delay:?}"
    );
    assert_eq!(serial.guard().stats().max_in_service, 1);

    // The parallel figure is reported, not asserted: a lower bound on parallelism would
    // flake on a busy machine. Only the device's own ceiling is a hard fact.
    let parallel = Fixture::new(options(delay, readers), &[("big.bin", &big)]);
    let took_parallel = concurrent_reads(&parallel, readers);
    let stats = parallel.guard().stats();
    assert!(stats.max_in_service <= readers);
    eprintln!(
        "slowfs: {readers} concurrent 4 KiB reads, delay {delay:?}: queue depth 1 took {took:?}, \
         queue depth {readers} took {took_parallel:?} (at most {} in service at once)",
        stats.max_in_service
    );
}

#[test]
fn the_mount_is_read_only() {
    let fixture = Fixture::new(options(Duration::ZERO, 2), &[("jokes.txt", b"a joke\n")]);
    let path = fixture.slow("jokes.txt");
    let err = within("opening for writing", move || {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap_err()
    });
    assert_eq!(err.raw_os_error(), Some(30), "EROFS expected, got {err}");
    assert_eq!(
        std::fs::read(fixture.backing.path().join("jokes.txt")).unwrap(),
        b"a joke\n"
    );
}

#[test]
fn a_file_replaced_in_the_backing_folder_is_seen_at_once() {
    let fixture = Fixture::new(options(Duration::ZERO, 2), &[("jokes.txt", b"old joke\n")]);
    let path = fixture.slow("jokes.txt");
    let p = path.clone();
    assert_eq!(
        within("first read", move || std::fs::read(p).unwrap()),
        b"old joke\n"
    );
    // The way the acts' live-edit tests change a jokes file: write a new one, rename it over.
    let fresh = fixture.backing.path().join("jokes.txt.new");
    std::fs::write(&fresh, b"a brand new joke\n").unwrap();
    std::fs::rename(&fresh, fixture.backing.path().join("jokes.txt")).unwrap();
    assert_eq!(
        within("read after the rename", move || std::fs::read(path)
            .unwrap()),
        b"a brand new joke\n"
    );
}

#[test]
fn dropping_the_guard_unmounts_even_during_a_panic() {
    let backing = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let (b, m) = (
        backing.path().to_path_buf(),
        mountpoint.path().to_path_buf(),
    );
    let outcome = std::panic::catch_unwind(move || {
        let _guard = slowfs::mount(&b, &m, &Options::with_delay(Duration::ZERO)).unwrap();
        assert!(is_mounted(&m));
        panic!("an expected panic, standing for a failing test or benchmark");
    });
    assert!(outcome.is_err());
    assert!(
        !is_mounted(mountpoint.path()),
        "still mounted after the panic"
    );
}

#[test]
fn a_busy_mount_point_is_detached_at_the_end() {
    let fixture = Fixture::new(options(Duration::ZERO, 2), &[("jokes.txt", b"a joke\n")]);
    let held_open = File::open(fixture.slow("jokes.txt")).unwrap();
    let mut fixture = fixture;
    let guard = fixture.guard.take().unwrap();
    let mountpoint = fixture.mountpoint.path().to_path_buf();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held_open);
    });
    within("unmounting a busy mount", move || guard.unmount()).unwrap();
    closer.join().unwrap();
    assert!(!is_mounted(&mountpoint));
}

#[test]
fn a_mount_whose_connection_was_cut_is_still_removed_at_the_end() {
    // The kernel's own way to cut a FUSE connection: write to `abort` in fusectl, mounted for
    // this test in a folder of its own. What is left is a dead mount (every access fails with
    // ENOTCONN) until someone removes it: fuser tries as its session ends, the guard makes sure.
    let mut fixture = Fixture::new(options(Duration::ZERO, 2), &[("jokes.txt", b"a joke\n")]);
    let mountpoint = fixture.mountpoint.path().canonicalize().unwrap();
    let connection = rustix::fs::minor(rustix::fs::stat(&mountpoint).unwrap().st_dev);
    let control = tempfile::tempdir().unwrap();
    rustix::mount::mount(
        "fusectl",
        control.path(),
        "fusectl",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("mounting fusectl (the system tests run as root)");
    let abort = std::fs::write(
        control.path().join(connection.to_string()).join("abort"),
        "1",
    );
    rustix::mount::unmount(control.path(), rustix::mount::UnmountFlags::empty()).unwrap();
    abort.expect("writing to the connection's abort file");

    let guard = fixture.guard.take().unwrap();
    let deadline = Instant::now() + STEP_LIMIT;
    while guard.is_serving() {
        assert!(Instant::now() < deadline, "still serving after the abort");
        std::thread::sleep(Duration::from_millis(10));
    }
    let unmounted = within("unmounting the cut mount", move || guard.unmount()).unwrap();
    assert!(!is_mounted(&mountpoint), "the cut mount is still mounted");
    // The kernel ends the session the way an unmount does (ENODEV: fuser does not ask for
    // FUSE_ABORT_ERROR), so this is no early stop with an error.
    assert!(unmounted.stopped_early.is_none(), "{unmounted:?}");
}

/// If the test fails while the binary is still running, kill it: fusermount3's watcher then
/// removes its mount (the binary mounts with auto_unmount when fusermount3 is installed).
struct KillIfPanicking(rustix::process::Pid);

impl Drop for KillIfPanicking {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = rustix::process::kill_process(self.0, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn the_binary_unmounts_on_sigterm_and_sigint() {
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let backing = tempfile::tempdir().unwrap();
        std::fs::write(backing.path().join("jokes.txt"), b"a joke\n").unwrap();
        let mountpoint = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slowfs"))
            .arg(mountpoint.path())
            .arg("--backing")
            .arg(backing.path())
            .args(["--delay", "1ms"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let _cleanup = KillIfPanicking(pid);
        let deadline = Instant::now() + STEP_LIMIT;
        while !is_mounted(mountpoint.path()) {
            assert!(Instant::now() < deadline, "slowfs never mounted");
            if child.try_wait().unwrap().is_some() {
                let output = child.wait_with_output().unwrap();
                panic!(
                    "slowfs exited early ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let through_mount = mountpoint.path().join("jokes.txt");
        let read = within("a read through the binary's mount", move || {
            std::fs::read(through_mount)
        });
        assert_eq!(read.unwrap(), b"a joke\n", "{signal:?}");
        rustix::process::kill_process(pid, signal).unwrap();
        let status = within("slowfs exiting", move || child.wait_with_output().unwrap());
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert!(status.status.success(), "{signal:?}: {stderr}");
        assert!(stderr.contains("unmounting"), "{stderr}");
        assert!(
            !is_mounted(mountpoint.path()),
            "still mounted after {signal:?}"
        );
    }
}

#[test]
fn the_binary_refuses_when_fuse_is_not_available() {
    // A private mount namespace in which /dev/fuse is an ordinary empty file: FUSE is gone for
    // this one process and nothing else on the machine.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("not-fuse");
    std::fs::write(&fake, b"").unwrap();
    let script = format!(
        "mount --bind {} /dev/fuse && exec {} {} --backing {} --delay 2ms",
        fake.display(),
        env!("CARGO_BIN_EXE_slowfs"),
        dir.path().display(),
        dir.path().display()
    );
    let output = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("running unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "slowfs: FUSE is not available: /dev/fuse is not the FUSE character device"
    );
}
