//! `run-act` itself: it refuses what it cannot run with exit code 2 and a message naming the
//! problem, and lists the acts.

use joke_testkit::run_to_exit;

use crate::common::{RUN_ACT, as_os_strs, os};

#[test]
fn without_an_act_it_prints_its_usage_and_exits_2() {
    let exited = run_to_exit(RUN_ACT, &[]);
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("usage: run-act ACT"),
        "{}",
        exited.stderr
    );
}

#[test]
fn an_unknown_act_is_named_with_the_known_ones_and_exits_2() {
    let args = os(&["act3-borrow-checker", "--addr", "127.0.0.1:0"]);
    let exited = run_to_exit(RUN_ACT, &as_os_strs(&args));
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("\"act3-borrow-checker\""),
        "{}",
        exited.stderr
    );
    assert!(exited.stderr.contains("act1-naive"), "{}", exited.stderr);
}

#[test]
fn list_prints_every_act_with_its_chapter() {
    let args = os(&["--list"]);
    let exited = run_to_exit(RUN_ACT, &as_os_strs(&args));
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    let lines: Vec<&str> = exited.stdout.lines().collect();
    assert_eq!(lines.len(), acts::ACTS.len(), "{}", exited.stdout);
    for (line, act) in lines.iter().zip(acts::ACTS) {
        assert!(line.starts_with(act.name), "{line}");
        assert!(line.ends_with(act.chapter), "{line}");
    }
}
