//! The [`Index`]: where every joke of one file starts and ends, and how to read one back.

use std::fs::{File, Metadata};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::Rng;

use crate::error::{IndexError, ReadError};
use crate::scan::{self, JokeSpan, LongestLine, READ_BUFFER, ScanError, ServedSizes};
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

/// A jokes file, indexed: the byte range of every joke (16 bytes a joke), the sizes of the
/// jokes in served form, and the fingerprint of the file it was built from.
///
/// Building the index reads the file once; after that a joke is one `seek` and one `read` away,
/// whatever its number. Keeping byte offsets (not just "joke N starts on line L") is what makes
/// that possible: a line number would make every read skip through all the lines before it.
/// Line numbers, which only messages for people need, are counted on demand
/// ([`line_ranges`](Self::line_ranges)).
#[derive(Debug, Clone)]
pub struct Index {
    path: PathBuf,
    format: Format,
    jokes: Vec<JokeSpan>,
    sizes: ServedSizes,
    fingerprint: Fingerprint,
    longest_line: LongestLine,
    /// Whether the file's jokes are stored ROT13-encoded (fortune's offensive files, flagged
    /// in their `.dat`): every read decodes them, so the served form is the plain text.
    rot13: bool,
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
            sizes: scan.sizes,
            fingerprint,
            longest_line: scan.longest_line,
            rot13: false,
        })
    }

    /// The same index, with every joke decoded from ROT13 when it is read (`true`): what
    /// fortune does for a file whose `.dat` has [`FLAG_ROTATED`](crate::strfile::FLAG_ROTATED).
    /// ROT13 turns ASCII letters into ASCII letters and leaves every other byte alone, so the
    /// offsets, sizes and line rules of the index hold for the decoded text too.
    pub fn decoding_rot13(mut self, rot13: bool) -> Index {
        self.rot13 = rot13;
        self
    }

    /// Whether reads decode ROT13 (see [`decoding_rot13`](Self::decoding_rot13)).
    pub fn decodes_rot13(&self) -> bool {
        self.rot13
    }

    /// The sizes of the jokes in served form (count, total, shortest, longest, over RFC 865's
    /// limit), measured while the file was indexed.
    pub fn served_sizes(&self) -> ServedSizes {
        self.sizes
    }

    /// The 0-based line range (end exclusive) of every joke, in file order, counted by reading
    /// the file once more. For messages that name lines, the way editors count them; serving
    /// never needs them. Fails with [`ReadError::Changed`] if the file is not the indexed one.
    pub fn line_ranges(&self) -> Result<Vec<Range<u64>>, ReadError> {
        let io_error = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::UnexpectedEof => self.changed(),
            _ => ReadError::io(&self.path)(source),
        };
        let file = File::open(&self.path).map_err(io_error)?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        let lines = scan::line_ranges(&file, &self.jokes).map_err(io_error)?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        Ok(lines)
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
        let io_error = ReadError::io(&self.path);
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

    /// Every joke in served form, in file order, read in one sequential pass (for `--verify`
    /// and tests). Fails with [`ReadError::Changed`] like
    /// [`read_joke_blocking`](Self::read_joke_blocking). One `String` per joke; to keep many
    /// jokes in memory, [`read_served_blocking`](Self::read_served_blocking) costs less.
    pub fn read_all_blocking(&self) -> Result<Vec<String>, ReadError> {
        Ok(self
            .read_served_blocking()?
            .iter()
            .map(str::to_owned)
            .collect())
    }

    /// Every joke in served form, in file order, in one buffer (for the cached finale): one
    /// sequential pass over the file, into a buffer allocated once at the size the index
    /// measured. Fails with [`ReadError::Changed`] like
    /// [`read_joke_blocking`](Self::read_joke_blocking).
    pub fn read_served_blocking(&self) -> Result<ServedJokes, ReadError> {
        let io_error = ReadError::io(&self.path);
        let file = File::open(&self.path).map_err(io_error)?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        let mut position = 0;
        let mut text = String::with_capacity(usize::try_from(self.sizes.total).unwrap_or(0));
        let mut ends = Vec::with_capacity(self.jokes.len());
        let mut raw = Vec::new();
        for span in &self.jokes {
            reader
                .seek_relative((span.bytes.start - position) as i64)
                .map_err(io_error)?;
            raw.clear();
            raw.resize(span.byte_len() as usize, 0);
            reader.read_exact(&mut raw).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => self.changed(),
                _ => io_error(e),
            })?;
            position = span.bytes.end;
            self.decode(&mut raw);
            let raw = std::str::from_utf8(&raw).map_err(|_| self.changed())?;
            let served = served_form(raw);
            if served.is_empty() {
                return Err(self.changed());
            }
            text.push_str(&served);
            ends.push(text.len());
        }
        self.ensure_unchanged(&reader.get_ref().metadata().map_err(io_error)?)?;
        Ok(ServedJokes { text, ends })
    }

    /// Turns the raw bytes read at a joke's offsets into its served form. Bytes that are not
    /// UTF-8 cannot be what the index saw (it checked every line), so they mean the file changed.
    pub fn served_from_raw(&self, mut raw: Vec<u8>) -> Result<String, ReadError> {
        self.decode(&mut raw);
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

    /// Decodes raw bytes read at the index's offsets in place, when the file is ROT13-encoded.
    pub(crate) fn decode(&self, raw: &mut [u8]) {
        if self.rot13 {
            rot13(raw);
        }
    }

    fn changed(&self) -> ReadError {
        ReadError::changed(&self.path)
    }
}

