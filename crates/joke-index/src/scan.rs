//! The one pass over a jokes file: find the line ends, classify the lines that could be
//! anything but text, and collect the byte range of every joke for both formats at once.
//!
//! Why it costs a small multiple of counting newlines (`wc -l`), not more:
//!
//! - The file streams through one reused read buffer, small enough to stay in the CPU's cache
//!   while it is checked twice: once for UTF-8 in one call over the whole buffer, once for
//!   line ends.
//! - The line ends are found 64 bytes at a time: each block gives a 64-bit mask of its `\n`
//!   bytes (on x86-64, SSE2 compares gathered by `pmovmskb`), and the lines start one byte
//!   after each set bit.
//! - Only a line's first byte is looked at unless it is `-`, `%`, a space, a tab or a `\n`: no
//!   other line can be a separator or blank, so the text lines that make up most of a file cost
//!   one table lookup each. A looked-at line's end is read off the mask of its block or the
//!   next; only a line longer than that is searched for with `memchr`.
//! - Text lines are not reported one by one: a run of them is reported once, when the next blank
//!   or separator line ends it.
//!
//! What it cannot avoid is the kernel's copy of the file into the buffer, the same copy `wc -l`
//! pays, and a few dozen instructions for each line that begins with a separator's byte (in the
//! workspace's `jokes.txt` about half of them: every joke ends with a dashed line).
//!
//! A 1 GB file (or a 1 GB line) costs the same memory as a small one, plus 16 bytes per joke.

use std::io::{self, Read};
use std::ops::Range;

use memchr::memchr_iter;

use crate::{Format, RFC865_LIMIT};

/// Size of the single read buffer the scanner uses: large enough that a `read` costs little
/// next to looking at its bytes, small enough to stay in the CPU's cache while we do.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// Where one joke lives in the file.
///
/// `bytes` runs from the start of the joke's first non-blank line to the end of its last
/// non-blank line, line terminator included, so reading exactly that range and applying
/// [`served_form`](crate::served_form) gives the served bytes. Line numbers are not kept: the
/// few messages that need them count newlines on demand ([`Index::line_ranges`](crate::Index::line_ranges)).
// ANCHOR: joke_span
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JokeSpan {
    pub bytes: Range<u64>,
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

impl Default for LineShape {
    fn default() -> Self {
        LineShape::START
    }
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

/// The sizes of a file's jokes in served form (the bytes a client receives), summed up while
/// the file is scanned, so that `joke-index stats` or a cache that wants one buffer for all the
/// jokes need not read them first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServedSizes {
    /// How many jokes.
    pub jokes: u64,
    /// Their served sizes added up.
    pub total: u64,
    /// The smallest served size (0 when there is no joke).
    pub shortest: u64,
    /// The largest served size.
    pub longest: u64,
    /// How many are longer than [`RFC865_LIMIT`] bytes.
    pub over_rfc865_limit: u64,
}

impl ServedSizes {
    /// Sums up the given served sizes.
    pub fn of(sizes: impl IntoIterator<Item = u64>) -> ServedSizes {
        let mut all = ServedSizes::default();
        for size in sizes {
            all.add(size);
        }
        all
    }

    fn add(&mut self, size: u64) {
        self.shortest = if self.jokes == 0 {
            size
        } else {
            self.shortest.min(size)
        };
        self.jokes += 1;
        self.total += size;
        self.longest = self.longest.max(size);
        self.over_rfc865_limit += u64::from(size > RFC865_LIMIT as u64);
    }
}

/// A position in the file: a byte offset, and how many of the lines before it end in `\r\n`
/// (their `\r` is not served, so the served size of a joke is its byte length less the `\r`s
/// of its line endings).
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    offset: u64,
    crs: u64,
}

/// Collects the jokes of one format as lines go by.
#[derive(Debug, Default)]
struct Collector {
    jokes: Vec<JokeSpan>,
    sizes: ServedSizes,
    /// Where the first non-blank line of the joke being collected starts.
    first: Option<Mark>,
    /// The end of the last non-blank line so far, and whether that line ends in `\n` (only
    /// the last line of a file may not).
    last: Mark,
    last_has_newline: bool,
    separators: u64,
}

