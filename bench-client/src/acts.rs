//! Every act `compare` knows, and the hidden `serve` subcommand that runs one of them.
//!
//! bench-client depends on the act crates and runs each one from its *own* binary: `compare`
//! starts `bench-client serve act1-naive --addr 127.0.0.1:0 ...` as a child process, and that
//! child calls the act's harness exactly as the act's own `main` does. So one
//! `cargo run --release -p bench-client -- compare` builds and runs everything, each act in its
//! own process (its own runtime, its own threads, its own statistics), with no path to a
//! sibling binary to guess.

use std::ffi::OsString;
use std::process::ExitCode;

use joke_server::NoActArgs;

/// One act: its name, how the seed article's version of it compared, and how to run it.
#[derive(Debug)]
pub struct ActEntry {
    /// The crate and binary name, as in `cargo run -p act1-naive`.
    pub name: &'static str,
    /// Its place in the story, for tables ("Act I").
    pub title: &'static str,
    /// The seed article's 2018 measurement: its wall time divided by that of its cached
    /// version, as a range (`low == high` when the article gave one number).
    pub seed_ratio_2018: SeedRatio,
    /// Runs the act's server with this command line (program name first) until SIGTERM.
    serve: fn(Vec<OsString>) -> ExitCode,
}

/// A ratio from the seed article, or a range of them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeedRatio {
    pub low: f64,
    pub high: f64,
}

impl std::fmt::Display for SeedRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high {
            write!(f, "{:.1}×", self.low)
        } else {
            write!(f, "{:.1}–{:.1}×", self.low, self.high)
        }
    }
}

const fn exactly(ratio: f64) -> SeedRatio {
    SeedRatio {
        low: ratio,
        high: ratio,
    }
}

/// Acts II to VI all came out at about three times the cached version in 2018.
const ACTS_II_TO_VI: SeedRatio = SeedRatio {
    low: 3.0,
    high: 3.3,
};

/// The act every ratio is taken against.
pub const BASELINE: &str = "finale-cached";

/// Every act, in story order. Act III is missing on purpose: it is the version that does not
/// compile, and its chapter is about why.
pub static ACTS: &[ActEntry] = &[ActEntry {
    name: "act1-naive",
    title: "Act I",
    seed_ratio_2018: exactly(6.6),
    serve: serve_act1,
}];

fn serve_act1(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("act1-naive", args, |_: NoActArgs| act1_naive::Naive)
}

/// The act called `name`: its full name (`act1-naive`), or the part before the first dash
/// (`act1`, `finale`).
pub fn find(name: &str) -> Option<&'static ActEntry> {
    ACTS.iter()
        .find(|act| act.name == name || act.name.split('-').next() == Some(name))
}

/// Parses `--acts`-style names for clap, listing the known ones when a name is unknown.
pub fn parse_act(name: &str) -> Result<&'static ActEntry, String> {
    find(name).ok_or_else(|| {
        let known: Vec<&str> = ACTS.iter().map(|act| act.name).collect();
        format!("no act named {name:?}; the acts are {}", known.join(", "))
    })
}

impl ActEntry {
    /// Runs this act's server with `args` (its options, without the program name), in this
    /// process, until SIGINT or SIGTERM. This is all the hidden `serve` subcommand does.
    pub fn serve(&self, args: Vec<OsString>) -> ExitCode {
        let command_line = std::iter::once(OsString::from(self.name)).chain(args);
        (self.serve)(command_line.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_are_found_by_full_or_short_name() {
        assert_eq!(find("act1-naive").unwrap().name, "act1-naive");
        assert_eq!(find("act1").unwrap().name, "act1-naive");
        assert!(find("act3").is_none());
        assert!(find("").is_none());
        assert!(parse_act("nope").unwrap_err().contains("act1-naive"));
    }

    #[test]
    fn names_are_unique_and_short_names_unambiguous() {
        for (i, a) in ACTS.iter().enumerate() {
            for b in &ACTS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.name.split('-').next(), b.name.split('-').next());
            }
        }
    }

    #[test]
    fn seed_ratios_print_as_the_article_gave_them() {
        assert_eq!(exactly(6.6).to_string(), "6.6×");
        assert_eq!(ACTS_II_TO_VI.to_string(), "3.0–3.3×");
    }
}
