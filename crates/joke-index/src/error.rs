//! Errors, each carrying the path (and line, where there is one) it is about.

use std::io;
use std::path::{Path, PathBuf};

/// Why a jokes file could not be indexed.
///
/// Every variant names the file, so a message like
/// `jokes.txt line 42: invalid UTF-8` can be printed as it is.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The path does not exist.
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },

    /// The path is a directory, not a jokes file.
    #[error("{}: is a directory, not a jokes file", path.display())]
    IsADirectory { path: PathBuf },

    /// The file holds no joke at all (it is empty, blank, or only separators).
    #[error("{}: no jokes in this file (it is empty, blank or only separators)", path.display())]
    NoJokes { path: PathBuf },

    /// A line is not valid UTF-8. `line` is 1-based, as editors count.
    #[error("{} line {line}: invalid UTF-8", path.display())]
    InvalidUtf8 { path: PathBuf, line: u64 },

    /// Any other I/O failure while reading the file.
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl IndexError {
    /// Turns an `io::Error` met while opening or reading `path` into the most telling variant.
    pub(crate) fn from_io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::NotFound => IndexError::NotFound { path },
            io::ErrorKind::IsADirectory => IndexError::IsADirectory { path },
            _ => IndexError::Io { path, source },
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            IndexError::NotFound { path }
            | IndexError::IsADirectory { path }
            | IndexError::NoJokes { path }
            | IndexError::InvalidUtf8 { path, .. }
            | IndexError::Io { path, .. } => path,
        }
    }
}

/// Why one joke could not be read back from an indexed file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The index has no joke with this number.
    #[error("{}: there is no joke {number} (the file has {count})", path.display())]
    NoSuchJoke {
        path: PathBuf,
        number: usize,
        count: usize,
    },

    /// The file is not the one that was indexed any more (its length or modification time
    /// differs, or the bytes at the joke's offsets are not what the index promised). Nothing
    /// was served from it: build a fresh index and try again.
    #[error("{}: the file changed since it was indexed", path.display())]
    Changed { path: PathBuf },

    /// Opening, seeking or reading failed.
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The file at `path` is not the one that was indexed any more ([`ReadError::Changed`]).
    pub fn changed(path: impl Into<PathBuf>) -> Self {
        ReadError::Changed { path: path.into() }
    }

    /// Opening, seeking or reading the file at `path` failed ([`ReadError::Io`]): the function
    /// that wraps each `io::Error` of one read, for `map_err`. A read makes it once,
    /// `let io_error = ReadError::io(path);`, and passes it to every step; it only borrows
    /// `path`, so it is `Copy` and can be handed over as often as there are steps.
    pub fn io(path: &Path) -> impl Fn(io::Error) -> Self + Copy + '_ {
        move |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when a fresh index would help: the file changed under us, or it vanished.
    pub fn is_stale(&self) -> bool {
        match self {
            ReadError::Changed { .. } => true,
            ReadError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            ReadError::NoSuchJoke { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_names_the_path_and_keeps_its_cause() {
        let io_error = ReadError::io(Path::new("jokes.txt"));
        let gone = io_error(io::Error::from(io::ErrorKind::NotFound));
        assert!(
            matches!(&gone, ReadError::Io { path, source }
                if path == Path::new("jokes.txt") && source.kind() == io::ErrorKind::NotFound),
            "{gone:?}"
        );
        assert!(
            gone.to_string().starts_with("reading jokes.txt: "),
            "{gone}"
        );
        assert!(gone.is_stale(), "a vanished file wants a fresh index");
        // The same value wraps the error of the next step too (it is `Copy`).
        let failed = io_error(io::Error::other("the disk is on fire"));
        assert_eq!(failed.to_string(), "reading jokes.txt: the disk is on fire");
        assert!(!failed.is_stale());
    }
}
