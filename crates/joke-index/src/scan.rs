//! The one pass over a jokes file: split it into lines with `memchr`, classify each line, and
//! collect the byte and line range of every joke for both formats at once.
//!
//! The scanner never holds more than one fixed-size read buffer: a line is classified while it
//! streams past, so a 1 GB file (or a 1 GB line) costs the same memory as a small one.

use std::io::{self, Read};
use std::ops::Range;

use memchr::memchr;

use crate::Format;

/// Size of the single read buffer the scanner uses.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// Where one joke lives in the file.
///
/// `bytes` runs from the start of the joke's first non-blank line to the end of its last
/// non-blank line, line terminator included, so reading exactly that range and applying
/// [`served_form`](crate::served_form) gives the served bytes. `lines` holds 0-based line
/// numbers, end exclusive.
// ANCHOR: joke_span
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JokeSpan {
    pub bytes: Range<u64>,
    pub lines: Range<u64>,
}
// ANCHOR_END: joke_span

impl JokeSpan {
    /// Length of the raw range in bytes.
    pub fn byte_len(&self) -> u64 {
        self.bytes.end - self.bytes.start
    }
}

/// What one line is, decided byte by byte as it streams past.
///
/// A trailing `\r` is held back (`cr_pending`) until we know whether the line ends right after
/// it: a final `\r` belongs to a CRLF line ending and is ignored, any other `\r` is content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Nothing seen yet.
    Empty,
    /// Only dashes so far (count saturates; three are all we need to know about).
    Dashes(u8),
    /// Dashes followed by spaces and tabs only.
    DashesThenBlank(u8),
    /// Exactly one `%` so far.
    Percent,
    /// Only spaces and tabs so far.
    Blank,
    /// Anything else: a line of text.
    Text,
}

#[derive(Debug, Clone, Copy)]
struct LineShape {
    shape: Shape,
    cr_pending: bool,
}

impl LineShape {
    const START: LineShape = LineShape {
        shape: Shape::Empty,
        cr_pending: false,
    };

    // ANCHOR: push_byte
    fn push(&mut self, byte: u8) {
        if self.cr_pending {
            // The `\r` was not the end of the line after all: it is content.
            self.cr_pending = false;
            self.shape = Shape::Text;
        }
        if byte == b'\r' {
            self.cr_pending = true;
            return;
        }
        self.shape = match (self.shape, byte) {
            (Shape::Text, _) => Shape::Text,
            (Shape::Empty, b'-') => Shape::Dashes(1),
            (Shape::Empty, b'%') => Shape::Percent,
            (Shape::Empty | Shape::Blank, b' ' | b'\t') => Shape::Blank,
            (Shape::Dashes(n), b'-') => Shape::Dashes(n.saturating_add(1)),
            (Shape::Dashes(n) | Shape::DashesThenBlank(n), b' ' | b'\t') => {
                Shape::DashesThenBlank(n)
            }
            _ => Shape::Text,
        };
    }
    // ANCHOR_END: push_byte

    /// Classifies a segment of the current line; returns early once the line is plain text,
    /// because nothing after that can change its class.
    fn push_all(&mut self, segment: &[u8]) {
        for &byte in segment {
            self.push(byte);
            if self.shape == Shape::Text && !self.cr_pending {
                return;
            }
        }
    }

    // ANCHOR: line_class
    fn class(&self) -> LineClass {
        match self.shape {
            Shape::Empty | Shape::Blank => LineClass::Blank,
            Shape::Dashes(n) | Shape::DashesThenBlank(n) if n >= 3 => LineClass::DashedSeparator,
            Shape::Percent => LineClass::FortuneSeparator,
            _ => LineClass::Text,
        }
    }
    // ANCHOR_END: line_class
}

/// The class of a whole line, as the scanner sees it (see [`classify_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineClass {
    /// Only spaces and tabs (or nothing).
    Blank,
    /// Three or more dashes, then optional spaces/tabs.
    DashedSeparator,
    /// Exactly `%`.
    FortuneSeparator,
    /// Anything else.
    Text,
}

