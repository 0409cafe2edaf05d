//! `joke-index check`: the lint rules.
//!
//! The index already tells a separator from content exactly; this lint looks for the lines and
//! records where a *person* (or fortune's own strfile) may read the file differently:
//!
//! - lines that look like separators but are content (`--->>> x <<<---`, an indented `---`,
//!   `% ` with a trailing space);
//! - in the fortune format, a `%` line ending in CRLF, which we take for a separator but
//!   strfile(8) does not;
//! - records with nothing in them: two separators in a row, or only blank lines between two
//!   separators (in a fortune file also at its start or end, because strfile counts those and
//!   fortune(6) may print them as an empty fortune);
//! - jokes whose served form is longer than RFC 865's 512 bytes.
//!
//! Line numbers are 1-based, as editors count.

use std::fs::File;
use std::io::{self, BufRead, BufReader};

use anyhow::{Context, Result};
use joke_index::{Format, Index, LineClass, RFC865_LIMIT, ServedJokes, classify_line};

/// One thing worth a look, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: u64,
    pub message: String,
}

/// Every finding for the indexed file, sorted by line. `served` holds the served jokes in the
/// index's order.
pub fn findings(index: &Index, served: &ServedJokes) -> Result<Vec<Finding>> {
    let file =
        File::open(index.path()).with_context(|| format!("reading {}", index.path().display()))?;
    let mut found = line_findings(BufReader::new(file), index.format())
        .with_context(|| format!("reading {}", index.path().display()))?;
    found.extend(long_joke_findings(index, served)?);
    // Stable sort: on one line, line-shape findings come before the joke-length one.
    found.sort_by_key(|finding| finding.line);
    Ok(found)
}

/// Findings about jokes longer than [`RFC865_LIMIT`], reported on each joke's first line.
pub fn long_joke_findings(index: &Index, served: &ServedJokes) -> Result<Vec<Finding>> {
    let long: Vec<(usize, usize)> = served
        .iter()
        .map(str::len)
        .enumerate()
        .filter(|&(_, len)| len > RFC865_LIMIT)
        .collect();
    if long.is_empty() {
        return Ok(Vec::new());
    }
    // The index keeps bytes only; the lines are counted now, for the messages.
    let lines = index.line_ranges()?;
    Ok(long
        .into_iter()
        .map(|(number, len)| Finding {
            line: lines[number].start + 1,
            message: format!("joke {number} is {len} bytes, over RFC 865's {RFC865_LIMIT}"),
        })
        .collect())
}

/// The records between separators, as the lint follows them line by line.
#[derive(Debug, Default)]
struct Record {
    /// The separator line that opened this record; `None` for the text before the first.
    opened_by: Option<u64>,
    /// The record's first and last line, once it has one.
    first_line: Option<u64>,
    last_line: u64,
    /// Whether any of its lines is not blank.
    has_text: bool,
}

/// Findings about line shapes and empty records, reading `reader` line by line.
pub fn line_findings(mut reader: impl BufRead, format: Format) -> io::Result<Vec<Finding>> {
    let mut found = Vec::new();
    let mut record = Record::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let class = classify_line(content);
        let is_separator = match format {
            Format::Dashed => class == LineClass::DashedSeparator,
            Format::Fortune => class == LineClass::FortuneSeparator,
        };
        if let Some(message) = line_shape_finding(content, class, format) {
            found.push(Finding {
                line: number,
                message,
            });
        }
        if is_separator {
            let closed = std::mem::replace(
                &mut record,
                Record {
                    opened_by: Some(number),
                    ..Record::default()
                },
            );
            found.extend(empty_record_finding(&closed, Some(number), format));
        } else {
            record.first_line.get_or_insert(number);
            record.last_line = number;
            record.has_text |= class != LineClass::Blank;
        }
    }
    found.extend(empty_record_finding(&record, None, format));
    Ok(found)
}