impl Collector {
    /// Lines of text (one or a run of them) from `start` to `end`.
    fn text(&mut self, start: Mark, end: Mark, has_newline: bool) {
        self.first.get_or_insert(start);
        self.last = end;
        self.last_has_newline = has_newline;
    }

    fn separator(&mut self) {
        self.separators += 1;
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(first) = self.first.take() {
            let raw = self.last.offset - first.offset;
            // The served form drops each line ending's `\r` and gives a last line without `\n`
            // one.
            let served = raw - (self.last.crs - first.crs) + u64::from(!self.last_has_newline);
            self.sizes.add(served);
            self.jokes.push(JokeSpan {
                bytes: first.offset..self.last.offset,
            });
        }
    }
}

/// Incremental UTF-8 check that copes with a character split across two read buffers.
///
/// It checks whole read buffers, not lines: one call over a 64 KiB buffer runs at memory speed, where
/// one call per short line cost more than everything else the scanner does. The fast check is
/// `simdutf8`'s, which only says yes or no; std's validator, which says where, runs only on a
/// buffer already known to be bad. A newline can never be part of a multi-byte character, so a
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
        // A character the buffer cuts short is kept for the next piece.
        let (whole, tail) = rest.split_at(rest.len() - unfinished_tail(rest));
        if simdutf8::basic::from_utf8(whole).is_ok() {
            self.carry[..tail.len()].copy_from_slice(tail);
            self.carry_len = tail.len();
            return Ok(());
        }
        match std::str::from_utf8(whole) {
            Err(e) => Err(skipped + e.valid_up_to()),
            // The two validators disagree: trust neither, refuse the input.
            Ok(_) => Err(skipped),
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

/// How many bytes at the end of `bytes` are the start of a multi-byte character whose other
/// bytes are not there yet (0 to 3). Whether they are valid is for the next piece to say.
fn unfinished_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 != 0x80 {
            // The last character starts here (or this is ASCII, or not UTF-8 at all).
            let width = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if width > back { back } else { 0 };
        }
    }
    0
}

/// What a scan found.
#[derive(Debug)]
pub(crate) struct Scan {
    pub format: Format,
    pub jokes: Vec<JokeSpan>,
    pub sizes: ServedSizes,
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

/// Why a scan stopped.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// Invalid UTF-8 on this 1-based line.
    InvalidUtf8 {
        line: u64,
    },
    Io(io::Error),
}

/// The class of a line without its line ending (no `\n`, no final `\r`): the rules of
/// [`class_of_line`] once the line ending is gone.
#[inline(always)]
fn class_of_body(line: &[u8]) -> LineClass {
    let is_blank = |bytes: &[u8]| bytes.iter().all(|&b| b == b' ' || b == b'\t');
    match line.first() {
        None => LineClass::Blank,
        Some(b'-') => {
            let dashes = line.iter().take_while(|&&b| b == b'-').count();
            if dashes >= 3 && is_blank(&line[dashes..]) {
                LineClass::DashedSeparator
            } else {
                LineClass::Text
            }
        }
        Some(b'%') if line.len() == 1 => LineClass::FortuneSeparator,
        Some(b' ' | b'\t') if is_blank(line) => LineClass::Blank,
        Some(_) => LineClass::Text,
    }
}

/// The class of a whole line whose bytes are all in hand (without its `\n`): the same verdict
/// as [`classify_line`], reached without walking the byte-by-byte rules. A unit test checks the
/// two agree on every line of up to six bytes built from the bytes that matter, and the fuzz
/// target checks them on whatever it makes up.
#[inline(always)]
fn class_of_line(line: &[u8]) -> LineClass {
    match line.first() {
        // Most lines: their first byte already makes them text.
        Some(b) if !matches!(b, b'-' | b'%' | b' ' | b'\t' | b'\r') => LineClass::Text,
        // A final `\r` belongs to a CRLF line ending; any other is content.
        _ => class_of_body(line.strip_suffix(b"\r").unwrap_or(line)),
    }
}

