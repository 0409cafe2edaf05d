//! What `--timeline` costs when it is off: every hook the recorder puts on the hot path (each
//! poll of a connection task, each blocking read, each `--io-delay` sleep, each joke picked)
//! first asks whether a recorder runs, and does nothing more when none does. This times that
//! question, in a loop, against an empty loop.
//!
//! ```text
//! cargo run --release -p joke-server --example timeline_off_cost
//! ```

use std::hint::black_box;
use std::time::Instant;

const CALLS: u32 = 200_000_000;

fn main() {
    let started = Instant::now();
    let mut yes = 0u32;
    for _ in 0..CALLS {
        if black_box(joke_server::timeline::is_recording()) {
            yes += 1;
        }
    }
    let checked = started.elapsed();

    let started = Instant::now();
    for _ in 0..CALLS {
        if black_box(false) {
            yes += 1;
        }
    }
    let empty = started.elapsed();

    let per_call = |total: std::time::Duration| total.as_secs_f64() * 1e9 / f64::from(CALLS);
    println!(
        "{CALLS} checks with no recorder: {:.2} ns each; the same loop without the check: \
         {:.2} ns ({yes} recorders seen)",
        per_call(checked),
        per_call(empty)
    );
}