/// What is wrong with `record`, closed by the separator on line `closed_by` (`None`: by the end
/// of the file), if anything.
fn empty_record_finding(
    record: &Record,
    closed_by: Option<u64>,
    format: Format,
) -> Option<Finding> {
    match (record.first_line, record.has_text) {
        (_, true) => None,
        (None, false) => {
            // No line at all. At the start or end of the file that is simply a file that
            // begins or ends with a separator; between two separators it is an empty record.
            let (opened_by, closed_by) = (record.opened_by?, closed_by?);
            Some(Finding {
                line: closed_by,
                message: format!(
                    "empty record: nothing between this separator and the one on line {opened_by}"
                ),
            })
        }
        (Some(first), false) => {
            let between_separators = record.opened_by.is_some() && closed_by.is_some();
            let lines = if first == record.last_line {
                format!("line {first}")
            } else {
                format!("lines {first}-{}", record.last_line)
            };
            match format {
                Format::Fortune => Some(Finding {
                    line: first,
                    message: format!(
                        "blank-only record ({lines}): no joke here, but strfile(8) counts it \
                         and fortune(6) may print it as an empty fortune"
                    ),
                }),
                Format::Dashed if between_separators => Some(Finding {
                    line: first,
                    message: format!(
                        "blank-only record ({lines}) between two separators: no joke here"
                    ),
                }),
                Format::Dashed => None,
            }
        }
    }
}

/// A line that looks like a separator but is not one (or, in a fortune file, is one only to
/// us and not to strfile).
fn line_shape_finding(content: &[u8], class: LineClass, format: Format) -> Option<String> {
    let without_cr = content.strip_suffix(b"\r").unwrap_or(content);
    let indent = without_cr
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let unindented = &without_cr[indent..];
    match (format, class) {
        (Format::Dashed, LineClass::Text) if without_cr.starts_with(b"---") => Some(
            "starts like a separator but has other text, so it is content \
             (a separator is only dashes, then optional spaces)"
                .into(),
        ),
        (Format::Dashed, LineClass::Text)
            if indent > 0 && classify_line(unindented) == LineClass::DashedSeparator =>
        {
            Some(
                "indented dashes are content, not a separator \
                 (a separator starts in the first column)"
                    .into(),
            )
        }
        (Format::Fortune, LineClass::Text) if without_cr.starts_with(b"%") => {
            let rest = &without_cr[1..];
            let what = if rest.iter().all(|&b| b == b' ' || b == b'\t') {
                "trailing spaces"
            } else {
                "other text"
            };
            Some(format!(
                "`%` followed by {what} is content, not a separator (a separator is `%` alone)"
            ))
        }
        (Format::Fortune, LineClass::Text) if indent > 0 && unindented == b"%" => {
            Some("indented `%` is content, not a separator (a separator is `%` alone)".into())
        }
        (Format::Fortune, LineClass::FortuneSeparator) if content.ends_with(b"\r") => Some(
            "`%` line ends in CRLF: a separator here, but strfile(8) and fortune(6) do not \
             see it as one"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_flagged(text: &str, format: Format) -> Vec<u64> {
        line_findings(text.as_bytes(), format)
            .unwrap()
            .iter()
            .map(|finding| finding.line)
            .collect()
    }

    #[test]
    fn dashed_look_alikes_are_flagged() {
        let text = "a\n--->>> x <<<---\n-----    -----\n  ---\n---\nb --- c\n -- x\n";
        assert_eq!(lines_flagged(text, Format::Dashed), [2, 3, 4]);
    }

    #[test]
    fn percent_look_alikes_are_flagged_in_fortune_files_only() {
        let text = "a\n% \n%x\n %\n%\nb\n%\r\nc\n";
        assert_eq!(lines_flagged(text, Format::Fortune), [2, 3, 4, 7]);
        assert_eq!(lines_flagged(text, Format::Dashed), Vec::<u64>::new());
    }

    #[test]
    fn empty_records_between_separators() {
        // Two separators in a row (line 3), and a blank-only record (line 6).
        let text = "a\n---\n---\nb\n---\n  \n---\nc\n";
        let found = line_findings(text.as_bytes(), Format::Dashed).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 3);
        assert!(found[0].message.contains("line 2"), "{found:?}");
        assert_eq!(found[1].line, 6);
        assert!(found[1].message.starts_with("blank-only record (line 6)"));
    }

    #[test]
    fn edges_of_a_dashed_file_are_fine_but_not_of_a_fortune_file() {
        let dashed = "\n---\na\n---\n\n\n";
        assert_eq!(lines_flagged(dashed, Format::Dashed), Vec::<u64>::new());
        let fortune = "\n%\na\n%\n\n\n";
        assert_eq!(lines_flagged(fortune, Format::Fortune), [1, 5]);
        // Starting or ending with a separator is not an empty record.
        assert_eq!(
            lines_flagged("%\na\n%\n", Format::Fortune),
            Vec::<u64>::new()
        );
    }
}
