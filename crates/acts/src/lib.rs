//! # acts: the one list of every act
//!
//! Every crate that needs to know *all* the acts reads this one: `bench-client compare` and
//! `soak` (which act to start, under which title, beside which 2018 ratio), the cross-act tests
//! in `tests/` (one `#[test]` per act per check), and the book's check that every act has a
//! chapter. Nothing else lists the acts, so adding one is: its crate, its line in
//! [`__every_act!`], and its dependency line in this crate's `Cargo.toml` (and the workspace's).
//!
//! Two ways in:
//! - [`ACTS`], a table of [`ActEntry`]: names, titles, chapters, and a function that runs the
//!   act's server from a command line exactly as the act's own `main` does;
//! - [`for_every_act!`], for code that needs each act's *value*, with its own type (to serve
//!   it in-process, or to generate one test per act).
//!
//! The `run-act` binary of this crate runs any act by name (`run-act act6-framed --addr ...`):
//! the cross-act tests start it to test each act as its own process, with its own runtime and
//! its own signal handlers.

use std::ffi::OsString;
use std::process::ExitCode;

// Used by the table that `__every_act!` expands to below.
#[allow(unused_imports)]
use joke_server::NoActArgs;

/// One act, or one mode of an act, as the rest of the workspace sees it.
#[derive(Debug)]
pub struct ActEntry {
    /// The name that selects it (`--acts`, `run-act`, `bench-client serve`), unique. It is the
    /// crate's name, or the crate's name changed to name the mode (`act2-block-in-place`).
    pub name: &'static str,
    /// The crate and binary that hold it, as in `cargo run -p act2-spawn-blocking`.
    pub binary: &'static str,
    /// Arguments that select this entry's mode, added after the caller's own
    /// (`--mode block-in-place`); empty for most acts.
    pub args: &'static [&'static str],
    /// A short name for narrow places such as a column header (`act1`, `finale`).
    pub short: &'static str,
    /// Its place in the story, for tables (`Act I`).
    pub title: &'static str,
    /// Its chapter in the book, relative to `docs/src/`.
    pub chapter: &'static str,
    /// Where it does the file I/O of each joke, which is what the `--io-delay` tests and the
    /// live-edit tests expect of it.
    pub file_io: FileIo,
    /// Whether it sends each line as soon as it is read (Act V). Such an act learns that the
    /// file changed under a joke only after writing part of it, and then resets the
    /// connection: a client gets a whole joke, nothing, or a reset, never a torn joke that
    /// ends cleanly. The other acts check the whole joke before writing a byte.
    pub streams: bool,
    /// The seed article's 2018 measurement: its wall time divided by that of its cached
    /// version, as a range (`low == high` when the article gave one number).
    pub seed_ratio_2018: SeedRatio,
    /// Whether this build can run it, and how.
    pub build: Build,
}

/// Where an act does the file I/O of each joke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileIo {
    /// On a runtime worker thread, inside the connection task's poll: Act I, and Act II's
    /// `block_in_place` (which hands the worker's other tasks away first, but still holds the
    /// task's poll for the whole read).
    OnTheWorker,
    /// Off the worker threads (the blocking pool, or Tokio's own `fs`): the task's polls
    /// stay short.
    OffTheWorkers,
    /// Nowhere: every joke is in memory (the finale).
    None,
}

/// Whether this build has an act.
#[derive(Debug, Clone, Copy)]
pub enum Build {
    /// Runs the act's server with this command line (program name first) until SIGTERM.
    Available(fn(Vec<OsString>) -> ExitCode),
    /// The act needs a build this is not: `needs` says which (`--cfg tokio_unstable`).
    NotInThisBuild { needs: &'static str },
}

/// A ratio from the seed article, or a range of them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeedRatio {
    pub low: f64,
    pub high: f64,
}