/// The positions of the `\n` bytes of `bytes`, in order.
///
/// `memchr_iter` would do, but a file of short lines gives it a call per line, and the call
/// costs more than the search. Here each 64-byte block is compared at once (the compiler turns
/// the loop into vector instructions) into a 64-bit mask, and the positions are read off the
/// mask one set bit at a time. A block without any newline hands over to `memchr`, which skips
/// a long line (or a long stretch of anything) at full speed.
#[derive(Debug)]
struct Newlines<'a> {
    bytes: &'a [u8],
    /// Where the next block starts.
    next: usize,
    /// Offset of the block `mask` came from, and its newlines not yet returned.
    base: usize,
    mask: u64,
}

impl<'a> Newlines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Newlines {
            bytes,
            next: 0,
            base: 0,
            mask: 0,
        }
    }
}

impl Newlines<'_> {
    /// The same search, started at `at` instead (positions stay those of the whole buffer).
    fn from(self, at: usize) -> Self {
        Newlines {
            next: at,
            mask: 0,
            ..self
        }
    }
}

impl Iterator for Newlines<'_> {
    type Item = usize;

    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let rest = self.bytes.get(self.next..)?;
            if rest.len() < 64 {
                // Too few for a block: the last newlines one search at a time.
                let at = self.next + memchr::memchr(b'\n', rest)?;
                self.next = at + 1;
                return Some(at);
            }
            self.base = self.next;
            self.mask = newline_mask(&rest[..64]);
            self.next += 64;
            if self.mask == 0 {
                // Jump to the block of the next newline (or the tail, if there is none).
                let skip = memchr::memchr(b'\n', &rest[64..]).unwrap_or(rest.len() - 64);
                self.next += skip - skip % 64;
            }
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.base + bit)
    }
}

/// Bit `i` is set where `block[i]` is `\n`.
///
/// On x86-64 this is SSE2 (every x86-64 processor has it): sixteen bytes compared at once, and
/// `pmovmskb` gathers the sixteen verdicts into sixteen bits. `safe_arch` wraps those
/// instructions in safe functions (this workspace forbids `unsafe`). Elsewhere the portable
/// version below gives the same mask; a unit test checks the two agree.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn newline_mask(block: &[u8]) -> u64 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i as eq, load_unaligned_m128i as load, m128i, move_mask_i8_m128i as bits,
    };
    let newline = m128i::from([b'\n'; 16]);
    let mut mask = 0u64;
    for (k, sixteen) in block.chunks_exact(16).enumerate() {
        let v = load(sixteen.try_into().expect("chunks of 16"));
        mask |= u64::from(bits(eq(v, newline)) as u16) << (16 * k);
    }
    mask
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn newline_mask(block: &[u8]) -> u64 {
    portable_newline_mask(block)
}

/// [`newline_mask`] without processor-specific instructions: each comparison into a flag
/// byte, and the flags packed into bits by multiplication.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn portable_newline_mask(block: &[u8]) -> u64 {
    let mut is_newline = [0u8; 64];
    for (flag, &byte) in is_newline.iter_mut().zip(block) {
        *flag = u8::from(byte == b'\n');
    }
    pack_flags(&is_newline)
}

/// The bytes a line other than text can begin with: `-` (a dashed separator), `%` (a fortune
/// separator), a space or a tab (a blank line), `\n` (an empty line). A line that begins with
/// any other byte is text, whatever follows.
const MAY_BEGIN_OTHER_THAN_TEXT: [bool; 256] = {
    let mut table = [false; 256];
    table[b'-' as usize] = true;
    table[b'%' as usize] = true;
    table[b' ' as usize] = true;
    table[b'\t' as usize] = true;
    table[b'\n' as usize] = true;
    table
};

