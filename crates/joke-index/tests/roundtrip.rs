//! Property tests: a file built from random jokes and separators gives back exactly those jokes
//! (through the index on disk, through `jokes_in`, and one by one through
//! `read_joke_blocking`), and no input at all can make the library panic or hand out a span
//! outside the file.

use std::io::Write;

use joke_index::strfile::Strfile;
use joke_index::{Format, FormatChoice, Index, IndexError, jokes_in, served_form};
use proptest::prelude::*;

/// True when `line` separates jokes in the dashed format, decided here independently of the
/// library: three or more dashes, then only spaces and tabs.
fn is_dashed_separator(line: &str) -> bool {
    let dashes = line.trim_end_matches([' ', '\t']);
    dashes.len() >= 3 && dashes.bytes().all(|b| b == b'-')
}

/// A line of joke text: never blank, never a separator in either format. It may be indented,
/// hold `%` and dashes anywhere, start with dashes (`--->>> x`, `-- `), or end in spaces.
fn content_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]{0,3}[a-zA-Z0-9%<>!.,é🦀-][a-zA-Z0-9 \t%<>!.,é🦀-]{0,24}",
        "-{1,6}[ \t]{0,2}[a-z>%][a-z \t>-]{0,12}",
        "-{1,2}[ \t]{0,2}",
    ]
    .prop_filter("not a separator in either format", |line| {
        !is_dashed_separator(line) && line != "%"
    })
}

/// A blank line: nothing, or spaces and tabs.
fn blank_line() -> impl Strategy<Value = String> {
    "[ \t]{0,3}"
}

/// A joke as lines: first and last are text, with blank lines allowed in between.
fn joke() -> impl Strategy<Value = Vec<String>> {
    (
        content_line(),
        prop::collection::vec((prop::option::of(blank_line()), content_line()), 0..5),
    )
        .prop_map(|(first, rest)| {
            let mut lines = vec![first];
            for (blank, text) in rest {
                lines.extend(blank);
                lines.push(text);
            }
            lines
        })
}

/// How the jokes are separated and surrounded.
#[derive(Debug, Clone)]
struct Layout {
    format: Format,
    /// One dashed separator per gap (`---`, `-----  `, ...); unused for fortune files.
    dashed_separators: Vec<String>,
    /// Blank lines before and after each separator.
    blanks_around: Vec<(Vec<String>, Vec<String>)>,
    leading_blanks: Vec<String>,
    leading_separator: bool,
    trailing_separator: bool,
    trailing_blanks: Vec<String>,
    /// Per line: end it with `\r\n` instead of `\n`.
    crlf: Vec<bool>,
    final_newline: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    let blanks = || prop::collection::vec(blank_line(), 0..3);
    (
        prop_oneof![Just(Format::Dashed), Just(Format::Fortune)],
        prop::collection::vec("-{3,8}[ \t]{0,2}", 12),
        prop::collection::vec((blanks(), blanks()), 12),
        blanks(),
        any::<bool>(),
        any::<bool>(),
        blanks(),
        prop::collection::vec(any::<bool>(), 200),
        any::<bool>(),
    )
        .prop_map(
            |(
                format,
                dashed_separators,
                blanks_around,
                leading_blanks,
                leading_separator,
                trailing_separator,
                trailing_blanks,
                crlf,
                final_newline,
            )| Layout {
                format,
                dashed_separators,
                blanks_around,
                leading_blanks,
                leading_separator,
                trailing_separator,
                trailing_blanks,
                crlf,
                final_newline,
            },
        )
}

