//! strfile(8) `.dat` files: written byte-identical to Debian's `strfile`, and read back.
//!
//! fortune(6) does not scan a fortune file to pick a quote: it reads the file's `.dat` index,
//! which `strfile FILE` writes, picks a record number, and seeks straight to that record's
//! offset. It is the same idea as our [`Index`](crate::Index), in a format older than most of
//! its readers.
//!
//! # The format
//!
//! All numbers are big-endian `u32`.
//!
//! | bytes | field      | meaning                                                       |
//! |-------|------------|---------------------------------------------------------------|
//! | 0..4  | `version`  | always 2                                                      |
//! | 4..8  | `numstr`   | number of records                                             |
//! | 8..12 | `longlen`  | length of the longest record                                  |
//! | 12..16| `shortlen` | length of the shortest record (`0xffffffff` when there is none) |
//! | 16..20| `flags`    | [`FLAG_RANDOM`], [`FLAG_ORDERED`], [`FLAG_ROTATED`]; 0 by default |
//! | 20    | `delim`    | the delimiter byte, `%`                                       |
//! | 21..24| padding    | zero                                                          |
//!
//! Then `numstr + 1` offsets: where each record starts, and last the length of the text file.
//! A record's length counts its bytes up to (not including) the delimiter line that ends it.
//!
//! # strfile's notion of a record (which is not quite ours)
//!
//! We reproduce what `strfile` does byte for byte, quirks included, because fortune(6) will
//! read our `.dat` with strfile's idea of where records are. Found by running Debian's strfile
//! (fortune-mod 1.99.1) on small files; the golden files in `tests/fixtures/` pin each one.
//!
//! - strfile reads the text with `fgets` into a 256-byte buffer, so it sees a line in chunks of
//!   at most 255 bytes, and a chunk that is exactly `%\n` is a delimiter. A line is therefore a
//!   delimiter when it is `%\n`, **and also** when it is 255·k bytes of anything followed by
//!   `%\n` (a 256-byte line ending in `%`, say): the text before the `%` ends the record.
//! - `%\r\n` is *not* a delimiter (so a CRLF fortune file is one big record), nor is a final
//!   `%` without a newline. Our scanner treats both as separators.
//! - A record of zero bytes (two delimiters in a row, or one at the start of the file) is
//!   dropped: strfile overwrites the offset it just wrote. But a record made only of blank lines
//!   has a non-zero length and **is counted**, where our index skips it. So on a file with
//!   blank-only records `numstr` is larger than our joke count.
//! - `shortlen` starts at `0xffffffff` and stays there when the file has no record at all;
//!   `longlen` starts at 0.
//!
//! strfile keeps offsets in 32-bit integers; we refuse a text file longer than `u32::MAX`
//! bytes ([`StrfileError::TooLarge`]) rather than write offsets that wrap around.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use memchr::memchr;

use crate::scan::READ_BUFFER;

/// The only `.dat` version Debian's strfile writes (and fortune reads).
pub const STRFILE_VERSION: u32 = 2;

/// Length of the fixed header that comes before the offsets.
pub const HEADER_LEN: usize = 24;

/// The delimiter strfile uses unless told otherwise with `-c`.
pub const DEFAULT_DELIMITER: u8 = b'%';

/// `flags` bit: the offsets were shuffled (`strfile -r`).
pub const FLAG_RANDOM: u32 = 0x1;
/// `flags` bit: the offsets were sorted by record text (`strfile -o`).
pub const FLAG_ORDERED: u32 = 0x2;
/// `flags` bit: the records are ROT13-encoded (`strfile -x`).
pub const FLAG_ROTATED: u32 = 0x4;

/// strfile reads with `fgets(buffer, 256, file)`, which returns at most 255 bytes at a time.
/// The chunk boundaries this makes inside long lines decide what strfile takes for a delimiter.
const FGETS_CHUNK: u64 = 255;

