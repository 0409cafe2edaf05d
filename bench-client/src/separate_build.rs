//! Acts that live in a build of their own: Act VIII needs `--cfg tokio_unstable` for the whole
//! build, so this binary (an ordinary build) cannot run it in-process with `serve`. When its
//! flagged build exists (`act8_io_uring::BUILT_BINARY`, which `act8_io_uring::BUILD_COMMAND`
//! writes) and is up to date, `compare`, `soak` and `sweep` start that binary instead, with the
//! same options as every other act; when it is missing or stale, they leave the act out and say
//! how to include it.
//!
//! A stale build is the dangerous case: it starts, serves, and answers in whatever form its older
//! sources had (a statistics line of an older version, say), so the run fails late or, worse,
//! measures code that is no longer in the tree. "Stale" means what it means to cargo: cargo
//! writes beside each binary a dep-info file (`act8-io-uring.d`) naming every source file of the
//! workspace the binary was built from, and rebuilds when one of them is newer than its last
//! build. We ask the same question of the same list, so a stale verdict is one that the build
//! command clears. (One blind spot, shared with any check by modification time against the
//! finished binary: a source saved *during* the build, after cargo had compiled it, is older than
//! the binary and looks fresh here, where cargo, comparing per crate, would rebuild it.)

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use acts::{ActEntry, Selection};

/// The workspace this binary was built from: the build command writes relative to it.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What there is of an act's separate build.
#[derive(Debug, PartialEq, Eq)]
enum SeparateBuild {
    /// The act is in this build, or is not an act of a separate build.
    NotNeeded,
    /// Its binary does not exist.
    Missing,
    /// Its binary exists but was built from older sources: why, in words.
    Stale(String),
    /// Its binary exists and is as new as every source it was built from.
    Fresh(PathBuf),
}

/// The state of `act`'s separate build in this workspace.
fn separate_build(act: &ActEntry) -> SeparateBuild {
    if act.is_available() || act.name != "act8-io-uring" {
        return SeparateBuild::NotNeeded;
    }
    let binary = PathBuf::from(WORKSPACE).join(act8_io_uring::BUILT_BINARY);
    if !binary.is_file() {
        return SeparateBuild::Missing;
    }
    match staleness(&binary) {
        Some(why) => SeparateBuild::Stale(why),
        None => SeparateBuild::Fresh(binary),
    }
}

/// Why `binary` is older than the sources cargo built it from, or `None` when it is not.
///
/// Reads the dep-info file cargo writes beside it (`binary` with `.d` appended: one line,
/// `BINARY: SOURCE SOURCE ...`, spaces in a path escaped with a backslash) and compares the
/// modification time of each source with the binary's. A missing dep-info file, or a source
/// that is no longer there, is stale too: nothing then says the binary matches this tree.
fn staleness(binary: &Path) -> Option<String> {
    let built = match std::fs::metadata(binary).and_then(|meta| meta.modified()) {
        Ok(built) => built,
        Err(error) => return Some(format!("its modification time cannot be read ({error})")),
    };
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let dep_info = PathBuf::from(dep_info);
    let text = match std::fs::read_to_string(&dep_info) {
        Ok(text) => text,
        Err(error) => {
            return Some(format!(
                "cargo's list of the sources it was built from, {}, cannot be read ({error})",
                dep_info.display()
            ));
        }
    };
    let sources = dep_info_sources(&text);
    if sources.is_empty() {
        return Some(format!("{} names no source files", dep_info.display()));
    }
    let mut newer: Vec<(SystemTime, &Path)> = Vec::new();
    for source in &sources {
        match std::fs::metadata(source).and_then(|meta| meta.modified()) {
            Ok(modified) if modified > built => newer.push((modified, source)),
            Ok(_) => {}
            Err(_) => {
                return Some(format!(
                    "it was built from {}, which is no longer there",
                    source.display()
                ));
            }
        }
    }
    // The most recently changed source: the likeliest one the user knows of.
    let (_, latest) = newer.iter().max_by_key(|(modified, _)| *modified)?;
    let others = match newer.len() - 1 {
        0 => String::new(),
        1 => " and 1 other source".to_owned(),
        n => format!(" and {n} other sources"),
    };
    Some(format!(
        "{}{others} changed after it was built",
        latest.display()
    ))
}

