//! `compare --slow-disk`: the options refused without FUSE, and (behind `system-tests`, which
//! needs /dev/fuse and Debian's `fuse3`) a real run on slowfs, and the mount taken away when the
//! run is interrupted with SIGINT or SIGTERM.
//!
//! Every run is bounded: few connections, and an outer limit that fails the test instead of
//! hanging it.

use std::process::{Command, Output};

const BENCH_CLIENT: &str = env!("CARGO_BIN_EXE_bench-client");

fn bench_client(args: &[&str]) -> Output {
    Command::new(BENCH_CLIENT)
        .args(args)
        .output()
        .expect("bench-client runs")
}

#[test]
fn slow_disk_and_io_delay_are_one_or_the_other() {
    let output = bench_client(&["compare", "--slow-disk", "2ms", "--io-delay", "2ms"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--slow-disk"), "{stderr}");
    assert!(stderr.contains("--io-delay"), "{stderr}");
}

#[test]
fn a_bad_slow_disk_delay_is_refused_by_name() {
    for bad in ["fast", "-2ms"] {
        let output = bench_client(&["compare", "--slow-disk", bad]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--slow-disk"), "{stderr}");
        assert!(stderr.contains("expected"), "{stderr}");
        assert!(stderr.contains("duration"), "{stderr}");
    }
}

#[test]
fn a_missing_jokes_file_is_refused_before_mounting() {
    let output = bench_client(&[
        "compare",
        "--slow-disk",
        "2ms",
        "--jokes",
        "/nonexistent/jokes.txt",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/jokes.txt"), "{stderr}");
}

#[cfg(feature = "system-tests")]
mod system {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::{BENCH_CLIENT, bench_client};

    /// Far longer than these runs need in a debug build on a busy machine.
    const LIMIT: Duration = Duration::from_secs(120);

    fn jokes_file() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../jokes.txt"))
    }

    /// The mount point bench-client names on stderr (`slowfs mounted at PATH (...`).
    fn mountpoint_in(line: &str) -> Option<PathBuf> {
        let rest = line.split_once("slowfs mounted at ")?.1;
        Some(PathBuf::from(rest.split_once(" (")?.0))
    }

    /// Kills the child if the test fails half-way, so no run outlives it.
    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn compare_on_a_slow_disk_serves_every_joke_and_says_which_disk() {
        let output = bench_client(&[
            "compare",
            "--slow-disk",
            "1ms",
            "--acts",
            "act1,act7,finale",
            "--conns",
            "10",
            "--rounds",
            "1",
            "--output",
            "json",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["disk"]["kind"], "slowfs", "{json:#}");
        assert_eq!(json["disk"]["delay_ms"], 1.0);
        // Every act read through the mount: slowfs served at least one read per joke of the
        // acts that read (act1, act7), and the finale's start-up read.
        let reads = json["disk"]["reads"].as_u64().unwrap();
        assert!(reads >= 20, "{reads} reads");
        let jokes = PathBuf::from(json["jokes"].as_str().unwrap());
        let mountpoint = jokes.parent().unwrap();
        assert!(
            mountpoint_in(&stderr).as_deref() == Some(mountpoint),
            "{stderr}"
        );
        assert!(
            !slowfs::is_mounted(mountpoint),
            "still mounted after the run"
        );
        assert!(!mountpoint.exists(), "the mount point was left behind");
        for act in json["acts"].as_array().unwrap() {
            assert_eq!(act["load"]["succeeded"], 10, "{act:#}");
            assert!(act["threads"]["tokio"].as_u64().unwrap() >= 1, "{act:#}");
        }
        // The text report names the disk too.
        let output = bench_client(&[
            "compare",
            "--slow-disk",
            "1ms",
            "--acts",
            "finale",
            "--conns",
            "2",
            "--rounds",
            "1",
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("disk: slowfs (FUSE, no page cache)"),
            "{stdout}"
        );
    }

    #[test]
    fn an_interrupted_compare_unmounts_the_slow_disk() {
        for (signal, code) in [
            (rustix::process::Signal::INT, 130),
            (rustix::process::Signal::TERM, 143),
        ] {
            // A run far longer than the test: it only ends by the signal.
            let mut child = KillOnDrop(
                Command::new(BENCH_CLIENT)
                    .args(["compare", "--slow-disk", "2ms", "--acts", "act1,act7"])
                    .args(["--conns", "20", "--rounds", "100000", "--jokes"])
                    .arg(jokes_file())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            let (lines, received) = mpsc::channel();
            let stderr = child.0.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = lines.send(line);
                }
            });
            let deadline = Instant::now() + LIMIT;
            let mut log = String::new();
            let mountpoint = loop {
                let line = received
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|_| panic!("no mount announced: {log}"));
                log.push_str(&line);
                log.push('\n');
                if let Some(path) = mountpoint_in(&line) {
                    break path;
                }
            };
            assert!(slowfs::is_mounted(&mountpoint), "{log}");
            // Let the servers start and a few rounds read through the mount.
            std::thread::sleep(Duration::from_secs(2));
            let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
            rustix::process::kill_process(pid, signal).unwrap();
            let status = loop {
                if let Some(status) = child.0.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "still running after {signal:?}");
                std::thread::sleep(Duration::from_millis(20));
            };
            while let Ok(line) = received.recv_timeout(Duration::from_secs(5)) {
                log.push_str(&line);
                log.push('\n');
            }
            assert_eq!(status.code(), Some(code), "{signal:?}: {log}");
            assert!(log.contains("interrupted by"), "{log}");
            assert!(log.contains("slowfs unmounted"), "{log}");
            assert!(
                !slowfs::is_mounted(&mountpoint),
                "still mounted after {signal:?}"
            );
            assert!(!mountpoint.exists(), "mount point left after {signal:?}");
        }
    }

    #[test]
    fn without_fuse_the_slow_disk_is_refused_with_exit_2() {
        // A private mount namespace in which /dev/fuse is an ordinary empty file: FUSE is
        // gone for this one process and nothing else on the machine.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("not-fuse");
        std::fs::write(&fake, b"").unwrap();
        let script = format!(
            "mount --bind {} /dev/fuse && exec {BENCH_CLIENT} compare --slow-disk 2ms --acts finale --conns 1 --rounds 1",
            fake.display(),
        );
        let output = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .expect("running unshare (util-linux)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "--slow-disk: FUSE is not available: /dev/fuse is not the FUSE character device"
            ),
            "{stderr}"
        );
    }
}