/// 64 flags (bytes of 0 or 1) into the bits of one word, flag `i` in bit `i`.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn pack_flags(flags: &[u8; 64]) -> u64 {
    // Eight flags (bytes of 0 or 1) at a time into eight bits: the multiplication moves the
    // flag of byte k to bit 56 + k, without carries between them.
    let mut mask = 0u64;
    for (group, flags) in flags.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(flags);
        let bits = u64::from_le_bytes(word).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        mask |= bits << (group * 8);
    }
    mask
}

/// The scanner's state between two read buffers.
#[derive(Debug, Default)]
struct Scanner {
    dashed: Collector,
    fortune: Collector,
    utf8: Utf8Check,
    /// Bytes scanned so far (the offset of the next buffer).
    offset: u64,
    /// Where the current line starts, and how many lines ended before it.
    line_start: u64,
    lines: u64,
    /// How many of the lines that ended so far end in `\r\n` (or in `\r` at the end of the file).
    crs: u64,
    /// The current line's shape and last byte so far, when it began in an earlier buffer.
    shape: LineShape,
    last_byte: u8,
    /// Where the run of text lines not yet reported to the collectors starts.
    run: Mark,
    /// Just past the start of the last line the blocks classified: a line starting before
    /// this was already looked at (see `blocks_without_cr`).
    classified_up_to: u64,
    longest_line: LongestLine,
}

impl Scanner {
    /// Scans the next buffer of the file.
    fn feed(&mut self, chunk: &[u8]) -> Result<(), ScanError> {
        self.utf8
            .feed(chunk)
            .map_err(|bad_at| ScanError::InvalidUtf8 {
                // The lines that ended before the bad byte, plus this one; 1-based.
                line: self.lines + 1 + memchr_iter(b'\n', &chunk[..bad_at]).count() as u64,
            })?;
        let base = self.offset;
        self.offset = base + chunk.len() as u64;
        let mut newlines = Newlines::new(chunk);
        let Some(first) = newlines.next() else {
            self.line_goes_on(chunk, base);
            return Ok(());
        };
        // The first line may have begun in an earlier buffer.
        let content = &chunk[..first];
        let (class, carriage_return) = if self.line_start == base {
            (class_of_line(content), content.last() == Some(&b'\r'))
        } else {
            self.shape.push_all(content);
            let last = content.last().copied().unwrap_or(self.last_byte);
            (self.shape.class(), last == b'\r')
        };
        self.end_line(class, base + first as u64 + 1, true, carriage_return);
        let mut start = first + 1;
        // Every other line starts in this buffer. Without a `\r` in it (most files), whole
        // blocks of lines at a time; otherwise, and for the last few bytes, line by line.
        if memchr::memchr(b'\r', &chunk[start..]).is_none() {
            let tail = self.blocks_without_cr(chunk, base, start);
            start = (self.line_start - base) as usize;
            newlines = Newlines::new(chunk).from(tail);
        }
        for newline in newlines {
            let content = &chunk[start..newline];
            let carriage_return = content.last() == Some(&b'\r');
            // A line that began in the blocks was classified there already (if it could be
            // anything but text): here it only ends.
            let class = if base + (start as u64) < self.classified_up_to {
                LineClass::Text
            } else {
                class_of_line(content)
            };
            self.end_line(class, base + newline as u64 + 1, true, carriage_return);
            start = newline + 1;
        }
        self.line_goes_on(&chunk[start..], base + start as u64);
        Ok(())
    }

