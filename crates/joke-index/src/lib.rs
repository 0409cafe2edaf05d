//! Jokes files, indexed.
//!
//! A jokes file is plain UTF-8 text holding many jokes, in one of two formats:
//!
//! - **dashed** (our own `jokes.txt`): a line made only of three or more `-` (trailing spaces,
//!   tabs and `\r` ignored) separates two jokes. Any other line is content, even
//!   `--->>> x <<<---` or `-----    -----`, which the seed article's `starts_with("---")` rule
//!   wrongly took for separators.
//! - **fortune** (fortune(6) and strfile(8)): a line that is exactly `%` separates records.
//!
//! [`Index::build`] reads a file once and records where each joke starts and ends, in bytes.
//! Reading joke *n* back is then one seek and one read
//! ([`Index::read_joke_blocking`]), and the result is the joke's *served form*
//! ([`served_form`]): the exact bytes every server in this workspace sends for it.
//!
//! For fortune files, [`strfile`] writes the `.dat` index fortune(6) itself reads, byte for byte
//! what Debian's `strfile` writes, and reads one back. The `joke-index` binary wraps all of this
//! for people who keep jokes files (`stats`, `get`, `dump`, `check`, `dat`).
//!
//! ```
//! use joke_index::{jokes_in, Format, FormatChoice};
//!
//! let text = "Why do Rust programmers never get lost?\nThey always follow the borrow checker.\n---\n--->>> x <<<---\n";
//! let (format, jokes) = jokes_in(text.as_bytes(), FormatChoice::Auto).unwrap();
//! assert_eq!(format, Format::Dashed);
//! assert_eq!(jokes.len(), 2);
//! assert_eq!(jokes[1], "--->>> x <<<---\n");
//! ```

pub mod dir;
mod error;
mod index;
mod lines_reader;
pub mod pick;
mod scan;
mod served;
pub mod strfile;

#[cfg(any(test, feature = "invariants"))]
pub mod invariants;

pub mod exit_code;

pub use error::{IndexError, ReadError};
pub use index::{
    Fingerprint, Index, InvalidUtf8, ServedJokes, jokes_in, line_ranges_in, rot13, spans_in,
};
pub use lines_reader::JokeLineReader;
pub use scan::{JokeSpan, LineClass, LongestLine, ServedSizes, classify_line};
pub use served::{served_form, served_lines};

/// RFC 865 asks that a quote be shorter than 512 characters; `joke-index check` flags longer
/// ones (we count bytes of the served form).
pub const RFC865_LIMIT: usize = 512;

/// The two jokes file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Jokes separated by lines of three or more dashes.
    Dashed,
    /// Records separated by `%` lines, as fortune(6) reads them.
    Fortune,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Dashed => "dashed",
            Format::Fortune => "fortune",
        })
    }
}

/// The format to read a file in: detected from its content, or forced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FormatChoice {
    /// Whichever separator the file uses more (`%` lines or dashed lines); dashed on a tie.
    #[default]
    Auto,
    /// Force the dashed format.
    Dashed,
    /// Force the fortune format.
    Fortune,
}

impl FormatChoice {
    /// The forced format, or `None` to detect it.
    pub fn forced(self) -> Option<Format> {
        match self {
            FormatChoice::Auto => None,
            FormatChoice::Dashed => Some(Format::Dashed),
            FormatChoice::Fortune => Some(Format::Fortune),
        }
    }
}
