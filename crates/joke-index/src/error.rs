//! Errors, each carrying the path (and line, where there is one) it is about.

use std::io;
use std::path::PathBuf;

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

    /// True when a fresh index would help: the file changed under us, or it vanished.
    pub fn is_stale(&self) -> bool {
        match self {
            ReadError::Changed { .. } => true,
            ReadError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            ReadError::NoSuchJoke { .. } => false,
        }
    }
}
