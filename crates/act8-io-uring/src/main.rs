//! `act8-io-uring`: see the library's documentation for the lesson.

use std::process::ExitCode;

#[cfg(tokio_unstable)]
fn main() -> ExitCode {
    joke_server::run_act(env!("CARGO_PKG_NAME"), act8_io_uring::IoUring::default())
}

/// Without `--cfg tokio_unstable` Tokio has no io_uring, and this act would silently be Act
/// VII: refuse, and say how to build it.
#[cfg(not(tokio_unstable))]
fn main() -> ExitCode {
    eprintln!("{}", act8_io_uring::not_in_this_build());
    ExitCode::from(joke_index::exit_code::BAD_INPUT)
}
