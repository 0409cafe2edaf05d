//! `--mode block-in-place`: the same conformance where it differs from the default mode.

use act2_spawn_blocking::{Mode, Options, SpawnBlocking};
use joke_testkit::conformance::{self, IoPlacement};
use joke_testkit::{JokesFile, RunningBinary, client_runtime, fetch_joke};

fn block_in_place() -> SpawnBlocking {
    SpawnBlocking::new(Options {
        mode: Mode::BlockInPlace,
    })
}

/// The poll that calls `block_in_place` lasts the whole read, so the slow-poll count shows one
/// per connection, as in Act I: the count measures how long a task held its thread, and
/// `block_in_place` does hold it (having first handed the worker's other tasks to another
/// thread, which the count cannot see).
#[test]
fn each_connection_has_one_long_poll() {
    conformance::io_delay_is_spent_where_the_act_does_its_io(
        block_in_place(),
        IoPlacement::OnTheWorker,
    );
}

#[test]
fn burst_of_2000_connections_all_get_whole_jokes() {
    conformance::burst_of_connections_all_get_whole_jokes(block_in_place());
}

#[test]
fn the_binary_takes_the_mode_option() {
    let file = JokesFile::fixture();
    let jokes = file.served_jokes();
    let args: Vec<std::ffi::OsString> = vec![
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--mode".into(),
        "block-in-place".into(),
        "--jokes".into(),
        file.path().into(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
    let server = RunningBinary::start(env!("CARGO_BIN_EXE_act2-spawn-blocking"), &args);
    let received = client_runtime().block_on(fetch_joke(server.addr()));
    let exited = server.terminate();
    let received = String::from_utf8(received.expect("a joke")).expect("UTF-8");
    assert!(jokes.contains(&received), "{received:?}");
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
}