/// The file's bytes, and for each joke the 0-based line range it should be indexed with.
fn build_file(jokes: &[Vec<String>], layout: &Layout) -> (Vec<u8>, Vec<std::ops::Range<u64>>) {
    let mut lines: Vec<String> = Vec::new();
    let mut ranges = Vec::new();
    let mut gap = 0;
    let mut separator = |lines: &mut Vec<String>| {
        let (before, after) = &layout.blanks_around[gap % layout.blanks_around.len()];
        lines.extend(before.iter().cloned());
        lines.push(match layout.format {
            Format::Dashed => {
                layout.dashed_separators[gap % layout.dashed_separators.len()].clone()
            }
            Format::Fortune => "%".to_string(),
        });
        lines.extend(after.iter().cloned());
        gap += 1;
    };
    lines.extend(layout.leading_blanks.iter().cloned());
    if layout.leading_separator {
        separator(&mut lines);
    }
    for (number, joke) in jokes.iter().enumerate() {
        if number > 0 {
            separator(&mut lines);
        }
        let first = lines.len() as u64;
        lines.extend(joke.iter().cloned());
        ranges.push(first..lines.len() as u64);
    }
    if layout.trailing_separator {
        separator(&mut lines);
    }
    lines.extend(layout.trailing_blanks.iter().cloned());

    let mut text = Vec::new();
    let count = lines.len();
    for (number, line) in lines.iter().enumerate() {
        text.extend_from_slice(line.as_bytes());
        if number + 1 < count || layout.final_newline {
            let crlf = layout.crlf[number % layout.crlf.len()];
            text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
    (text, ranges)
}

fn temp_file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("create a temp file");
    file.write_all(bytes).expect("write the temp file");
    file.flush().expect("flush the temp file");
    file
}

proptest! {
    #[test]
    fn random_jokes_round_trip(jokes in prop::collection::vec(joke(), 1..8), layout in layout()) {
        let (text, line_ranges) = build_file(&jokes, &layout);
        let expected: Vec<String> = jokes
            .iter()
            .map(|lines| lines.iter().map(|line| format!("{line}\n")).collect())
            .collect();
        let forced = match layout.format {
            Format::Dashed => FormatChoice::Dashed,
            Format::Fortune => FormatChoice::Fortune,
        };

        // In memory, forced and detected.
        let (format, in_memory) = jokes_in(&text, forced).expect("the text is UTF-8");
        prop_assert_eq!(format, layout.format);
        prop_assert_eq!(&in_memory, &expected);
        let (detected, in_memory) = jokes_in(&text, FormatChoice::Auto).expect("the text is UTF-8");
        prop_assert_eq!(&in_memory, &expected);
        let has_separator = jokes.len() > 1 || layout.leading_separator || layout.trailing_separator;
        if has_separator {
            prop_assert_eq!(detected, layout.format);
        }

        // On disk, through the index.
        let file = temp_file_with(&text);
        let index = Index::build(file.path(), FormatChoice::Auto).expect("index the file");
        prop_assert_eq!(index.len(), expected.len());
        prop_assert_eq!(index.file_len(), text.len() as u64);
        prop_assert_eq!(&index.read_all_blocking().expect("read all jokes"), &expected);
        let lines = index.line_ranges().expect("count the lines");
        for (number, want) in expected.iter().enumerate() {
            prop_assert_eq!(&index.read_joke_blocking(number).expect("read one joke"), want);
            let span = index.span(number).expect("a span per joke");
            prop_assert_eq!(&lines[number], &line_ranges[number]);
            let raw = std::str::from_utf8(&text[span.bytes.start as usize..span.bytes.end as usize])
                .expect("a span is UTF-8");
            prop_assert_eq!(&served_form(raw), want);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_spans_stay_inside_the_file(
        pieces in prop::collection::vec(
            prop_oneof![
                any::<u8>().prop_map(|b| vec![b]),
                Just(b"\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"---".to_vec()),
                Just(b"%\n".to_vec()),
                Just(b"%".to_vec()),
                Just(b" \t".to_vec()),
                Just("é🦀".as_bytes().to_vec()),
                Just(b"text".to_vec()),
            ],
            0..120,
        )
    ) {
        let bytes: Vec<u8> = pieces.concat();
        let file = temp_file_with(&bytes);
        for choice in [FormatChoice::Auto, FormatChoice::Dashed, FormatChoice::Fortune] {
            let in_memory = jokes_in(&bytes, choice);
            match Index::build(file.path(), choice) {
                Ok(index) => {
                    let jokes = in_memory.expect("the index accepted the file, so must jokes_in").1;
                    prop_assert_eq!(index.len(), jokes.len());
                    let mut previous_end = 0;
                    let lines = index.line_ranges().expect("count the lines");
                    for (number, span) in index.spans().iter().enumerate() {
                        prop_assert!(previous_end <= span.bytes.start);
                        prop_assert!(span.bytes.start < span.bytes.end);
                        prop_assert!(span.bytes.end <= bytes.len() as u64);
                        prop_assert!(lines[number].start < lines[number].end);
                        previous_end = span.bytes.end;
                        let raw = &bytes[span.bytes.start as usize..span.bytes.end as usize];
                        let raw = std::str::from_utf8(raw).expect("a span is UTF-8");
                        let served = index.read_joke_blocking(number).expect("read one joke");
                        prop_assert_eq!(&served, &served_form(raw));
                        prop_assert_eq!(&served, &jokes[number]);
                        prop_assert!(served.ends_with('\n'));
                    }
                }
                Err(IndexError::InvalidUtf8 { line, .. }) => {
                    prop_assert_eq!(in_memory.map(|_| ()).unwrap_err().line, line);
                }
                Err(IndexError::NoJokes { .. }) => {
                    prop_assert!(in_memory.expect("UTF-8").1.is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        // The strfile index of any bytes is well formed and survives its own reader.
        let strfile = Strfile::from_text_bytes(&bytes).expect("small input");
        let offsets = strfile.offsets();
        prop_assert_eq!(offsets.len(), strfile.header().numstr as usize + 1);
        prop_assert!(offsets.windows(2).all(|pair| pair[0] <= pair[1]));
        prop_assert_eq!(offsets.last().copied(), Some(bytes.len() as u32));
        prop_assert_eq!(Strfile::from_dat_bytes(&strfile.to_bytes()), Ok(strfile));
    }
}
