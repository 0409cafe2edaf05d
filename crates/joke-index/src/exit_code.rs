//! The exit codes of every program in this workspace: the `joke-index` binary, each act's
//! server and `bench-client`. They live here, in the one library all of them depend on, so a
//! script that runs any of them can rely on the same three numbers.
//!
//! They are `u8` because that is what [`std::process::ExitCode::from`] takes.

/// All went well.
pub const SUCCESS: u8 = 0;

/// Something went wrong that is not the input's fault: a write failed, a server could not keep
/// running, a run's checks failed. (`joke-index check` also exits with it when it found
/// something to report.)
pub const FAILURE: u8 = 1;

/// Bad usage or bad input at start-up: an unknown option, a missing or invalid jokes file, an
/// address that cannot be bound. The message on stderr names the file, line or argument.
pub const BAD_INPUT: u8 = 2;