/// Classifies one line (given without its `\n`; a final `\r` is ignored) by the same rules
/// the index uses: blank, a dashed separator, a fortune separator, or text.
///
/// Tools that look at lines one by one (`joke-index check`, say) use it so that they can never
/// disagree with the index about what a separator is.
pub fn classify_line(line: &[u8]) -> LineClass {
    let mut shape = LineShape::START;
    shape.push_all(line);
    shape.class()
}

/// Collects the jokes of one format as lines go by.
#[derive(Debug, Default)]
struct Collector {
    jokes: Vec<JokeSpan>,
    /// First non-blank line of the joke being collected: (byte offset, line number).
    first: Option<(u64, u64)>,
    /// End of the last non-blank line so far: (byte offset after it, line number after it).
    last: (u64, u64),
    separators: u64,
}

impl Collector {
    fn line(&mut self, is_separator: bool, class: LineClass, start: u64, end: u64, number: u64) {
        if is_separator {
            self.separators += 1;
            self.finish();
        } else if class != LineClass::Blank {
            self.first.get_or_insert((start, number));
            self.last = (end, number + 1);
        }
    }

    fn finish(&mut self) {
        if let Some((start, first_line)) = self.first.take() {
            self.jokes.push(JokeSpan {
                bytes: start..self.last.0,
                lines: first_line..self.last.1,
            });
        }
    }
}

/// Incremental UTF-8 check that copes with a character split across two read buffers.
///
/// It checks whole read buffers, not lines: one `from_utf8` over 64 KiB runs at memory speed
/// (it has a fast path for ASCII), where one call per short line cost more than everything
/// else the scanner does. A newline can never be part of a multi-byte character, so a
/// character cut short by the end of its line is still an error.
#[derive(Debug, Default)]
struct Utf8Check {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Check {
    /// Checks the next buffer of the file. `Err(offset)` means invalid UTF-8 starting at that
    /// offset in `piece` (0 when the character carried over from the previous buffer is bad).
    fn feed(&mut self, piece: &[u8]) -> Result<(), usize> {
        let mut rest = piece;
        if self.carry_len > 0 {
            let width = utf8_width(self.carry[0]);
            let take = (width - self.carry_len).min(rest.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&rest[..take]);
            self.carry_len += take;
            rest = &rest[take..];
            if self.carry_len < width {
                return Ok(()); // still incomplete; the next piece may finish it
            }
            std::str::from_utf8(&self.carry[..width]).map_err(|_| 0usize)?;
            self.carry_len = 0;
        }
        let skipped = piece.len() - rest.len();
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // An incomplete character at the end of the piece: keep it for later.
                let tail = &rest[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                Ok(())
            }
            Err(e) => Err(skipped + e.valid_up_to()),
        }
    }

    /// The file ended: an unfinished character is an error.
    fn end(&mut self) -> Result<(), ()> {
        if self.carry_len == 0 {
            Ok(())
        } else {
            self.carry_len = 0;
            Err(())
        }
    }
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// What a scan found.
#[derive(Debug)]
pub(crate) struct Scan {
    pub format: Format,
    pub jokes: Vec<JokeSpan>,
    pub len: u64,
    pub longest_line: LongestLine,
}

/// The longest line of a file: its length in bytes (line ending not counted) and its 1-based
/// number. Servers refuse files whose lines are longer than a streaming act could buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LongestLine {
    pub bytes: u64,
    pub line: u64,
}

/// How a line ended: with a `\n` (or at the end of the file), after a `\r` or not.
#[derive(Debug, Clone, Copy)]
struct Ending {
    newline: bool,
    carriage_return: bool,
}

/// Why a scan stopped.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// Invalid UTF-8 on this 1-based line.
    InvalidUtf8 {
        line: u64,
    },
    Io(io::Error),
}

