//! The [`Index`]: where every joke of one file starts and ends, and how to read one back.

use std::fs::{File, Metadata};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::Rng;

use crate::error::{IndexError, ReadError};
use crate::scan::{self, JokeSpan, LongestLine, READ_BUFFER, ScanError};
use crate::{Format, FormatChoice, served_form};

// ANCHOR: fingerprint
/// What identifies one version of a file cheaply: its length and modification time (and on
/// Unix its inode, so that a file renamed over the old one is noticed even when both match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub inode: Option<u64>,
}
// ANCHOR_END: fingerprint

impl Fingerprint {
    /// The fingerprint of the file `metadata` describes.
    pub fn of(metadata: &Metadata) -> Self {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            Some(metadata.ino())
        };
        #[cfg(not(unix))]
        let inode = None;
        Fingerprint {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode,
        }
    }
}

/// A jokes file, indexed: the byte range and line range of every joke, and the fingerprint of
/// the file it was built from.
///
/// Building the index reads the file once; after that a joke is one `seek` and one `read` away,
/// whatever its number. Keeping byte offsets (not just "joke N starts on line L") is what makes
/// that possible: a line number would make every read skip through all the lines before it.
#[derive(Debug, Clone)]
pub struct Index {
    path: PathBuf,
    format: Format,
    jokes: Vec<JokeSpan>,
    fingerprint: Fingerprint,
    longest_line: LongestLine,
}

impl Index {
    /// Reads and indexes the jokes file at `path`.
    ///
    /// Fails with a variant naming the file when it is missing, a directory, not UTF-8 (with
    /// the line), unreadable, or holds no joke.
    pub fn build(path: impl AsRef<Path>, choice: FormatChoice) -> Result<Index, IndexError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| IndexError::from_io(path, e))?;
        let metadata = file.metadata().map_err(|e| IndexError::from_io(path, e))?;
        if metadata.is_dir() {
            return Err(IndexError::IsADirectory { path: path.into() });
        }
        let scan = scan::scan(file, choice.forced()).map_err(|e| match e {
            ScanError::InvalidUtf8 { line } => IndexError::InvalidUtf8 {
                path: path.into(),
                line,
            },
            ScanError::Io(source) => IndexError::from_io(path, source),
        })?;
        if scan.jokes.is_empty() {
            return Err(IndexError::NoJokes { path: path.into() });
        }
        // The fingerprint is the one taken when the file was opened. If the file was being
        // written while we scanned, the length we scanned will not match it, and the first
        // read will report the file as changed, which triggers a fresh index.
        let mut fingerprint = Fingerprint::of(&metadata);
        if fingerprint.len != scan.len {
            fingerprint.len = scan.len;
            fingerprint.modified = None;
        }
        Ok(Index {
            path: path.into(),
            format: scan.format,
            jokes: scan.jokes,
            fingerprint,
            longest_line: scan.longest_line,
        })
    }

    /// The longest line of the file (bytes, line ending not counted) and where it is.
    pub fn longest_line(&self) -> LongestLine {
        self.longest_line
    }

    /// The file this index describes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format the file was read in (detected or forced).
    pub fn format(&self) -> Format {
        self.format
    }

    /// How many jokes the file holds; never zero.
    pub fn len(&self) -> usize {
        self.jokes.len()
    }

    /// Always false: an index is only built for a file with at least one joke.
    pub fn is_empty(&self) -> bool {
        self.jokes.is_empty()
    }

    /// Where every joke lives, in file order.
    pub fn spans(&self) -> &[JokeSpan] {
        &self.jokes
    }

    /// Where joke `number` lives.
    pub fn span(&self, number: usize) -> Option<&JokeSpan> {
        self.jokes.get(number)
    }

    /// The length, modification time and inode the file had when it was indexed.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Length of the indexed file in bytes.
    pub fn file_len(&self) -> u64 {
        self.fingerprint.len
    }

    /// Modification time of the indexed file, when the platform keeps one.
    pub fn modified(&self) -> Option<SystemTime> {
        self.fingerprint.modified
    }

    /// The number of a joke chosen uniformly at random.
    pub fn random_number(&self) -> usize {
        rand::rng().random_range(0..self.jokes.len())
    }

    /// Checks that `metadata` (of a file just opened, or of the path) still describes the
    /// indexed file.
    pub fn ensure_unchanged(&self, metadata: &Metadata) -> Result<(), ReadError> {
        if Fingerprint::of(metadata) == self.fingerprint {
            Ok(())
        } else {
            Err(ReadError::changed(&self.path))
        }
    }

    /// Looks at the path (one `stat`) and says whether the file there is no longer the one
    /// indexed: edited, replaced, or gone.
    pub fn has_changed(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(metadata) => self.ensure_unchanged(&metadata).is_err(),
            Err(_) => true,
        }
    }

    /// Reads joke `number` in served form with blocking `std::fs` calls: open, check the file
    /// is still the indexed one, seek to the joke's offset, read exactly its bytes, check again.
    ///
    /// The second check catches a write that raced the read. When either fails, nothing of the
    /// file is returned ([`ReadError::Changed`]), so a caller never serves a torn joke.
    // ANCHOR: read_joke
    pub fn read_joke_blocking(&self, number: usize) -> Result<String, ReadError> {
        let span = self.span_or_error(number)?;
        let io_error = |source| ReadError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(io_error)?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        file.seek(SeekFrom::Start(span.bytes.start))
            .map_err(io_error)?;
        let mut raw = vec![0; span.byte_len() as usize];
        file.read_exact(&mut raw).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.changed(),
            _ => io_error(e),
        })?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        self.served_from_raw(raw)
    }
    // ANCHOR_END: read_joke

    /// Every joke in served form, in file order, read in one sequential pass (for the cached
    /// finale and for `--verify`). Fails with [`ReadError::Changed`] like
    /// [`read_joke_blocking`](Self::read_joke_blocking).
    pub fn read_all_blocking(&self) -> Result<Vec<String>, ReadError> {
        let io_error = |source| ReadError::Io {
            path: self.path.clone(),
            source,
        };
        let file = File::open(&self.path).map_err(io_error)?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        let mut position = 0;
        let mut jokes = Vec::with_capacity(self.jokes.len());
        for span in &self.jokes {
            reader
                .seek_relative((span.bytes.start - position) as i64)
                .map_err(io_error)?;
            let mut raw = vec![0; span.byte_len() as usize];
            reader.read_exact(&mut raw).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => self.changed(),
                _ => io_error(e),
            })?;
            position = span.bytes.end;
            jokes.push(self.served_from_raw(raw)?);
        }
        self.ensure_unchanged(&reader.get_ref().metadata().map_err(io_error)?)?;
        Ok(jokes)
    }

    /// Turns the raw bytes read at a joke's offsets into its served form. Bytes that are not
    /// UTF-8 cannot be what the index saw (it checked every line), so they mean the file changed.
    pub fn served_from_raw(&self, raw: Vec<u8>) -> Result<String, ReadError> {
        let raw = String::from_utf8(raw).map_err(|_| self.changed())?;
        let served = served_form(&raw);
        if served.is_empty() {
            return Err(self.changed());
        }
        Ok(served)
    }

    /// The span of joke `number`, or the error that says it does not exist.
    pub fn span_or_error(&self, number: usize) -> Result<&JokeSpan, ReadError> {
        self.jokes.get(number).ok_or_else(|| ReadError::NoSuchJoke {
            path: self.path.clone(),
            number,
            count: self.jokes.len(),
        })
    }

    fn changed(&self) -> ReadError {
        ReadError::changed(&self.path)
    }
}