impl std::fmt::Display for SeedRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low.is_nan() {
            // An act the 2018 article did not have: `-`, as other missing cells.
            f.write_str("-")
        } else if self.low == self.high {
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

/// An act the 2018 article did not have (Act VIII): shown as `-`, `null` in JSON.
const NONE_IN_2018: SeedRatio = SeedRatio {
    low: f64::NAN,
    high: f64::NAN,
};

/// Acts II to VI all came out at about three times the cached version in 2018.
const ACTS_II_TO_VI: SeedRatio = SeedRatio {
    low: 3.0,
    high: 3.3,
};

/// The act every ratio is taken against.
pub const BASELINE: &str = "finale-cached";

// ANCHOR: list
/// THE list of acts, in story order; everything else is generated from it.
///
/// Each entry is `module_name { fields }`: the module name is the entry's name as a Rust
/// identifier (the cross-act tests are named by it: `conformance::act1_naive::...`), and the
/// fields are those of [`ActEntry`], plus
/// - `act`: what builds the act's value from its own parsed options, as the act's `main` hands
///   it to `joke_server::run_act_with`;
/// - `cfg`: the build the act needs, as a `cfg` predicate (`all()` for any build). An act that
///   needs `--cfg tokio_unstable` says `cfg: tokio_unstable`: other builds still list it, as
///   [`Build::NotInThisBuild`] (`--acts` and `run-act` refuse it with a message naming the
///   build it needs), and generate no tests for it. The workspace's `unexpected_cfgs` lint
///   must then know that cfg (`check-cfg = ['cfg(tokio_unstable)']` in the root `Cargo.toml`).
///
/// Act III is missing on purpose: it is the version that does not compile, and its chapter is
/// about why. Act II appears twice, once per `--mode`: `spawn_blocking` is today's answer, and
/// `block_in_place` is the heir of the `tokio_threadpool::blocking` that the seed article's Act
/// II used.
#[doc(hidden)]
#[macro_export]
macro_rules! __every_act {
    ($($then:tt)*) => {
        $crate::__expand_acts! { ($($then)*)
            act1_naive { name: "act1-naive", binary: "act1-naive", args: [], short: "act1", title: "Act I", chapter: "act1-naive.md", file_io: OnTheWorker, streams: false, seed_ratio_2018: exactly(6.6), cfg: all(), act: |_: NoActArgs| act1_naive::Naive }
            act2_spawn_blocking { name: "act2-spawn-blocking", binary: "act2-spawn-blocking", args: [], short: "act2", title: "Act II", chapter: "act2-spawn-blocking.md", file_io: OffTheWorkers, streams: false, seed_ratio_2018: ACTS_II_TO_VI, cfg: all(), act: act2_spawn_blocking::SpawnBlocking::new }
            act2_block_in_place { name: "act2-block-in-place", binary: "act2-spawn-blocking", args: ["--mode", "block-in-place"], short: "act2-bip", title: "Act II (block_in_place)", chapter: "act2-spawn-blocking.md", file_io: OnTheWorker, streams: false, seed_ratio_2018: ACTS_II_TO_VI, cfg: all(), act: act2_spawn_blocking::SpawnBlocking::new }
            act4_custom_future { name: "act4-custom-future", binary: "act4-custom-future", args: [], short: "act4", title: "Act IV", chapter: "act4-custom-future.md", file_io: OffTheWorkers, streams: false, seed_ratio_2018: ACTS_II_TO_VI, cfg: all(), act: |_: NoActArgs| act4_custom_future::HandWritten }
            act5_channel { name: "act5-channel", binary: "act5-channel", args: [], short: "act5", title: "Act V", chapter: "act5-channel.md", file_io: OffTheWorkers, streams: true, seed_ratio_2018: ACTS_II_TO_VI, cfg: all(), act: act5_channel::Channel::new }
            act6_framed { name: "act6-framed", binary: "act6-framed", args: [], short: "act6", title: "Act VI", chapter: "act6-framed.md", file_io: OffTheWorkers, streams: false, seed_ratio_2018: ACTS_II_TO_VI, cfg: all(), act: |_: NoActArgs| act6_framed::FramedLines }
            act7_tokio_fs { name: "act7-tokio-fs", binary: "act7-tokio-fs", args: [], short: "act7", title: "Act VII", chapter: "act7-tokio-fs.md", file_io: OffTheWorkers, streams: false, seed_ratio_2018: exactly(3.8), cfg: all(), act: |_: NoActArgs| act7_tokio_fs::TokioFs }
            act8_io_uring { name: "act8-io-uring", binary: "act8-io-uring", args: [], short: "act8", title: "Act VIII", chapter: "act8-io-uring.md", file_io: OffTheWorkers, streams: false, seed_ratio_2018: NONE_IN_2018, cfg: tokio_unstable, act: |_: NoActArgs| act8_io_uring::IoUring::default() }
            finale_cached { name: "finale-cached", binary: "finale-cached", args: [], short: "finale", title: "Finale", chapter: "finale-cached.md", file_io: None, streams: false, seed_ratio_2018: exactly(1.0), cfg: all(), act: |_: NoActArgs| finale_cached::Cached::default() }
        }
    };
}
// ANCHOR_END: list

/// What [`__every_act!`] expands to, one arm per use. Not for use on its own.
#[doc(hidden)]
#[macro_export]
macro_rules! __expand_acts {
    // The table and the constructors, expanded once, below, in this crate.
    ((@table) $(
        $module:ident {
            name: $name:literal, binary: $binary:literal, args: [$($arg:literal),*],
            short: $short:literal, title: $title:literal, chapter: $chapter:literal,
            file_io: $file_io:ident, streams: $streams:literal, seed_ratio_2018: $ratio:expr,
            cfg: $cfg:meta,
            act: $make:expr
        }
    )*) => {
        /// Every act, in story order (see the list in `__every_act!`).
        pub static ACTS: &[ActEntry] = &[$(
            ActEntry {
                name: $name,
                binary: $binary,
                args: &[$($arg),*],
                short: $short,
                title: $title,
                chapter: $chapter,
                file_io: FileIo::$file_io,
                streams: $streams,
                seed_ratio_2018: $ratio,
                build: {
                    #[cfg($cfg)]
                    const BUILD: Build = Build::Available(|command_line| {
                        joke_server::run_act_from($binary, command_line, $make)
                    });
                    #[cfg(not($cfg))]
                    const BUILD: Build = Build::NotInThisBuild {
                        needs: concat!("a build with --cfg ", stringify!($cfg)),
                    };
                    BUILD
                },
            },
        )*];

        /// Each act's value, one function per entry of [`ACTS`] named by its module name
        /// (`make::act2_block_in_place()`), built as the entry's command line would build it
        /// (its mode's arguments parsed). [`for_every_act!`] calls them; call one directly
        /// where one act stands for all (a test of the harness, say).
        pub mod make {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[cfg($cfg)]
                pub fn $module() -> impl joke_server::Act + std::fmt::Debug {
                    in_process($binary, &[$($arg),*], $make)
                }
            )*
        }
    };

    // `for_every_act!(|entry, act| { ... })`: the body once per act, in a block of its own.
    ((@each $entry:ident, $act:ident, $body:block) $(
        $module:ident { name: $name:literal, $($fields:tt)* }
    )*) => {{
        $(
            $crate::__expand_acts!(@one $module, $name, $entry, $act, $body; $($fields)*);
        )*
    }};
    (@one $module:ident, $name:literal, $entry:ident, $act:ident, $body:block;
        binary: $_b:literal, args: $_a:tt, short: $_s:literal, title: $_t:literal,
        chapter: $_c:literal, file_io: $_f:ident, streams: $_st:literal, seed_ratio_2018: $_r:expr,
        cfg: $cfg:meta,
        act: $_m:expr
    ) => {
        #[cfg($cfg)]
        let () = {
            let $entry: &'static $crate::ActEntry = $crate::entry($name);
            let $act = $crate::make::$module();
            $body
        };
    };

    // `for_every_act!(tests(entry, act) { fn ...() { ... } ... })`: a module per act, here,
    // holding every function given, each starting with `entry` and `act` bound.
    ((@tests $entry:ident, $act:ident, $tests:tt) $(
        $module:ident { name: $name:literal, $($fields:tt)* }
    )*) => {
        $(
            $crate::__expand_acts!(@module $module, $name, $entry, $act, $tests; $($fields)*);
        )*
    };
    (@module $module:ident, $name:literal, $entry:ident, $act:ident, {
        $( $(#[$meta:meta])* fn $test:ident() $body:block )*
    }; binary: $_b:literal, args: $_a:tt, short: $_s:literal, title: $_t:literal,
        chapter: $_c:literal, file_io: $_f:ident, streams: $_st:literal, seed_ratio_2018: $_r:expr,
        cfg: $cfg:meta,
        act: $_m:expr
    ) => {
        #[cfg($cfg)]
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                fn $test() {
                    #[allow(unused_variables)]
                    let $entry: &'static $crate::ActEntry = $crate::entry($name);
                    #[allow(unused_variables)]
                    let $act = $crate::make::$module();
                    $body
                }
            )*
        }
    };
}

