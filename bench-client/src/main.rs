//! `bench-client`: see the library's documentation (and `bench-client --help`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    bench_client::run(bench_client::Opts::parse())
}