    /// The lines of `chunk[from..]` in whole 64-byte blocks, for a buffer without any `\r`
    /// (so no line ending holds one). `from` is where a line starts. Returns where the blocks
    /// end: the rest, fewer than 64 bytes, goes line by line; `self.line_start` is then the start
    /// of the line the blocks left unfinished.
    ///
    /// This is where a text line costs next to nothing. Each block gives a 64-bit mask of its
    /// `\n` bytes; a line starts after each, and only the lines whose first byte can begin
    /// anything but text (`-`, `%`, a space, a tab, a `\n`) are looked at. The lines are counted
    /// by the mask's bits; the longest line is found from the first line end of each block (a
    /// line inside one block is shorter than 64 bytes, and is only measured while no line of 64
    /// bytes or more has been seen).
    fn blocks_without_cr(&mut self, chunk: &[u8], base: u64, from: usize) -> usize {
        let mut line_start = from;
        let mut block = from;
        // Whether the byte before `block` ended a line: a line starts at `block`.
        let mut starts_here = true;
        // Each block's newlines are found once, a block ahead: a line that starts in one block
        // usually ends in the next, and its end is then read off the next block's mask.
        let mask_at = |at: usize| chunk.get(at..at + 64).map(newline_mask);
        let mut current = mask_at(block);
        while let Some(newlines) = current {
            let next = mask_at(block + 64);
            let mut starts = (newlines << 1) | u64::from(starts_here);
            while starts != 0 {
                let bit = starts.trailing_zeros();
                starts &= starts - 1;
                // Most lines: their first byte makes them text, and nothing more is looked at.
                if !MAY_BEGIN_OTHER_THAN_TEXT[usize::from(chunk[block + bit as usize])] {
                    continue;
                }
                // The line's end: the first newline at or after its start, in this block or
                // the next; a line longer than that is searched for.
                let later = newlines & (u64::MAX << bit);
                let end = match next {
                    _ if later != 0 => Some(block + later.trailing_zeros() as usize),
                    Some(after) if after != 0 => Some(block + 64 + after.trailing_zeros() as usize),
                    _ => memchr::memchr(b'\n', &chunk[block + 64..]).map(|skip| block + 64 + skip),
                };
                self.classify_from(chunk, base, block + bit as usize, end);
            }
            if newlines == 0 {
                // A long line: jump to its end. If it does not end in this buffer, no other
                // line starts in it either: the blocks are done.
                starts_here = false;
                block = match memchr::memchr(b'\n', &chunk[block + 64..]) {
                    Some(skip) => block + 64 + skip,
                    None => chunk.len(),
                };
                current = mask_at(block);
                continue;
            }
            // The first line end of the block ends the line that began before it.
            let first_end = block + newlines.trailing_zeros() as usize;
            self.longer_line(first_end - line_start, self.lines + 1);
            if self.longest_line.bytes < 64 {
                // Short lines so far: measure the ones inside this block too.
                let mut rest = newlines & (newlines - 1);
                let mut previous = first_end;
                let mut number = self.lines + 1;
                while rest != 0 {
                    let end = block + rest.trailing_zeros() as usize;
                    number += 1;
                    self.longer_line(end - previous - 1, number);
                    previous = end;
                    rest &= rest - 1;
                }
            }
            self.lines += u64::from(newlines.count_ones());
            line_start = block + 64 - newlines.leading_zeros() as usize;
            starts_here = newlines >> 63 == 1;
            block += 64;
            current = next;
        }
        self.line_start = base + line_start as u64;
        block
    }

    /// Records a line of `bytes` (line ending not counted), the file's line `number`, if it is
    /// the longest so far.
    #[inline(always)]
    fn longer_line(&mut self, bytes: usize, number: u64) {
        if bytes as u64 > self.longest_line.bytes {
            self.longest_line = LongestLine {
                bytes: bytes as u64,
                line: number,
            };
        }
    }

    /// The line that starts at `chunk[at]` and ends with the `\n` at `chunk[end]` may be blank
    /// or a separator: look at it, and report it if it is. A line that does not end in this
    /// buffer (`end` is `None`) is left to the rest of the scan.
    #[inline(always)]
    fn classify_from(&mut self, chunk: &[u8], base: u64, at: usize, end: Option<usize>) {
        let Some(end) = end else {
            return;
        };
        let start = base + at as u64;
        self.classified_up_to = start + 1;
        // The blocks only see buffers without a `\r`: there is no line ending to strip.
        let class = class_of_body(&chunk[at..end]);
        if class != LineClass::Text {
            self.not_text(class, start, base + end as u64 + 1, true, false);
        }
    }