/// Runs `$body` once per act this build has, with `$entry` bound to its [`ActEntry`] and
/// `$act` to its value (each of its own type, so the body is compiled once per act); or
/// generates one module per act of test functions (`tests(entry, act) { ... }`), so that a
/// failure names act and check.
///
/// ```
/// // The same check on every act, in turn (in a test, the body may `.await`).
/// let mut names = Vec::new();
/// acts::for_every_act!(|entry, act| {
///     fn is_an_act(_: &impl joke_server::Act) {}
///     is_an_act(&act);
///     names.push(entry.name);
/// });
/// assert_eq!(names, acts::available().map(|a| a.name).collect::<Vec<_>>());
///
/// // A module per act, here, with every function given, `entry` and `act` bound in each.
/// // With `#[test]` above them (in a test crate's `conformance` module), that is one test per
/// // act and check, named `conformance::act1_naive::serves_one_joke`, and so on.
/// acts::for_every_act! {
///     tests(entry, act) {
///         fn serves_one_joke() { let _ = (entry, act); }
///         fn refuses_a_bad_start_up() { assert!(!entry.chapter.is_empty()) }
///     }
/// }
/// ```
#[macro_export]
macro_rules! for_every_act {
    (|$entry:ident, $act:ident| $body:block) => {
        $crate::__every_act!(@each $entry, $act, $body)
    };
    (tests($entry:ident, $act:ident) $tests:tt) => {
        $crate::__every_act!(@tests $entry, $act, $tests);
    };
}

