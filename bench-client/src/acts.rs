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
///
/// Act II appears twice, once per `--mode`: `spawn_blocking` is today's answer, and
/// `block_in_place` is the heir of the `tokio_threadpool::blocking` that the seed article's
/// Act II used.
pub static ACTS: &[ActEntry] = &[
    ActEntry {
        name: "act1-naive",
        title: "Act I",
        seed_ratio_2018: exactly(6.6),
        serve: serve_act1,
    },
    ActEntry {
        name: "act2-spawn-blocking",
        title: "Act II",
        seed_ratio_2018: ACTS_II_TO_VI,
        serve: serve_act2,
    },
    ActEntry {
        name: "act2-block-in-place",
        title: "Act II (block_in_place)",
        seed_ratio_2018: ACTS_II_TO_VI,
        serve: serve_act2_block_in_place,
    },
    ActEntry {
        name: "act4-custom-future",
        title: "Act IV",
        seed_ratio_2018: ACTS_II_TO_VI,
        serve: serve_act4,
    },
    ActEntry {
        name: "act5-channel",
        title: "Act V",
        seed_ratio_2018: ACTS_II_TO_VI,
        serve: serve_act5,
    },
    ActEntry {
        name: "act6-framed",
        title: "Act VI",
        seed_ratio_2018: ACTS_II_TO_VI,
        serve: serve_act6,
    },
    ActEntry {
        name: "act7-tokio-fs",
        title: "Act VII",
        seed_ratio_2018: exactly(3.8),
        serve: serve_act7,
    },
    ActEntry {
        name: "finale-cached",
        title: "Finale",
        seed_ratio_2018: exactly(1.0),
        serve: serve_finale,
    },
];
fn serve_act1(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("act1-naive", args, |_: NoActArgs| act1_naive::Naive)
}

fn serve_act2(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from(
        "act2-spawn-blocking",
        args,
        act2_spawn_blocking::OffTheWorkers::new,
    )
}

fn serve_act2_block_in_place(mut args: Vec<OsString>) -> ExitCode {
    args.extend(["--mode".into(), "block-in-place".into()]);
    serve_act2(args)
}

fn serve_act4(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("act4-custom-future", args, |_: NoActArgs| {
        act4_custom_future::HandWritten
    })
}

fn serve_act5(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("act5-channel", args, |_: NoActArgs| act5_channel::Channel)
}

fn serve_act6(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("act6-framed", args, |_: NoActArgs| act6_framed::Framed)
}

fn serve_act7(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("act7-tokio-fs", args, |_: NoActArgs| act7_tokio_fs::TokioFs)
}

fn serve_finale(args: Vec<OsString>) -> ExitCode {
    joke_server::run_act_from("finale-cached", args, |_: NoActArgs| {
        finale_cached::Cached::default()
    })
}

/// The acts a name selects: the act with that full name (`act1-naive`), or every act whose
/// name starts with it and a dash (`act1`; `act2` selects both of Act II's modes; `finale`).
pub fn select(name: &str) -> Vec<&'static ActEntry> {
    if let Some(act) = ACTS.iter().find(|act| act.name == name) {
        return vec![act];
    }
    ACTS.iter()
        .filter(|act| {
            !name.is_empty()
                && act
                    .name
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
        .collect()
}

/// The acts one `--acts` item selects, as clap parses it.
#[derive(Debug, Clone)]
pub struct Selection(pub Vec<&'static ActEntry>);

/// Parses one `--acts` item for clap, listing the known acts when nothing matches.
pub fn parse_selection(name: &str) -> Result<Selection, String> {
    let acts = select(name);
    if acts.is_empty() {
        let known: Vec<&str> = ACTS.iter().map(|act| act.name).collect();
        return Err(format!(
            "no act named {name:?}; the acts are {}",
            known.join(", ")
        ));
    }
    Ok(Selection(acts))
}

/// Parses the act of `serve`, which must be named in full.
pub fn parse_act(name: &str) -> Result<&'static ActEntry, String> {
    ACTS.iter()
        .find(|act| act.name == name)
        .ok_or_else(|| format!("no act named {name:?}"))
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
    fn acts_are_selected_by_full_name_or_prefix() {
        let names = |selector| select(selector).iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(names("act1-naive"), ["act1-naive"]);
        assert_eq!(names("act1"), ["act1-naive"]);
        assert_eq!(
            names("act2"),
            ["act2-spawn-blocking", "act2-block-in-place"]
        );
        assert_eq!(names("act2-block-in-place"), ["act2-block-in-place"]);
        assert!(names("act3").is_empty());
        assert!(names("act").is_empty());
        assert!(names("").is_empty());
        assert!(parse_selection("nope").unwrap_err().contains("act1-naive"));
        assert!(parse_act("act1").is_err());
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in ACTS.iter().enumerate() {
            for b in &ACTS[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
    }

    #[test]
    fn seed_ratios_print_as_the_article_gave_them() {
        assert_eq!(exactly(6.6).to_string(), "6.6×");
        assert_eq!(ACTS_II_TO_VI.to_string(), "3.0–3.3×");
    }
}
