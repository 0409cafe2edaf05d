//! The binary's refusals: each bad argument exits with status 2 and one line naming it. None of
//! these needs FUSE (the paths are checked first), so they run in every `cargo test`.

use std::process::{Command, Output};

fn slowfs(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slowfs"))
        .args(args)
        .output()
        .expect("running slowfs")
}

fn stderr_line(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.trim_end().to_string()
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::ffi::OsStr;

    fn refused(args: &[&OsStr], expected: &[&str]) {
        let output = slowfs(args);
        let line = stderr_line(&output);
        assert_eq!(output.status.code(), Some(2), "exit status; stderr: {line}");
        for part in expected {
            assert!(line.contains(part), "{part:?} missing from: {line}");
        }
    }

    #[test]
    fn missing_backing_dir_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder");
        let output = slowfs(&[
            dir.path().as_os_str(),
            OsStr::new("--backing"),
            missing.as_os_str(),
            OsStr::new("--delay"),
            OsStr::new("2ms"),
        ]);
        let line = stderr_line(&output);
        assert_eq!(output.status.code(), Some(2), "stderr: {line}");
        assert_eq!(
            line,
            format!("slowfs: --backing {}: does not exist", missing.display())
        );
    }

    #[test]
    fn backing_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jokes.txt");
        std::fs::write(&file, "a joke\n").unwrap();
        refused(
            &[
                dir.path().as_os_str(),
                OsStr::new("--backing"),
                file.as_os_str(),
                OsStr::new("--delay"),
                OsStr::new("2ms"),
            ],
            &["--backing", "not a directory"],
        );
    }

    #[test]
    fn mountpoint_that_is_not_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let output = slowfs(&[
            file.as_os_str(),
            OsStr::new("--backing"),
            dir.path().as_os_str(),
            OsStr::new("--delay"),
            OsStr::new("2ms"),
        ]);
        let line = stderr_line(&output);
        assert_eq!(output.status.code(), Some(2), "stderr: {line}");
        assert_eq!(
            line,
            format!("slowfs: MOUNTPOINT {}: not a directory", file.display())
        );
    }

    #[test]
    fn missing_mountpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        refused(
            &[
                missing.as_os_str(),
                OsStr::new("--backing"),
                dir.path().as_os_str(),
                OsStr::new("--delay"),
                OsStr::new("2ms"),
            ],
            &["MOUNTPOINT", "does not exist"],
        );
    }

    #[test]
    fn bad_delay_and_queue_depth_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().as_os_str();
        refused(
            &[
                d,
                OsStr::new("--backing"),
                d,
                OsStr::new("--delay"),
                OsStr::new("fast"),
            ],
            &["--delay"],
        );
        refused(
            &[
                d,
                OsStr::new("--backing"),
                d,
                OsStr::new("--delay"),
                OsStr::new("2ms"),
                OsStr::new("--queue-depth"),
                OsStr::new("0"),
            ],
            &["--queue-depth", "between 1 and 1024"],
        );
        refused(
            &[d, OsStr::new("--delay"), OsStr::new("2ms")],
            &["--backing"],
        );
    }
}

#[cfg(not(target_os = "linux"))]
#[test]
fn other_systems_are_told_it_needs_linux() {
    let dir = std::env::temp_dir();
    let d = dir.as_os_str();
    let output = slowfs(&[
        d,
        std::ffi::OsStr::new("--backing"),
        d,
        std::ffi::OsStr::new("--delay"),
        std::ffi::OsStr::new("2ms"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_line(&output).contains("needs Linux"));
}