/// The 24-byte header of a `.dat` file, in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StrfileHeader {
    pub version: u32,
    /// Number of records.
    pub numstr: u32,
    /// Length in bytes of the longest record.
    pub longlen: u32,
    /// Length in bytes of the shortest record, `u32::MAX` when there is no record.
    pub shortlen: u32,
    pub flags: u32,
    /// The delimiter byte (`%`).
    pub delim: u8,
}

impl StrfileHeader {
    /// The header in the file's big-endian layout, padding included.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        let fields = [
            self.version,
            self.numstr,
            self.longlen,
            self.shortlen,
            self.flags,
        ];
        for (slot, field) in bytes.chunks_exact_mut(4).zip(fields) {
            slot.copy_from_slice(&field.to_be_bytes());
        }
        bytes[20] = self.delim;
        bytes
    }
}

/// A strfile index: the header and the `numstr + 1` offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strfile {
    header: StrfileHeader,
    offsets: Vec<u32>,
}

/// Why a `.dat` file's bytes are not a strfile index. [`StrfileError::InvalidDat`] adds the
/// file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatProblem {
    #[error("it is {len} bytes long, shorter than the {HEADER_LEN}-byte header")]
    TooShort { len: u64 },

    #[error("version {version}, but only version {STRFILE_VERSION} exists")]
    UnsupportedVersion { version: u32 },

    #[error(
        "its header announces {numstr} records, so it should be {expected} bytes long, but it is {len}"
    )]
    LengthMismatch {
        numstr: u32,
        expected: u64,
        len: u64,
    },

    #[error("offset {position} ({offset}) comes before the one preceding it ({previous})")]
    OffsetsOutOfOrder {
        position: usize,
        offset: u32,
        previous: u32,
    },
}

/// Why a strfile index could not be built, written or read. Every variant names its file.
#[derive(Debug, thiserror::Error)]
pub enum StrfileError {
    /// Opening or reading a file failed (including: it does not exist, or is a directory).
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Creating or writing the `.dat` file failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The text file is too long for strfile's 32-bit offsets.
    #[error(
        "{}: {len} bytes is too long for a strfile index (its offsets are 32-bit, at most {} bytes)",
        path.display(),
        u32::MAX
    )]
    TooLarge { path: PathBuf, len: u64 },

    /// The `.dat` file is not a valid strfile index.
    #[error("{}: not a valid strfile index: {problem}", path.display())]
    InvalidDat {
        path: PathBuf,
        #[source]
        problem: DatProblem,
    },
}

/// The text grew past `u32::MAX` bytes, the most strfile's offsets can address; `len` is how
/// far we had read when we noticed. ([`StrfileError::TooLarge`] is the same, with the file.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes is too long for a strfile index (its offsets are 32-bit)")]
pub struct TooLong {
    pub len: u64,
}

/// Follows strfile's main loop as the text streams past (see the module docs for the rules).
#[derive(Debug)]
struct StrfileBuilder {
    offsets: Vec<u32>,
    longlen: u32,
    shortlen: u32,
    /// Where the current record starts: just after the last delimiter (strfile's `last_off`).
    record_start: u64,
    /// Where the current line starts.
    line_start: u64,
    /// Bytes seen so far.
    position: u64,
    /// The byte just before `position`, which may have arrived in the previous read buffer;
    /// it tells whether a newline closes a `%\n` chunk.
    previous_byte: Option<u8>,
}