/// Scans `reader` to the end. With `format` `None` the format is detected: the one whose
/// separator lines are more numerous wins, dashed on a tie (a file with no separator at all is
/// one dashed joke).
pub(crate) fn scan(mut reader: impl Read, format: Option<Format>) -> Result<Scan, ScanError> {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut dashed = Collector::default();
    let mut fortune = Collector::default();
    let mut utf8 = Utf8Check::default();
    let mut shape = LineShape::START;
    let mut line_start = 0u64;
    let mut line_number = 0u64;
    let mut offset = 0u64;

    let mut longest_line = LongestLine::default();
    // The last byte of the current line before its `\n` (0 when none yet), which may sit in an
    // earlier read buffer than the `\n`.
    let mut last_byte = 0u8;
    let mut end_line = |shape: &LineShape, start: u64, end: u64, number: u64, ending: Ending| {
        // The line's bytes without its `\n`, and without a `\r` that ends it.
        let bytes = end - start - u64::from(ending.newline) - u64::from(ending.carriage_return);
        if bytes > longest_line.bytes {
            longest_line = LongestLine {
                bytes,
                line: number + 1,
            };
        }
        let class = shape.class();
        dashed.line(
            class == LineClass::DashedSeparator,
            class,
            start,
            end,
            number,
        );
        fortune.line(
            class == LineClass::FortuneSeparator,
            class,
            start,
            end,
            number,
        );
    };

    loop {
        let filled = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ScanError::Io(e)),
        };
        let mut chunk = &buf[..filled];
        utf8.feed(chunk).map_err(|bad_at| ScanError::InvalidUtf8 {
            // The lines that ended before the bad byte, plus this one; 1-based.
            line: line_number + 1 + memchr::memchr_iter(b'\n', &chunk[..bad_at]).count() as u64,
        })?;
        while !chunk.is_empty() {
            let (piece, newline) = match memchr(b'\n', chunk) {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            shape.push_all(piece);
            if let Some(&byte) = piece.last() {
                last_byte = byte;
            }
            let consumed = piece.len() + usize::from(newline);
            offset += consumed as u64;
            chunk = &chunk[consumed..];
            if newline {
                let ending = Ending {
                    newline: true,
                    carriage_return: last_byte == b'\r',
                };
                end_line(&shape, line_start, offset, line_number, ending);
                shape = LineShape::START;
                last_byte = 0;
                line_start = offset;
                line_number += 1;
            }
        }
    }
    utf8.end().map_err(|()| ScanError::InvalidUtf8 {
        line: line_number + 1,
    })?;
    if offset > line_start {
        let ending = Ending {
            newline: false,
            carriage_return: last_byte == b'\r',
        };
        end_line(&shape, line_start, offset, line_number, ending);
    }
    dashed.finish();
    fortune.finish();

    let format = format.unwrap_or(if fortune.separators > dashed.separators {
        Format::Fortune
    } else {
        Format::Dashed
    });
    let jokes = match format {
        Format::Dashed => dashed.jokes,
        Format::Fortune => fortune.jokes,
    };
    Ok(Scan {
        format,
        jokes,
        len: offset,
        longest_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(line: &[u8]) -> LineClass {
        classify_line(line)
    }

    #[test]
    fn only_dashes_make_a_separator() {
        for sep in ["---", "----------", "---  ", "---\t", "---\r", "--- \t\r"] {
            assert_eq!(
                class_of(sep.as_bytes()),
                LineClass::DashedSeparator,
                "{sep:?}"
            );
        }
    }

    #[test]
    fn lines_that_merely_start_with_dashes_are_text() {
        // The seed article's `starts_with("---")` rule split jokes on both of these.
        for text in [
            "--->>> x <<<---",
            "-----    -----",
            "--",
            "-- -",
            "---\rx",
            "- - -",
        ] {
            assert_eq!(class_of(text.as_bytes()), LineClass::Text, "{text:?}");
        }
    }

    #[test]
    fn percent_separator_is_exact() {
        assert_eq!(class_of(b"%"), LineClass::FortuneSeparator);
        assert_eq!(class_of(b"%\r"), LineClass::FortuneSeparator);
        for text in ["% ", "%%", " %", "%x"] {
            assert_eq!(class_of(text.as_bytes()), LineClass::Text, "{text:?}");
        }
    }

    #[test]
    fn blank_lines() {
        for blank in ["", " ", "\t \t", "\r", "  \r"] {
            assert_eq!(class_of(blank.as_bytes()), LineClass::Blank, "{blank:?}");
        }
        assert_eq!(class_of(b" \r "), LineClass::Text);
    }

    #[test]
    fn utf8_split_across_pieces_is_accepted() {
        let text = "na\u{ef}ve \u{1F980}".as_bytes();
        for split in 0..text.len() {
            let mut check = Utf8Check::default();
            check.feed(&text[..split]).unwrap();
            check.feed(&text[split..]).unwrap();
            check.end().unwrap();
        }
    }

    #[test]
    fn utf8_errors_are_caught_even_when_split() {
        let bad = b"ab\xE2\x82x";
        for split in 0..bad.len() {
            let mut check = Utf8Check::default();
            let valid = check.feed(&bad[..split]).is_ok()
                && check.feed(&bad[split..]).is_ok()
                && check.end().is_ok();
            assert!(!valid, "split at {split}");
        }
        let mut truncated = Utf8Check::default();
        truncated.feed(b"\xF0\x9F").unwrap();
        assert!(truncated.end().is_err());
    }

    /// A reader that hands out one byte at a time, to push every line across buffer edges.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn byte_by_byte_reading_finds_the_same_jokes() {
        let text = "a\r\n---\r\n\r\nb \u{e9}\n\n c\n--- \nd";
        let whole = scan(text.as_bytes(), None).unwrap();
        let trickled = scan(Trickle(text.as_bytes()), None).unwrap();
        assert_eq!(whole.jokes, trickled.jokes);
        assert_eq!(whole.jokes.len(), 3);
        assert_eq!(whole.jokes[1].lines, 3..6);
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_line_whatever_the_buffer_edges() {
        let cases: [(&[u8], u64); 5] = [
            (b"a\nb\n\xff\n", 3),
            (b"a\xe2\x82\nb\n", 1),
            (b"ok\n\xe2\x82", 2),
            (b"\xe9t\xe9\n", 1),
            (b"\xc3\xa9\n\xf0\x9f\xa6\x80\n\n-\xf0\x9f\x90", 4),
        ];
        for (text, line) in cases {
            for result in [scan(text, None), scan(Trickle(text), None)] {
                assert!(
                    matches!(result, Err(ScanError::InvalidUtf8 { line: l }) if l == line),
                    "{text:?}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn format_detection_counts_separators() {
        let fortune = "a\n%\nb\n---\nc\n%\nd\n";
        assert_eq!(
            scan(fortune.as_bytes(), None).unwrap().format,
            Format::Fortune
        );
        let dashed = "a\n---\nb\n%\nc\n---\nd\n";
        assert_eq!(
            scan(dashed.as_bytes(), None).unwrap().format,
            Format::Dashed
        );
        let none = "just one joke\n";
        assert_eq!(scan(none.as_bytes(), None).unwrap().format, Format::Dashed);
    }

    #[test]
    fn forced_format_ignores_the_other_separator() {
        let text = "a\n%\nb\n";
        let dashed = scan(text.as_bytes(), Some(Format::Dashed)).unwrap();
        assert_eq!(dashed.jokes.len(), 1);
        assert_eq!(dashed.jokes[0].bytes, 0..6);
    }

    #[test]
    fn the_longest_line_is_measured_without_its_line_ending() {
        let text = "ab\r\nabcd\n---\nabc\r\n\r\nxyz";
        let lines = scan(text.as_bytes(), None).unwrap();
        assert_eq!(lines.longest_line, LongestLine { bytes: 4, line: 2 });
        let crlf = scan("abcde\r\n".as_bytes(), None).unwrap();
        assert_eq!(crlf.longest_line, LongestLine { bytes: 5, line: 1 });
        let last = scan("a\nlast line".as_bytes(), None).unwrap();
        assert_eq!(last.longest_line, LongestLine { bytes: 9, line: 2 });
        // Split across read buffers, a line still counts whole.
        let long = format!("x\n{}\ny", "z".repeat(3 * READ_BUFFER));
        let trickled = scan(Trickle(long.as_bytes()), None).unwrap();
        assert_eq!(
            trickled.longest_line,
            LongestLine {
                bytes: 3 * READ_BUFFER as u64,
                line: 2
            }
        );
    }
}
