//! `--verify`: the set of responses a correct server may send.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use joke_index::{FormatChoice, Index};

/// Every joke of a jokes file in its served form (see DESIGN.md): a correct response is exactly
/// one of them, byte for byte.
///
/// The set is built once, before the first connection, with the same `joke-index` code the
/// servers use, so a response that differs by one byte (a lost newline, a `\r`, two jokes glued
/// together, half a joke) is caught.
#[derive(Debug, Clone)]
pub(crate) struct JokeSet {
    path: PathBuf,
    jokes: HashSet<Vec<u8>>,
}

impl JokeSet {
    /// Indexes the jokes file at `path` (format detected from its content) and reads every joke.
    pub(crate) fn load(path: &Path) -> anyhow::Result<JokeSet> {
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
    #[cfg(test)]
    pub(crate) fn from_text(path: impl Into<PathBuf>, text: &str) -> anyhow::Result<JokeSet> {
        let (_, jokes) = joke_index::jokes_in(text.as_bytes(), FormatChoice::Auto)?;
        Ok(JokeSet {
            path: path.into(),
            jokes: jokes.into_iter().map(String::into_bytes).collect(),
        })
    }

    /// Whether `response` is exactly one of the jokes.
    pub(crate) fn contains(&self, response: &[u8]) -> bool {
        self.jokes.contains(response)
    }

    /// The file the jokes came from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
