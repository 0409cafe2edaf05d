//! Test helpers every act shares, written once.
//!
//! - [`fixture`]: the tricky jokes file every act is checked against, and temporary files.
//! - [`server`]: an act served in-process on `127.0.0.1:0`, on a runtime of its own, stopped
//!   on demand, returning its statistics.
//! - [`client`]: clients with timeouts (polite, talkative, rude, and crowds), and an act's
//!   `serve_joke` run over a real loopback socket pair.
//! - [`binary`]: an act's real binary as a child process: started on port 0, stopped with
//!   SIGTERM, or run to its exit when it must refuse to start.
//! - [`reliability`]: shutdown mid-burst, running out of file descriptors, SIGHUP, against
//!   the real binary.
//! - [`conformance`]: the tests every act runs, and [`act_conformance_tests!`] to run them all
//!   from an act's `tests/conformance.rs` in one line.
//!
//! Every network test talks to loopback only, on a port the kernel picks, with a bounded number
//! of connections and a timeout on every step, so a broken act fails a test instead of hanging
//! it. Nothing waits on the wall clock: tests wait for real signals (a `listening on` line, a
//! joke read to its end, a process exit) and assert on what the server counted.

pub mod binary;
pub mod client;
pub mod conformance;
pub mod fixture;
pub mod reliability;
pub mod server;

pub use binary::{Exited, RunningBinary, run_to_exit};
pub use client::{client_runtime, fetch_joke, serve_over_socket_pair};
pub use conformance::{BadStartUp, IoPlacement};
pub use fixture::{JokesFile, fixture_text, short_jokes_text};
pub use server::ServerUnderTest;

/// Expands to the conformance tests of one act: one `#[test]` each, so a failure names what
/// broke.
///
/// ```ignore
/// // crates/act1-naive/tests/conformance.rs
/// joke_testkit::act_conformance_tests! {
///     act: act1_naive::Naive,
///     binary: env!("CARGO_BIN_EXE_act1-naive"),
///     io: OnTheWorker,
/// }
/// ```
///
/// `act` is evaluated once per test. `io` says where the act does its per-joke file I/O: one of
/// the [`IoPlacement`] variants.
#[macro_export]
macro_rules! act_conformance_tests {
    (act: $act:expr, binary: $binary:expr, io: $io:ident $(,)?) => {
        #[test]
        fn serves_exactly_one_joke_of_the_file() {
            $crate::conformance::serves_exactly_one_joke_of_the_file($act);
        }

        #[test]
        fn client_that_sends_first_gets_the_whole_joke() {
            $crate::conformance::client_that_sends_first_gets_the_whole_joke($act);
        }

        #[test]
        fn burst_of_2000_connections_all_get_whole_jokes() {
            $crate::conformance::burst_of_connections_all_get_whole_jokes($act);
        }

        #[test]
        fn clients_that_reset_do_not_disturb_the_others() {
            $crate::conformance::clients_that_reset_do_not_disturb_the_others($act);
        }

        #[test]
        fn io_delay_is_spent_where_the_act_does_its_io() {
            $crate::conformance::io_delay_is_spent_where_the_act_does_its_io(
                $act,
                $crate::IoPlacement::$io,
            );
        }

        #[test]
        fn real_binary_serves_then_exits_cleanly_on_sigterm() {
            $crate::conformance::real_binary_serves_then_exits_cleanly_on_sigterm($binary);
        }

        #[test]
        fn shutdown_under_load_never_cuts_a_joke() {
            $crate::reliability::shutdown_under_load_never_cuts_a_joke($binary);
        }

        #[test]
        fn running_out_of_file_descriptors_backs_off_and_recovers() {
            $crate::reliability::running_out_of_file_descriptors_backs_off_and_recovers($binary);
        }

        #[test]
        fn sighup_reloads_the_jokes_file() {
            $crate::reliability::sighup_reloads_the_jokes_file($binary);
        }

        $crate::act_conformance_tests!(@bad $binary;
            bad_start_up_missing_file_exits_2 => MissingFile,
            bad_start_up_directory_exits_2 => Directory,
            bad_start_up_empty_file_exits_2 => EmptyFile,
            bad_start_up_invalid_utf8_exits_2 => InvalidUtf8,
            bad_start_up_bad_addr_exits_2 => BadAddr,
            bad_start_up_port_in_use_exits_2 => PortInUse,
            bad_start_up_zero_workers_exits_2 => ZeroWorkers,
            bad_start_up_unknown_flag_exits_2 => UnknownFlag,
            bad_start_up_only_separators_exits_2 => OnlySeparators,
            bad_start_up_line_too_long_exits_2 => LineTooLong,
        );
    };
    (@bad $binary:expr; $($name:ident => $case:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::bad_start_up_exits_2($binary, $crate::BadStartUp::$case);
            }
        )*
    };
}
