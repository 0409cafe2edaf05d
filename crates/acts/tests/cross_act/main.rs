//! What every act must do, written once over the list of acts (`acts::ACTS`) and run against
//! each: one test binary, with one `#[test]` per act and check, named module by module
//! (`conformance::act6_framed::serves_exactly_one_joke_of_the_file`), so that a failure names
//! both. Filter with the act, the check, or both:
//!
//! ```text
//! cargo test -p acts --test cross_act -- act2_block_in_place
//! cargo test -p acts --test cross_act -- sighup
//! ```
//!
//! - `conformance`: the act served in-process: whole jokes, chatty and rude clients, a burst,
//!   `--io-delay` where the act does its I/O; and the real process refusing bad start-ups;
//! - `signals`: the act's real process: SIGTERM alone and in the middle of a burst, SIGHUP,
//!   running out of file descriptors;
//! - `same_bytes`: every act sends the very same bytes for a joke, and reports a read error
//!   before writing any;
//! - `live_edits`: the jokes file edited under the clients' feet never tears a joke;
//! - `hostile_clients`: idle crowds, clients that never read, the connection limit;
//! - `timeline`: `--timeline` records where each act's reads ran (a worker's task poll, the
//!   blocking pool, nowhere), every connection's events, one lane per thread;
//! - `udp`: RFC 865 over UDP;
//! - `directory`: `--jokes DIR`, a directory of jokes files in fortune's layout;
//! - `dual_stack`: `--addr [::]:PORT` serving IPv4 and IPv6 clients;
//! - `run_act`: the `run-act` binary refusing what it cannot run.
//!
//! "The act's real process" is this crate's `run-act` binary running the act by name: the same
//! `joke_server::run_act_from` call as the act's own `main`, in a process of its own (its own
//! runtime, its own signal handlers, its own statistics on stdout).

mod common;
mod conformance;
mod directory;
mod dual_stack;
mod faults;
mod hostile_clients;
mod live_edits;
mod net_limits;
mod replicas;
mod run_act;
mod same_bytes;
mod signals;
mod timeline;
mod udp;

/// The acts this build does not have (Act VIII without `--cfg tokio_unstable`) generate no
/// tests above; instead each is checked to refuse to run, in one line, with exit code 2, so
/// none is silently skipped.
#[test]
fn every_act_not_in_this_build_refuses_with_2_and_says_what_it_needs() {
    for entry in acts::ACTS.iter().filter(|entry| !entry.is_available()) {
        let output = std::process::Command::new(common::RUN_ACT)
            .args([entry.name, "--addr", "127.0.0.1:0"])
            .output()
            .expect("running run-act");
        assert_eq!(output.status.code(), Some(2), "{}: {output:?}", entry.name);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", entry.name);
        assert!(
            stderr.contains("not available in this build: it needs a build with --cfg"),
            "{}: {stderr}",
            entry.name
        );
    }
    // In the ordinary build, Act VIII is one of them.
    let act8 = acts::entry("act8-io-uring");
    assert_eq!(act8.is_available(), cfg!(tokio_unstable));
}