__every_act!(@table);

/// Builds an act's value as `joke_server::run_act_from` does, from its own options parsed out
/// of `args` (its mode's arguments), for the in-process uses of [`for_every_act!`].
///
/// # Panics
/// When `args` are not options of the act: the list in this crate is wrong.
#[doc(hidden)]
pub fn in_process<X: clap::Args, A: joke_server::Act>(
    binary: &'static str,
    args: &[&'static str],
    make: impl FnOnce(X) -> A,
) -> A {
    let command = X::augment_args(clap::Command::new(binary).no_binary_name(true));
    let options = command
        .try_get_matches_from(args)
        .and_then(|matches| X::from_arg_matches(&matches))
        .unwrap_or_else(|error| panic!("{binary} {args:?}: {error}"));
    make(options)
}

/// The entry called `name`, for [`for_every_act!`].
///
/// # Panics
/// When there is none: the list in this crate is wrong.
#[doc(hidden)]
pub fn entry(name: &str) -> &'static ActEntry {
    ACTS.iter()
        .find(|act| act.name == name)
        .unwrap_or_else(|| panic!("no act named {name:?}"))
}

/// The acts this build can run, in story order.
pub fn available() -> impl Iterator<Item = &'static ActEntry> {
    ACTS.iter().filter(|act| act.is_available())
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

/// Parses one `--acts` item for clap, listing the known acts when nothing matches, and
/// refusing an act this build does not have.
pub fn parse_selection(name: &str) -> Result<Selection, String> {
    let acts = select(name);
    if acts.is_empty() {
        let known: Vec<&str> = ACTS.iter().map(|act| act.name).collect();
        return Err(format!(
            "no act named {name:?}; the acts are {}",
            known.join(", ")
        ));
    }
    for act in &acts {
        act.check_available()?;
    }
    Ok(Selection(acts))
}