/// Splits jokes text held in memory into its jokes, in served form: the same rules as
/// [`Index::build`], for text that is not in a file (tests, fuzzing, a client checking what a
/// server sent). Returns the format used and the jokes; invalid UTF-8 is reported with its line.
pub fn jokes_in(text: &[u8], choice: FormatChoice) -> Result<(Format, Vec<String>), InvalidUtf8> {
    let (format, spans) = spans_in(text, choice)?;
    let jokes = spans
        .iter()
        .map(|span| {
            // The scan validated every line, so the range is in bounds and UTF-8; should that
            // ever not hold, report the joke's first line rather than panic.
            let raw = usize::try_from(span.bytes.start)
                .ok()
                .zip(usize::try_from(span.bytes.end).ok())
                .and_then(|(start, end)| text.get(start..end))
                .and_then(|raw| std::str::from_utf8(raw).ok());
            raw.map(served_form).ok_or(InvalidUtf8 {
                line: span.lines.start + 1,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((format, jokes))
}

/// Where the jokes of `text` lie: the spans [`Index::build`] would record for a file holding
/// exactly these bytes.
pub fn spans_in(text: &[u8], choice: FormatChoice) -> Result<(Format, Vec<JokeSpan>), InvalidUtf8> {
    let scan = scan::scan(text, choice.forced()).map_err(|e| match e {
        ScanError::InvalidUtf8 { line } => InvalidUtf8 { line },
        ScanError::Io(e) => unreachable!("reading from a slice cannot fail: {e}"),
    })?;
    Ok((scan.format, scan.jokes))
}

/// In-memory text that is not UTF-8, with the 1-based line where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: invalid UTF-8")]
pub struct InvalidUtf8 {
    pub line: u64,
}