    /// `rest`, which starts at `offset`, ends the buffer without a `\n`: the current line goes
    /// on in the next one.
    fn line_goes_on(&mut self, rest: &[u8], offset: u64) {
        if let Some(&last) = rest.last() {
            if self.line_start == offset {
                self.shape = LineShape::START;
            }
            self.shape.push_all(rest);
            self.last_byte = last;
        }
    }

    /// The current line ends at `end` (after its `\n`, if it has one).
    #[inline(always)]
    fn end_line(&mut self, class: LineClass, end: u64, newline: bool, carriage_return: bool) {
        let start = self.line_start;
        let bytes = end - start - u64::from(newline) - u64::from(carriage_return);
        if bytes > self.longest_line.bytes {
            self.longest_line = LongestLine {
                bytes,
                line: self.lines + 1,
            };
        }
        if class != LineClass::Text {
            self.not_text(class, start, end, newline, carriage_return);
        }
        self.crs += u64::from(carriage_return);
        self.lines += u64::from(newline);
        self.line_start = end;
    }

    /// A blank or separator line from `start` to `end`: it ends the run of text lines before it.
    #[inline(never)]
    fn not_text(
        &mut self,
        class: LineClass,
        start: u64,
        end: u64,
        newline: bool,
        carriage_return: bool,
    ) {
        let here = Mark {
            offset: start,
            crs: self.crs,
        };
        let after = Mark {
            offset: end,
            crs: self.crs + u64::from(carriage_return),
        };
        if self.run.offset < start {
            // The text lines since the last blank or separator line; the last of them ended
            // with the `\n` just before this line.
            self.dashed.text(self.run, here, true);
            self.fortune.text(self.run, here, true);
        }
        match class {
            LineClass::DashedSeparator => {
                self.dashed.separator();
                self.fortune.text(here, after, newline);
            }
            LineClass::FortuneSeparator => {
                self.fortune.separator();
                self.dashed.text(here, after, newline);
            }
            LineClass::Blank | LineClass::Text => {}
        }
        self.run = after;
    }

    /// The file ended.
    fn finish(mut self, format: Option<Format>) -> Result<Scan, ScanError> {
        self.utf8.end().map_err(|()| ScanError::InvalidUtf8 {
            line: self.lines + 1,
        })?;
        let ends_with_newline = self.offset == self.line_start;
        if !ends_with_newline {
            let (class, carriage_return) = (self.shape.class(), self.last_byte == b'\r');
            self.end_line(class, self.offset, false, carriage_return);
        }
        if self.run.offset < self.offset {
            let end = Mark {
                offset: self.offset,
                crs: self.crs,
            };
            self.dashed.text(self.run, end, ends_with_newline);
            self.fortune.text(self.run, end, ends_with_newline);
        }
        self.dashed.finish();
        self.fortune.finish();

        let format = format.unwrap_or(if self.fortune.separators > self.dashed.separators {
            Format::Fortune
        } else {
            Format::Dashed
        });
        let mut chosen = match format {
            Format::Dashed => self.dashed,
            Format::Fortune => self.fortune,
        };
        // Growing by doubling leaves up to half the vector unused; give it back.
        chosen.jokes.shrink_to_fit();
        Ok(Scan {
            format,
            jokes: chosen.jokes,
            sizes: chosen.sizes,
            len: self.offset,
            longest_line: self.longest_line,
        })
    }
}

/// Scans `reader` to the end. With `format` `None` the format is detected: the one whose
/// separator lines are more numerous wins, dashed on a tie (a file with no separator at all is
/// one dashed joke).
pub(crate) fn scan(mut reader: impl Read, format: Option<Format>) -> Result<Scan, ScanError> {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut scanner = Scanner::default();
    loop {
        let filled = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ScanError::Io(e)),
        };
        scanner.feed(&buf[..filled])?;
    }
    scanner.finish(format)
}