/// ROT13 in place: each ASCII letter moves 13 places along the alphabet (so doing it twice
/// gives the text back); every other byte, UTF-8 sequences included, stays as it is.
pub fn rot13(bytes: &mut [u8]) {
    for byte in bytes {
        match *byte {
            b'a'..=b'z' => *byte = b'a' + (*byte - b'a' + 13) % 26,
            b'A'..=b'Z' => *byte = b'A' + (*byte - b'A' + 13) % 26,
            _ => {}
        }
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
            raw.map(served_form).ok_or_else(|| {
                let before = text.get(..span.bytes.start as usize).unwrap_or(text);
                InvalidUtf8 {
                    line: 1 + memchr::memchr_iter(b'\n', before).count() as u64,
                }
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

/// The 0-based line range (end exclusive) of each of `spans` (in file order, as [`spans_in`]
/// returns them) in `text`: what [`Index::line_ranges`] counts for a file holding these bytes.
pub fn line_ranges_in(text: &[u8], spans: &[JokeSpan]) -> Vec<Range<u64>> {
    // Spans past the end of `text` are not from this text; they get no lines.
    scan::line_ranges(text, spans).unwrap_or_default()
}

/// Every joke of a file in served form, in one buffer: joke `n` is `text[ends[n - 1]..ends[n]]`
/// (from 0 for the first). Built by [`Index::read_served_blocking`]; `T` is the buffer, a
/// `String` until [`map_text`](Self::map_text) turns it into something else (the finale makes it
/// a `bytes::Bytes`, so each connection holds a slice of it, not a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedJokes<T = String> {
    text: T,
    ends: Vec<usize>,
}

impl<T> ServedJokes<T> {
    /// How many jokes.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no joke (never, for one read from an index).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Where joke `number` lies in the buffer.
    pub fn range(&self, number: usize) -> Option<Range<usize>> {
        let end = *self.ends.get(number)?;
        let start = number
            .checked_sub(1)
            .map_or(0, |previous| self.ends[previous]);
        Some(start..end)
    }

    /// The buffer holding every joke, one after the other.
    pub fn text(&self) -> &T {
        &self.text
    }

    /// The same jokes, with the buffer turned into another type by `convert` (which must keep
    /// its bytes as they are).
    pub fn map_text<U>(self, convert: impl FnOnce(T) -> U) -> ServedJokes<U> {
        ServedJokes {
            text: convert(self.text),
            ends: self.ends,
        }
    }
}

impl ServedJokes<String> {
    /// Joke `number` in served form.
    pub fn get(&self, number: usize) -> Option<&str> {
        self.range(number).map(|range| &self.text[range])
    }

    /// The jokes in file order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|number| self.get(number))
    }
}

/// In-memory text that is not UTF-8, with the 1-based line where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: invalid UTF-8")]
pub struct InvalidUtf8 {
    pub line: u64,
}