/// The source files of a cargo dep-info file: everything after the first `: ` of its first
/// line, split at the spaces that are not escaped (cargo writes a space inside a path as `\ `).
fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let Some(line) = text.lines().next() else {
        return Vec::new();
    };
    let Some((_, sources)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.as_str().starts_with(' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => {
                if !current.is_empty() {
                    paths.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths
}

/// The binary of `act`'s separate build, when the act is not in this build and that binary
/// exists and is up to date.
pub(crate) fn binary(act: &ActEntry) -> Option<PathBuf> {
    match separate_build(act) {
        SeparateBuild::Fresh(binary) => Some(binary),
        _ => None,
    }
}

/// Whether this run can start `act`: in this build, or from its separate build.
fn runnable(act: &ActEntry) -> bool {
    act.is_available() || binary(act).is_some()
}

/// Every act this run can start, in story order; for each act it cannot, a note on stderr
/// saying how to include it (a warning when its build is there but stale).
pub(crate) fn every_runnable_act() -> Vec<&'static ActEntry> {
    let mut runnable = Vec::new();
    for act in acts::ACTS.iter() {
        if act.is_available() {
            runnable.push(act);
            continue;
        }
        // One look at the separate build (its dep-info read, its sources' times) per act.
        match separate_build(act) {
            SeparateBuild::Fresh(_) => runnable.push(act),
            state => {
                let kind = match state {
                    SeparateBuild::Stale(_) => "warning",
                    _ => "note",
                };
                eprintln!("bench-client: {kind}: {}", left_out(act, &state));
            }
        }
    }
    runnable
}

/// The command that makes Act VIII's own build: its `BUILD_COMMAND`, building only.
pub(crate) fn build_command() -> String {
    act8_io_uring::BUILD_COMMAND.replacen("cargo run", "cargo build", 1)
}

/// Why `act` is left out, and the command that brings it in.
fn how_to_include(act: &ActEntry) -> String {
    left_out(act, &separate_build(act))
}

/// Why `act`, whose separate build is in `state`, is left out, and the command that brings it
/// in.
fn left_out(act: &ActEntry, state: &SeparateBuild) -> String {
    let workspace = Path::new(WORKSPACE)
        .canonicalize()
        .unwrap_or_else(|_| WORKSPACE.into());
    match state {
        SeparateBuild::Stale(why) => format!(
            "{} ({}) is not in this run: its own build, {}, is stale ({why}); rebuild it with \
             `{}` (from {})",
            act.title,
            act.name,
            workspace.join(act8_io_uring::BUILT_BINARY).display(),
            build_command(),
            workspace.display(),
        ),
        _ => format!(
            "{} ({}) is not in this run: it needs its own build; run `{}` once (from {}), and \
             compare, sweep and soak start {} from then on",
            act.title,
            act.name,
            build_command(),
            workspace.display(),
            act8_io_uring::BUILT_BINARY,
        ),
    }
}

/// `--acts` for the modes that start the acts: as [`acts::parse_selection`], but an act of a
/// separate build is accepted when that build exists and is up to date, and otherwise refused
/// with the reason and its build command (clap then exits with 2).
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
        let binary_path = PathBuf::from(WORKSPACE).join(act8_io_uring::BUILT_BINARY);
        let built = binary_path.is_file() && staleness(&binary_path).is_none();
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

    /// A separate build in a scratch folder: a "binary" (a shell script, which is all a
    /// modification time needs), cargo's dep-info beside it naming two sources, every file
    /// dated `age` before now, the binary last.
    struct ScratchBuild {
        _folder: tempfile::TempDir,
        binary: PathBuf,
        sources: [PathBuf; 2],
    }

    fn set_modified(path: &Path, when: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(when))
            .unwrap_or_else(|error| panic!("dating {}: {error}", path.display()));
    }

    fn scratch_build() -> ScratchBuild {
        let folder = tempfile::tempdir().unwrap();
        let sources = [
            folder.path().join("src/lib.rs"),
            folder.path().join("src dir/with space.rs"),
        ];
        let binary = folder.path().join("release/act8-io-uring");
        for file in sources.iter().chain([&binary]) {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, "#!/bin/sh\necho 'listening on 127.0.0.1:1'\n").unwrap();
        }
        let escaped: Vec<String> = sources
            .iter()
            .map(|source| source.display().to_string().replace(' ', "\\ "))
            .collect();
        std::fs::write(
            folder.path().join("release/act8-io-uring.d"),
            format!("{}: {}\n", binary.display(), escaped.join(" ")),
        )
        .unwrap();
        let an_hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        for source in &sources {
            set_modified(source, an_hour_ago);
        }
        set_modified(&binary, an_hour_ago + std::time::Duration::from_secs(60));
        ScratchBuild {
            _folder: folder,
            binary,
            sources,
        }
    }

    #[test]
    fn a_dep_info_line_splits_at_spaces_that_are_not_escaped() {
        assert_eq!(
            dep_info_sources("/t/bin: /a/b.rs /c\\ d/e.rs  /f.rs\n"),
            [
                PathBuf::from("/a/b.rs"),
                PathBuf::from("/c d/e.rs"),
                PathBuf::from("/f.rs")
            ]
        );
        assert!(dep_info_sources("").is_empty());
        assert!(dep_info_sources("no colon here").is_empty());
    }

    #[test]
    fn a_build_newer_than_its_sources_is_fresh() {
        let build = scratch_build();
        assert_eq!(staleness(&build.binary), None);
    }

    #[test]
    fn a_source_changed_after_the_build_makes_it_stale_and_names_the_source() {
        let build = scratch_build();
        set_modified(&build.sources[1], SystemTime::now());
        let why = staleness(&build.binary).expect("a changed source makes the build stale");
        assert!(
            why.contains("with space.rs changed after it was built"),
            "{why}"
        );
        assert!(!why.contains("other"), "{why}");
        set_modified(&build.sources[0], SystemTime::now());
        let why = staleness(&build.binary).unwrap();
        assert!(why.contains("and 1 other source changed"), "{why}");
    }

    #[test]
    fn a_stale_build_is_left_out_with_its_path_its_reason_and_the_rebuild_command() {
        let act8 = acts::entry("act8-io-uring");
        let why = "crates/joke-server/src/wire.rs changed after it was built".to_owned();
        let message = left_out(act8, &SeparateBuild::Stale(why.clone()));
        assert!(
            message.contains("act8-io-uring) is not in this run"),
            "{message}"
        );
        assert!(message.contains(act8_io_uring::BUILT_BINARY), "{message}");
        assert!(message.contains(&format!("is stale ({why})")), "{message}");
        assert!(
            message.contains(&format!("rebuild it with `{}`", build_command())),
            "{message}"
        );
        let missing = left_out(act8, &SeparateBuild::Missing);
        assert!(missing.contains("it needs its own build"), "{missing}");
        assert!(!missing.contains("stale"), "{missing}");
    }

    #[test]
    fn a_missing_source_or_dep_info_makes_it_stale() {
        let build = scratch_build();
        std::fs::remove_file(&build.sources[0]).unwrap();
        let why = staleness(&build.binary).unwrap();
        assert!(
            why.contains("src/lib.rs, which is no longer there"),
            "{why}"
        );

        let build = scratch_build();
        let mut dep_info = build.binary.clone().into_os_string();
        dep_info.push(".d");
        std::fs::remove_file(&dep_info).unwrap();
        let why = staleness(&build.binary).unwrap();
        assert!(why.contains("act8-io-uring.d, cannot be read"), "{why}");
    }
}