/// The 0-based line range (end exclusive) of each of `spans`, which must be in file order, by
/// counting the newlines of `reader` in one pass. Fails with `UnexpectedEof` if a span lies
/// past the end.
pub(crate) fn line_ranges(
    mut reader: impl Read,
    spans: &[JokeSpan],
) -> io::Result<Vec<Range<u64>>> {
    let mut buf = vec![0u8; READ_BUFFER];
    // Newlines before each span's start and end, in order.
    let mut edges = spans
        .iter()
        .flat_map(|span| [span.bytes.start, span.bytes.end])
        .peekable();
    let mut before = Vec::with_capacity(spans.len() * 2);
    let (mut offset, mut newlines, mut last_byte) = (0u64, 0u64, b'\n');
    loop {
        let filled = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..filled];
        let mut counted = 0;
        while let Some(&edge) = edges.peek() {
            if edge >= offset + filled as u64 {
                break;
            }
            let at = (edge - offset) as usize;
            newlines += memchr_iter(b'\n', &chunk[counted..at]).count() as u64;
            counted = at;
            before.push(newlines);
            edges.next();
        }
        newlines += memchr_iter(b'\n', &chunk[counted..]).count() as u64;
        last_byte = chunk[filled - 1];
        offset += filled as u64;
    }
    for edge in edges {
        if edge > offset {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        before.push(newlines);
    }
    Ok(spans
        .iter()
        .zip(before.chunks_exact(2))
        .map(|(span, counts)| {
            // A joke that ends the file without a `\n` has one more line than newlines.
            let unterminated = span.bytes.end == offset && last_byte != b'\n';
            counts[0]..counts[1] + u64::from(unterminated)
        })
        .collect())
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
    fn the_newline_mask_is_the_portable_one() {
        // Every byte that matters at every position of a block, and random blocks of them.
        let alphabet = [b'\n', b'-', b'%', b' ', b'\t', b'x', 0xC3, 0x80, 0xFF, 0];
        let mut block = [b'x'; 64];
        for at in 0..64 {
            for &byte in &alphabet {
                block[at] = byte;
                let mask = newline_mask(&block);
                assert_eq!(mask, portable_newline_mask(&block), "{byte} at {at}");
                assert_eq!(mask == 1 << at, byte == b'\n', "{byte} at {at}");
            }
            block[at] = b'x';
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            for byte in block.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = alphabet[(state % alphabet.len() as u64) as usize];
            }
            let expected = memchr_iter(b'\n', &block).fold(0u64, |mask, at| mask | 1 << at);
            assert_eq!(newline_mask(&block), expected, "{block:?}");
            assert_eq!(portable_newline_mask(&block), expected, "{block:?}");
        }
    }

    #[test]
    fn newlines_are_found_wherever_they_are() {
        let mut bytes = vec![b'x'; 300];
        for at in [0, 1, 7, 8, 63, 64, 65, 127, 128, 200, 255, 256, 299] {
            bytes[at] = b'\n';
        }
        for len in 0..=bytes.len() {
            let found: Vec<usize> = Newlines::new(&bytes[..len]).collect();
            let expected: Vec<usize> = memchr_iter(b'\n', &bytes[..len]).collect();
            assert_eq!(found, expected, "first {len} bytes");
        }
        let all = vec![b'\n'; 130];
        assert_eq!(Newlines::new(&all).count(), 130);
        // Long stretches without a newline, ending at every position of a block.
        for gap in 60..200 {
            let mut bytes = vec![b'x'; 2 * gap + 70];
            bytes[gap] = b'\n';
            bytes[2 * gap + 1] = b'\n';
            let found: Vec<usize> = Newlines::new(&bytes).collect();
            assert_eq!(found, [gap, 2 * gap + 1], "gap {gap}");
        }
    }

    #[test]
    fn the_quick_verdict_is_the_byte_by_byte_one() {
        // Every line of up to six bytes over the bytes that matter, plus one that is plain text.
        let alphabet = [b'-', b'%', b' ', b'\t', b'\r', b'x'];
        let mut lines: Vec<Vec<u8>> = vec![Vec::new()];
        let mut checked = 0;
        for _ in 0..6 {
            let mut longer = Vec::new();
            for line in &lines {
                assert_eq!(class_of_line(line), classify_line(line), "{line:?}");
                checked += 1;
                for &byte in &alphabet {
                    let mut next = line.clone();
                    next.push(byte);
                    longer.push(next);
                }
            }
            lines = longer;
        }
        for line in &lines {
            assert_eq!(class_of_line(line), classify_line(line), "{line:?}");
            checked += 1;
        }
        assert_eq!(checked, (0..=6).map(|n| 6usize.pow(n)).sum::<usize>());
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
        assert_eq!(whole.sizes, trickled.sizes);
        assert_eq!(whole.jokes.len(), 3);
        let lines = line_ranges(Trickle(text.as_bytes()), &whole.jokes).unwrap();
        assert_eq!(lines, [0..1, 3..6, 7..8]);
        assert_eq!(lines, line_ranges(text.as_bytes(), &whole.jokes).unwrap());
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

    /// Hands out `self.1` bytes per read.
    struct Pieces<'a>(&'a [u8], usize);

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The longest line of `text` (line ending, `\n` and one `\r` before it, not counted) and
    /// its 1-based number, the first of equals, the plain way.
    fn longest_line_of(text: &[u8]) -> LongestLine {
        let mut longest = LongestLine::default();
        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        if text.ends_with(b"\n") {
            lines.pop();
        }
        for (number, line) in lines.iter().enumerate() {
            let bytes = line.strip_suffix(b"\r").unwrap_or(line).len() as u64;
            if bytes > longest.bytes {
                longest = LongestLine {
                    bytes,
                    line: number as u64 + 1,
                };
            }
        }
        longest
    }

    #[test]
    fn the_blocks_find_what_the_line_by_line_scan_finds() {
        // Pseudo-random texts over the bytes that matter, lines short and long, with and
        // without `\r`, read whole (the blocks) and one byte at a time (line by line, the
        // rules as written), and in pieces of odd sizes (blocks cut at every place).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..400 {
            let with_cr = case % 4 == 0;
            let long_lines = case % 3 == 0;
            let mut text = Vec::new();
            let len = (random() % 3000) as usize;
            while text.len() < len {
                let r = random() % 100;
                match r {
                    0..=9 => text.push(b'\n'),
                    10..=13 => text.extend_from_slice(b"\n---\n"),
                    14..=16 => text.extend_from_slice(b"\n%\n"),
                    17..=19 => text.push(b'-'),
                    20 => text.push(b'%'),
                    21..=24 => text.push(b' '),
                    25 => text.push(b'\t'),
                    26 if with_cr => text.push(b'\r'),
                    27 if with_cr => text.extend_from_slice(b"\r\n"),
                    28 => text.extend_from_slice("é".as_bytes()),
                    29 if long_lines => text.extend(std::iter::repeat_n(b'y', 150)),
                    _ => text.push(b'x'),
                }
            }
            let line_by_line = scan(Trickle(&text), None).unwrap();
            assert_eq!(
                line_by_line.longest_line,
                longest_line_of(&text),
                "case {case}"
            );
            for piece in [READ_BUFFER, 1000, 129, 64, 63] {
                let blocks = scan(Pieces(&text, piece), None).unwrap();
                let what = format!("case {case}, pieces of {piece}");
                assert_eq!(blocks.format, line_by_line.format, "{what}");
                assert_eq!(blocks.jokes, line_by_line.jokes, "{what}");
                assert_eq!(blocks.sizes, line_by_line.sizes, "{what}");
                assert_eq!(blocks.len, line_by_line.len, "{what}");
                assert_eq!(blocks.longest_line, line_by_line.longest_line, "{what}");
            }
        }
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