impl StrfileBuilder {
    fn new() -> Self {
        StrfileBuilder {
            // strfile writes the offset of the first record before reading anything.
            offsets: vec![0],
            longlen: 0,
            shortlen: u32::MAX,
            record_start: 0,
            line_start: 0,
            position: 0,
            previous_byte: None,
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), TooLong> {
        let len = self.position + chunk.len() as u64;
        if len > u64::from(u32::MAX) {
            return Err(TooLong { len });
        }
        while let Some(newline) = memchr(b'\n', chunk) {
            let before_newline = match newline {
                0 => self.previous_byte,
                n => Some(chunk[n - 1]),
            };
            let line_end = self.position + newline as u64 + 1;
            // fgets hands out the line in 255-byte chunks; the last one is `%\n` exactly when
            // the line's length (newline included) is 2 more than a multiple of 255 and its
            // last byte before the newline is the delimiter.
            if (line_end - self.line_start) % FGETS_CHUNK == 2
                && before_newline == Some(DEFAULT_DELIMITER)
            {
                self.delimiter(line_end - 2);
            }
            self.position = line_end;
            self.line_start = line_end;
            self.previous_byte = Some(b'\n');
            chunk = &chunk[newline + 1..];
        }
        if let Some(&last) = chunk.last() {
            self.previous_byte = Some(last);
            self.position += chunk.len() as u64;
        }
        Ok(())
    }

    /// A delimiter chunk starts at `at` (and is 2 bytes long).
    fn delimiter(&mut self, at: u64) {
        let after = at + 2;
        if at == self.record_start {
            // A zero-length record: strfile goes back and overwrites the offset it wrote last
            // (which always is `record_start`) with the position after this delimiter.
            if let Some(last) = self.offsets.last_mut() {
                *last = to_offset(after);
            }
        } else {
            self.end_record(at - self.record_start, after);
        }
        self.record_start = after;
    }

    fn end_record(&mut self, length: u64, next_offset: u64) {
        let length = to_offset(length);
        self.longlen = self.longlen.max(length);
        self.shortlen = self.shortlen.min(length);
        self.offsets.push(to_offset(next_offset));
    }

    fn finish(mut self) -> Strfile {
        // At end of file strfile closes the last record if it has any byte (a final `%`
        // without newline is one of them), and adds nothing when the file ended on a delimiter.
        let length = self.position - self.record_start;
        if length > 0 {
            self.end_record(length, self.position);
        }
        Strfile {
            header: StrfileHeader {
                version: STRFILE_VERSION,
                numstr: to_offset(self.offsets.len() as u64 - 1),
                longlen: self.longlen,
                shortlen: self.shortlen,
                flags: 0,
                delim: DEFAULT_DELIMITER,
            },
            offsets: self.offsets,
        }
    }
}

/// Positions never exceed `u32::MAX`: [`StrfileBuilder::feed`] refuses longer input first.
fn to_offset(position: u64) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

impl Strfile {
    /// Indexes a fortune file's raw bytes the way `strfile FILE` does with default options.
    /// Fails only for input longer than `u32::MAX` bytes.
    pub fn from_text_bytes(text: &[u8]) -> Result<Strfile, TooLong> {
        let mut builder = StrfileBuilder::new();
        builder.feed(text)?;
        Ok(builder.finish())
    }

    /// Indexes the fortune file at `path` as `strfile` does, reading it once through a single
    /// fixed-size buffer (a large file is never held in memory).
    pub fn from_text_file(path: impl AsRef<Path>) -> Result<Strfile, StrfileError> {
        let path = path.as_ref();
        let read_error = |source| StrfileError::Read {
            path: path.into(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if metadata.is_dir() {
            return Err(read_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, not a fortune file",
            )));
        }
        if metadata.len() > u64::from(u32::MAX) {
            return Err(StrfileError::TooLarge {
                path: path.into(),
                len: metadata.len(),
            });
        }
        let mut builder = StrfileBuilder::new();
        let mut buffer = vec![0u8; READ_BUFFER];
        loop {
            let filled = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            builder
                .feed(&buffer[..filled])
                .map_err(|TooLong { len }| StrfileError::TooLarge {
                    path: path.into(),
                    len,
                })?;
        }
        Ok(builder.finish())
    }

    /// The header.
    pub fn header(&self) -> &StrfileHeader {
        &self.header
    }

    /// All `numstr + 1` offsets, the last being the text file's length (in file order).
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// Number of records (`numstr`).
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when the text has no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `.dat` file's bytes: header, then the offsets, all big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 4 * self.offsets.len());
        bytes.extend_from_slice(&self.header.to_bytes());
        for offset in &self.offsets {
            bytes.extend_from_slice(&offset.to_be_bytes());
        }
        bytes
    }

