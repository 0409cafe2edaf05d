//! Acts that live in a build of their own: Act VIII needs `--cfg tokio_unstable` for the whole
//! build, so this binary (an ordinary build) cannot run it in-process with `serve`. When its
//! flagged build exists (`act8_io_uring::BUILT_BINARY`, which `act8_io_uring::BUILD_COMMAND`
//! writes), `compare`, `soak` and `sweep` start that binary instead, with the same options as
//! every other act; when it does not, they leave the act out and say how to include it.

use std::path::{Path, PathBuf};

use acts::{ActEntry, Selection};

/// The workspace this binary was built from: the build command writes relative to it.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The binary of `act`'s separate build, when the act is not in this build and that binary
/// exists.
pub(crate) fn binary(act: &ActEntry) -> Option<PathBuf> {
    if act.is_available() || act.name != "act8-io-uring" {
        return None;
    }
    let binary = PathBuf::from(WORKSPACE).join(act8_io_uring::BUILT_BINARY);
    binary.is_file().then_some(binary)
}

/// Whether this run can start `act`: in this build, or from its separate build.
fn runnable(act: &ActEntry) -> bool {
    act.is_available() || binary(act).is_some()
}

/// Every act this run can start, in story order; for each act it cannot, a note on stderr
/// saying how to include it.
pub(crate) fn every_runnable_act() -> Vec<&'static ActEntry> {
    for act in acts::ACTS.iter().filter(|act| !runnable(act)) {
        eprintln!("bench-client: note: {}", how_to_include(act));
    }
    acts::ACTS.iter().filter(|act| runnable(act)).collect()
}

/// The command that makes Act VIII's own build: its `BUILD_COMMAND`, building only.
pub(crate) fn build_command() -> String {
    act8_io_uring::BUILD_COMMAND.replacen("cargo run", "cargo build", 1)
}

/// Why `act` is left out, and the command that brings it in.
fn how_to_include(act: &ActEntry) -> String {
    format!(
        "{} ({}) is not in this run: it needs its own build; run `{}` once (from {}), and \
         compare, sweep and soak start {} from then on",
        act.title,
        act.name,
        build_command(),
        Path::new(WORKSPACE)
            .canonicalize()
            .unwrap_or_else(|_| WORKSPACE.into())
            .display(),
        act8_io_uring::BUILT_BINARY,
    )
}

/// `--acts` for the modes that start the acts: as [`acts::parse_selection`], but an act of a
/// separate build is accepted when that build exists, and otherwise refused with its build
/// command.
pub(crate) fn parse_selection(name: &str) -> Result<Selection, String> {
    let chosen = acts::select(name);
    if chosen.is_empty() {
        // No such act: acts' own message lists the known ones.
        return acts::parse_selection(name);
    }
    if let Some(missing) = chosen.iter().find(|act| !runnable(act)) {
        return Err(how_to_include(missing));
    }
    Ok(Selection(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act8_comes_from_this_build_or_from_its_own() {
        let act8 = acts::entry("act8-io-uring");
        let built = PathBuf::from(WORKSPACE)
            .join(act8_io_uring::BUILT_BINARY)
            .is_file();
        assert_eq!(runnable(act8), act8.is_available() || built);
        assert_eq!(binary(act8).is_some(), !act8.is_available() && built);
        // Every other act is in every build, and never started from elsewhere.
        for act in acts::ACTS.iter().filter(|act| act.name != act8.name) {
            assert!(runnable(act), "{}", act.name);
            assert!(binary(act).is_none(), "{}", act.name);
        }
        match parse_selection("act8") {
            Ok(selection) => assert_eq!(selection.0.len(), 1),
            Err(message) => {
                assert!(!runnable(act8));
                assert!(message.contains(&build_command()), "{message}");
                assert!(message.contains("cargo build --release"), "{message}");
            }
        }
        assert!(parse_selection("nope").unwrap_err().contains("act1-naive"));
        assert_eq!(parse_selection("act2").unwrap().0.len(), 2);
    }
}
