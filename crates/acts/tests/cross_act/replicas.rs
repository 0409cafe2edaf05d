//! More than one process on one port: `--reuse-port`, and a rolling restart under load (start
//! the new process, then SIGTERM the old one). A harness property, so one act stands for all.

use std::sync::Arc;
use std::time::Duration;

use joke_testkit::client::client_runtime;
use joke_testkit::load::{Load, Outcomes};
use joke_testkit::{JokesFile, RunningBinary};

use crate::common::{alone, os, server_args, start_binary, statistics};

/// Whether Linux migrates a closing listener's accept queue to a sibling SO_REUSEPORT socket
/// (`net.ipv4.tcp_migrate_req`, off by default).
pub fn kernel_migrates_queues() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
        .is_ok_and(|value| value.trim() == "1")
}

/// A rolling restart under load with `--reuse-port`: the new process starts on the old one's
/// port while it still serves, then the old one gets SIGTERM. Nobody is ever refused (a
/// listener is always there), no joke is torn, and the two servers' counts add up to what the
/// clients received. Connections the kernel queued on the old listener between its last accept
/// and its close are reset unless the kernel migrates them (`tcp_migrate_req`): counted and
/// printed, and asserted to be zero only where the kernel migrates.
#[test]
fn a_rolling_restart_with_reuse_port_refuses_nobody() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let jokes = file.served_joke_set();
    let entry = acts::entry("act1-naive");
    let mut args = server_args(&file);
    args.extend(os(&["--reuse-port"]));
    let old = start_binary(entry, &args);
    let addr = old.addr();

    let runtime = client_runtime();
    let load = Load::start(&runtime, addr, Arc::clone(&jokes), 8);
    std::thread::sleep(Duration::from_millis(300));
    let mut new_args = os(&["--addr", &addr.to_string(), "--reuse-port", "--jokes"]);
    new_args.push(file.path().into());
    let new: RunningBinary = start_binary(entry, &new_args);
    assert_eq!(new.addr(), addr, "the new process shares the port");
    std::thread::sleep(Duration::from_millis(300));
    let old_exited = old.terminate();
    std::thread::sleep(Duration::from_millis(300));
    let outcomes = Outcomes::of(&load.stop(&runtime));
    let new_exited = new.terminate();

    eprintln!("rolling restart with --reuse-port: {outcomes:?}");
    assert_eq!(old_exited.code, Some(0), "{}", old_exited.stderr);
    assert_eq!(new_exited.code, Some(0), "{}", new_exited.stderr);
    assert_eq!(outcomes.refused, 0, "{outcomes:?}");
    assert_eq!(
        (outcomes.empty, outcomes.torn, outcomes.other),
        (0, 0, 0),
        "{outcomes:?}"
    );
    let (old_stats, new_stats) = (
        statistics(&old_exited.stdout),
        statistics(&new_exited.stdout),
    );
    assert!(old_stats.served > 0 && new_stats.served > 0, "both served");
    assert_eq!(
        old_stats.served + new_stats.served,
        outcomes.whole,
        "the servers' counts and the clients' agree"
    );
    if kernel_migrates_queues() {
        assert_eq!(outcomes.reset, 0, "tcp_migrate_req is on: {outcomes:?}");
    }
}

/// Without `--reuse-port` a second process cannot bind the port while the first listens: a
/// restart has to stop the old one first, and clients are refused meanwhile.
#[test]
fn without_reuse_port_a_second_process_cannot_share_the_port() {
    let _alone = alone();
    let file = JokesFile::fixture();
    let entry = acts::entry("act1-naive");
    let old = start_binary(entry, &server_args(&file));
    let addr = old.addr();
    let mut args = os(&["--addr", &addr.to_string(), "--reuse-port", "--jokes"]);
    args.push(file.path().into());
    let second = crate::common::run_binary_to_exit(entry, &args);
    assert_eq!(second.code, Some(2), "{}", second.stderr);
    assert!(second.stderr.contains("cannot listen"), "{}", second.stderr);
    old.terminate();
}
