//! What the strfile golden tests and the system tests share: the fixtures, and what strfile
//! and our index each make of them.

use std::path::PathBuf;

/// One fortune file in `tests/fixtures/strfile/`, with its golden `.dat` beside it.
#[derive(Debug)]
pub struct Fixture {
    pub name: &'static str,
    /// Records strfile counts (`numstr` of the golden `.dat`).
    pub numstr: u32,
    /// Jokes our index finds reading it as a fortune file (0: it finds none and refuses it).
    pub jokes: usize,
    /// Why the two counts differ, when they do.
    pub why: &'static str,
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "basic",
        numstr: 3,
        jokes: 3,
        why: "",
    },
    Fixture {
        name: "empty-records",
        numstr: 7,
        jokes: 4,
        why: "three records hold only blank lines: strfile counts them, we skip them",
    },
    Fixture {
        name: "no-trailing-percent",
        numstr: 2,
        jokes: 2,
        why: "",
    },
    Fixture {
        name: "percent-at-eof",
        numstr: 2,
        jokes: 2,
        why: "same count, but strfile's last record ends in the `%`, which is a separator to us",
    },
    Fixture {
        name: "long-lines",
        numstr: 7,
        jokes: 5,
        why: "two lines have a `%` right after 255*k bytes, which strfile's fgets chunks \
              take for delimiters; to us they are text",
    },
    Fixture {
        name: "crlf",
        numstr: 1,
        jokes: 2,
        why: "`%\\r\\n` separates records for us, not for strfile",
    },
    Fixture {
        name: "empty",
        numstr: 0,
        jokes: 0,
        why: "",
    },
];

/// The folder holding the fixtures.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strfile")
}

/// How many jokes our index finds in the fortune file at `path` (0 when it refuses the file
/// for having none).
pub fn our_joke_count(path: &std::path::Path) -> usize {
    match joke_index::Index::build(path, joke_index::FormatChoice::Fortune) {
        Ok(index) => index.len(),
        Err(joke_index::IndexError::NoJokes { .. }) => 0,
        Err(other) => panic!("indexing {}: {other}", path.display()),
    }
}
