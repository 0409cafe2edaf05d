//! `--verify`: the set of responses a correct server may send.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use joke_index::{FormatChoice, Index, jokes_in};

/// Every joke of a jokes file in its served form (see DESIGN.md): a correct response is exactly
/// one of them, byte for byte.
///
/// The set is built once, before the first connection, with the same `joke-index` code the
/// servers use, so a response that differs by one byte (a lost newline, a `\r`, two jokes glued
/// together, half a joke) is caught.
#[derive(Debug, Clone)]
pub struct JokeSet {
    path: PathBuf,
    jokes: HashSet<Vec<u8>>,
}

impl JokeSet {
    /// Indexes the jokes file at `path` (format detected from its content) and reads every joke.
    pub fn load(path: &Path) -> anyhow::Result<JokeSet> {
        let index = Index::build(path, FormatChoice::Auto)?;
        let jokes = index
            .read_all_blocking()
            .with_context(|| format!("reading the jokes of {}", path.display()))?;
        Ok(JokeSet {
            path: path.into(),
            jokes: jokes.into_iter().map(String::into_bytes).collect(),
        })
    }

    /// The set for jokes text held in memory (for tests), named as if read from `path`.
    pub fn from_text(path: impl Into<PathBuf>, text: &str) -> anyhow::Result<JokeSet> {
        let (_, jokes) = jokes_in(text.as_bytes(), FormatChoice::Auto)?;
        Ok(JokeSet {
            path: path.into(),
            jokes: jokes.into_iter().map(String::into_bytes).collect(),
        })
    }

    /// Whether `response` is exactly one of the jokes.
    pub fn contains(&self, response: &[u8]) -> bool {
        self.jokes.contains(response)
    }

    /// The file the jokes came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many distinct jokes (two identical jokes count once).
    pub fn len(&self) -> usize {
        self.jokes.len()
    }

    /// Whether there is no joke at all (never, for a set that loaded).
    pub fn is_empty(&self) -> bool {
        self.jokes.is_empty()
    }
}