    /// Writes the `.dat` file at `path`, replacing any file there.
    pub fn write_dat(&self, path: impl AsRef<Path>) -> Result<(), StrfileError> {
        let path = path.as_ref();
        let write_error = |source| StrfileError::Write {
            path: path.into(),
            source,
        };
        let mut file = File::create(path).map_err(write_error)?;
        file.write_all(&self.to_bytes()).map_err(write_error)?;
        file.flush().map_err(write_error)
    }

    /// Parses the bytes of a `.dat` file, checking that the length matches `numstr` and, unless
    /// the flags say the offsets were shuffled or sorted, that they never go backwards.
    pub fn from_dat_bytes(bytes: &[u8]) -> Result<Strfile, DatProblem> {
        let len = bytes.len() as u64;
        let (header_bytes, offset_bytes) = match bytes.split_first_chunk::<HEADER_LEN>() {
            Some(split) => split,
            None => return Err(DatProblem::TooShort { len }),
        };
        let field = |index: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&header_bytes[4 * index..4 * index + 4]);
            u32::from_be_bytes(word)
        };
        let header = StrfileHeader {
            version: field(0),
            numstr: field(1),
            longlen: field(2),
            shortlen: field(3),
            flags: field(4),
            delim: header_bytes[20],
        };
        if header.version != STRFILE_VERSION {
            return Err(DatProblem::UnsupportedVersion {
                version: header.version,
            });
        }
        let expected = HEADER_LEN as u64 + 4 * (u64::from(header.numstr) + 1);
        if len != expected {
            return Err(DatProblem::LengthMismatch {
                numstr: header.numstr,
                expected,
                len,
            });
        }
        let offsets: Vec<u32> = offset_bytes
            .chunks_exact(4)
            .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
            .collect();
        if header.flags & (FLAG_RANDOM | FLAG_ORDERED) == 0 {
            for (position, pair) in offsets.windows(2).enumerate() {
                if pair[1] < pair[0] {
                    return Err(DatProblem::OffsetsOutOfOrder {
                        position: position + 1,
                        offset: pair[1],
                        previous: pair[0],
                    });
                }
            }
        }
        Ok(Strfile { header, offsets })
    }

    /// Reads and checks the `.dat` file at `path`.
    pub fn read_dat(path: impl AsRef<Path>) -> Result<Strfile, StrfileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| StrfileError::Read {
            path: path.into(),
            source,
        })?;
        Strfile::from_dat_bytes(&bytes).map_err(|problem| StrfileError::InvalidDat {
            path: path.into(),
            problem,
        })
    }
}

