//! In a build without `--cfg tokio_unstable`, the act refuses to run and says how to build it.
#![cfg(not(tokio_unstable))]

use std::process::Command;

#[test]
fn says_how_to_build_it_and_exits_with_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_act8-io-uring"))
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .expect("running act8-io-uring");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(act8_io_uring::BUILD_COMMAND), "{stderr}");
    assert!(output.stdout.is_empty(), "{output:?}");
}
