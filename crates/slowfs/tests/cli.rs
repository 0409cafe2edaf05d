//! The binary's refusals: each bad argument exits with status 2 and one line naming it. None of
//! these needs FUSE (the paths are checked first), so they run in every `cargo test`.

use std::path::Path;
use std::process::Command;

/// Runs `slowfs MOUNTPOINT --backing BACKING` plus `extra`; returns the exit status and stderr.
fn slowfs(mountpoint: &Path, backing: Option<&Path>, extra: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slowfs"));
    command.arg(mountpoint);
    if let Some(backing) = backing {
        command.arg("--backing").arg(backing);
    }
    let output = command.args(extra).output().expect("running slowfs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), stderr.trim_end().to_string())
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    const DELAY: &[&str] = &["--delay", "2ms"];

    /// Exit status 2 and exactly this one line.
    fn refused_with(mountpoint: &Path, backing: &Path, line: String) {
        assert_eq!(slowfs(mountpoint, Some(backing), DELAY), (Some(2), line));
    }

    /// Exit status 2 and a message containing each of `parts` (clap's wording is its own).
    fn refused_naming(mountpoint: &Path, backing: Option<&Path>, extra: &[&str], parts: &[&str]) {
        let (status, stderr) = slowfs(mountpoint, backing, extra);
        assert_eq!(status, Some(2), "exit status; stderr: {stderr}");
        for part in parts {
            assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
        }
    }

    #[test]
    fn missing_backing_dir_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder");
        let line = format!("slowfs: --backing {}: does not exist", missing.display());
        refused_with(dir.path(), &missing, line);
    }

    #[test]
    fn backing_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jokes.txt");
        std::fs::write(&file, "a joke\n").unwrap();
        let line = format!("slowfs: --backing {}: not a directory", file.display());
        refused_with(dir.path(), &file, line);
    }

    #[test]
    fn mountpoint_that_is_not_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let line = format!("slowfs: MOUNTPOINT {}: not a directory", file.display());
        refused_with(&file, dir.path(), line);
    }

    #[test]
    fn missing_mountpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let line = format!("slowfs: MOUNTPOINT {}: does not exist", missing.display());
        refused_with(&missing, dir.path(), line);
    }

    #[test]
    fn bad_delay_and_queue_depth_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        refused_naming(d, Some(d), &["--delay", "fast"], &["--delay"]);
        let zero_depth = ["--delay", "2ms", "--queue-depth", "0"];
        refused_naming(
            d,
            Some(d),
            &zero_depth,
            &["--queue-depth", "between 1 and 1024"],
        );
        refused_naming(d, None, DELAY, &["--backing"]);
    }
}

#[cfg(not(target_os = "linux"))]
#[test]
fn other_systems_are_told_it_needs_linux() {
    let dir = std::env::temp_dir();
    let (status, stderr) = slowfs(&dir, Some(&dir), &["--delay", "2ms"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("needs Linux"), "{stderr}");
}