/// Writes the strfile index of the fortune file `text_path` to `dat_path`, as
/// `strfile TEXT DAT` does, and returns it.
pub fn write_dat_for(
    text_path: impl AsRef<Path>,
    dat_path: impl AsRef<Path>,
) -> Result<Strfile, StrfileError> {
    let strfile = Strfile::from_text_file(text_path)?;
    strfile.write_dat(dat_path)?;
    Ok(strfile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets_of(text: &[u8]) -> Vec<u32> {
        Strfile::from_text_bytes(text).unwrap().offsets
    }

    #[test]
    fn header_and_offsets_of_a_simple_file() {
        let strfile = Strfile::from_text_bytes(b"ab\n%\ncde\n%\n").unwrap();
        assert_eq!(strfile.offsets(), [0, 5, 11]);
        let header = strfile.header();
        assert_eq!((header.numstr, header.longlen, header.shortlen), (2, 4, 3));
    }

    #[test]
    fn empty_text_has_no_record_and_shortlen_stays_at_its_start_value() {
        let strfile = Strfile::from_text_bytes(b"").unwrap();
        assert_eq!(strfile.offsets(), [0]);
        assert_eq!(strfile.header().longlen, 0);
        assert_eq!(strfile.header().shortlen, u32::MAX);
        assert!(strfile.is_empty());
    }

    #[test]
    fn zero_length_records_overwrite_the_last_offset() {
        assert_eq!(offsets_of(b"%\na\n%\nb\n"), [2, 6, 8]);
        assert_eq!(offsets_of(b"a\n%\n%\nb\n%\n"), [0, 6, 10]);
        assert_eq!(offsets_of(b"%\n%\n"), [4]);
    }

    #[test]
    fn blank_only_records_count() {
        assert_eq!(offsets_of(b"a\n%\n\n%\nb\n"), [0, 4, 7, 9]);
    }

    #[test]
    fn crlf_and_final_percent_are_not_delimiters() {
        assert_eq!(offsets_of(b"a\r\n%\r\nb\r\n"), [0, 9]);
        assert_eq!(offsets_of(b"a\n%\nb\n%"), [0, 4, 7]);
    }

    #[test]
    fn a_percent_after_255_bytes_of_a_line_is_a_delimiter() {
        for k in 1..4 {
            let mut text = b"a\n%\n".to_vec();
            text.extend(std::iter::repeat_n(b'x', 255 * k));
            text.extend_from_slice(b"%\nb\n");
            let end_of_long = 4 + 255 * k as u32;
            assert_eq!(
                offsets_of(&text),
                [0, 4, end_of_long + 2, end_of_long + 4],
                "k = {k}"
            );
        }
        let mut one_off = b"a\n%\n".to_vec();
        one_off.extend(std::iter::repeat_n(b'x', 254));
        one_off.extend_from_slice(b"%\nb\n");
        assert_eq!(offsets_of(&one_off).len(), 3);
    }

    #[test]
    fn feeding_byte_by_byte_gives_the_same_index() {
        let mut text = b"%\n\n%\na\n%\n%\n".to_vec();
        text.extend(std::iter::repeat_n(b'y', 510));
        text.extend_from_slice(b"%\ntail");
        let mut builder = StrfileBuilder::new();
        for byte in &text {
            builder.feed(std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(builder.finish(), Strfile::from_text_bytes(&text).unwrap());
    }

    #[test]
    fn dat_bytes_round_trip() {
        let strfile = Strfile::from_text_bytes(b"one\n%\ntwo\n%\nthree\n").unwrap();
        let bytes = strfile.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 4 * 4);
        assert_eq!(&bytes[..4], &[0, 0, 0, 2]);
        assert_eq!(&bytes[20..24], b"%\0\0\0");
        assert_eq!(Strfile::from_dat_bytes(&bytes).unwrap(), strfile);
    }

    #[test]
    fn bad_dat_bytes_are_refused() {
        let good = Strfile::from_text_bytes(b"a\n%\nb\n").unwrap().to_bytes();
        assert_eq!(
            Strfile::from_dat_bytes(&good[..10]),
            Err(DatProblem::TooShort { len: 10 })
        );
        assert!(matches!(
            Strfile::from_dat_bytes(&good[..good.len() - 1]),
            Err(DatProblem::LengthMismatch { .. })
        ));
        let mut version_1 = good.clone();
        version_1[3] = 1;
        assert_eq!(
            Strfile::from_dat_bytes(&version_1),
            Err(DatProblem::UnsupportedVersion { version: 1 })
        );
        let mut backwards = good.clone();
        backwards[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&99u32.to_be_bytes());
        assert!(matches!(
            Strfile::from_dat_bytes(&backwards),
            Err(DatProblem::OffsetsOutOfOrder { position: 2, .. })
        ));
        // Shuffled offsets are fine when the flags say so.
        backwards[19] = FLAG_RANDOM as u8;
        assert!(Strfile::from_dat_bytes(&backwards).is_ok());
        // A huge numstr must not overflow or allocate.
        let mut huge = good;
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Strfile::from_dat_bytes(&huge),
            Err(DatProblem::LengthMismatch { .. })
        ));
    }

    #[test]
    fn too_long_input_is_an_error_not_a_wrapped_offset() {
        let mut builder = StrfileBuilder::new();
        builder.position = u64::from(u32::MAX) - 1;
        builder.line_start = builder.position;
        assert!(matches!(
            builder.feed(b"abc"),
            Err(TooLong { len }) if len == u64::from(u32::MAX) + 2
        ));
    }
}