/// Parses an act that must be named in full (`bench-client serve`, `run-act`).
pub fn parse_act(name: &str) -> Result<&'static ActEntry, String> {
    ACTS.iter()
        .find(|act| act.name == name)
        .ok_or_else(|| format!("no act named {name:?}"))
}

impl ActEntry {
    /// Whether this build can run the act.
    pub fn is_available(&self) -> bool {
        matches!(self.build, Build::Available(_))
    }

    /// `Ok` when this build can run the act, else why not.
    pub fn check_available(&self) -> Result<(), String> {
        match self.build {
            Build::Available(_) => Ok(()),
            Build::NotInThisBuild { needs } => Err(format!(
                "{} is not available in this build: it needs {needs}",
                self.name
            )),
        }
    }

    /// Runs this act's server with `args` (its options, without the program name; this
    /// entry's own [`args`](Self::args) are added after them), in this process, until SIGINT
    /// or SIGTERM, as the act's own `main` does. An act this build does not have is refused
    /// with a message and exit code 2.
    pub fn run(&self, args: impl IntoIterator<Item = OsString>) -> ExitCode {
        let command_line = std::iter::once(OsString::from(self.binary))
            .chain(args)
            .chain(self.args.iter().map(OsString::from));
        match self.build {
            Build::Available(run) => run(command_line.collect()),
            Build::NotInThisBuild { .. } => {
                if let Err(error) = self.check_available() {
                    eprintln!("{}: error: {error}", self.name);
                }
                ExitCode::from(joke_index::exit_code::BAD_INPUT)
            }
        }
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
    fn names_and_modules_are_unique() {
        for (i, a) in ACTS.iter().enumerate() {
            for b in &ACTS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.short, b.short);
            }
        }
    }

    #[test]
    fn seed_ratios_print_as_the_article_gave_them() {
        assert_eq!(exactly(6.6).to_string(), "6.6×");
        assert_eq!(ACTS_II_TO_VI.to_string(), "3.0–3.3×");
    }

    #[test]
    fn the_baseline_is_an_act() {
        assert_eq!(entry(BASELINE).file_io, FileIo::None);
    }

    #[test]
    fn an_act_of_another_build_is_listed_but_refused() {
        let act8 = ActEntry {
            name: "act8-example",
            binary: "act8-example",
            args: &[],
            short: "act8",
            title: "Act VIII",
            chapter: "act8-example.md",
            file_io: FileIo::OffTheWorkers,
            streams: false,
            seed_ratio_2018: exactly(1.0),
            build: Build::NotInThisBuild {
                needs: "a build with --cfg tokio_unstable",
            },
        };
        assert!(!act8.is_available());
        let error = act8.check_available().unwrap_err();
        assert!(error.contains("act8-example"), "{error}");
        assert!(error.contains("--cfg tokio_unstable"), "{error}");
        assert_eq!(
            act8.run([]),
            ExitCode::from(joke_index::exit_code::BAD_INPUT)
        );
        // The real list: every act but Act VIII runs in any build; Act VIII needs the flag.
        for act in ACTS {
            let needs_the_flag = act.name == "act8-io-uring";
            assert_eq!(
                act.is_available(),
                !needs_the_flag || cfg!(tokio_unstable),
                "{}",
                act.name
            );
        }
    }

    #[test]
    fn every_mode_parses_its_arguments() {
        // The constructors parse each entry's `args`; a wrong one panics here.
        let mut count = 0;
        crate::for_every_act!(|entry, act| {
            let value = format!("{act:?}");
            if entry.name == "act2-block-in-place" {
                assert!(value.contains("BlockInPlace"), "{value}");
            }
            if entry.name == "act2-spawn-blocking" {
                assert!(value.contains("SpawnBlocking"), "{value}");
            }
            count += 1;
        });
        assert_eq!(count, available().count());
    }
}
