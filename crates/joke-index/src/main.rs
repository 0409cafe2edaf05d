//! `joke-index`: look after a jokes file from the command line.
//!
//! ```text
//! joke-index stats jokes.txt [--json]   # format, joke count, sizes in served form
//! joke-index get jokes.txt 7            # joke 7 (0-based), exactly as a server sends it
//! joke-index dump jokes.txt             # every joke as one JSON string per line
//! joke-index check jokes.txt            # lint: look-alike separators, long jokes, empty records
//! joke-index dat fortunes               # fortunes.dat, byte-identical to `strfile fortunes`
//! ```
//!
//! This file only parses the arguments; everything else is in [`cli`], where tests can reach it.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let code = cli::run_and_report(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
