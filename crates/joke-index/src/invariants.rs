//! What must hold for *any* input, however hostile.
//!
//! The fuzz targets in `fuzz/` (at the workspace root) call [`check`] on every input they make
//! up; a unit test replays the saved corpus and every input that ever failed through it, so the
//! findings of long fuzzing runs stay checked by a plain `cargo test`. Compiled for tests and
//! with the `invariants` feature only: it panics on purpose, which is what a fuzzer listens for.

use crate::{
    Format, FormatChoice, InvalidUtf8, LineClass, ServedSizes, classify_line, jokes_in,
    line_ranges_in, served_form, spans_in,
};

/// Checks every rule below on `input`, in each format; panics with the broken rule.
///
/// - Invalid UTF-8 is refused, naming the line of the first bad byte; valid UTF-8 never is.
/// - Spans are in file order, inside the input, and start and end on line boundaries; the line
///   numbers counted for them agree with their bytes.
/// - No span holds a separator line of its format, and every line of text lies in a span:
///   nothing is lost and nothing is split wrongly.
/// - Each joke is its span in served form, and matches a plain re-reading of the definition
///   (lines with `\n` and one `\r` removed, blank edges dropped, each line ended by `\n`).
/// - The served sizes the scan measured are those of the served jokes.
pub fn check(input: &[u8]) {
    let utf8 = std::str::from_utf8(input);
    for choice in [
        FormatChoice::Auto,
        FormatChoice::Dashed,
        FormatChoice::Fortune,
    ] {
        match spans_in(input, choice) {
            Err(InvalidUtf8 { line }) => {
                let error = utf8.expect_err("valid UTF-8 was refused");
                assert_eq!(
                    line,
                    line_of(input, error.valid_up_to()),
                    "wrong line for invalid UTF-8"
                );
            }
            Ok((format, spans)) => {
                assert!(utf8.is_ok(), "invalid UTF-8 was accepted");
                if let Some(forced) = choice.forced() {
                    assert_eq!(format, forced);
                }
                check_spans(input, format, &spans);
                let (_, jokes) = jokes_in(input, choice).expect("jokes_in agrees with spans_in");
                assert_eq!(jokes.len(), spans.len());
                for (joke, span) in jokes.iter().zip(&spans) {
                    let raw = &input[span.bytes.start as usize..span.bytes.end as usize];
                    assert_eq!(joke, &reference_served_form(raw));
                }
                let scan = crate::scan::scan(input, choice.forced()).expect("UTF-8, as above");
                assert_eq!(
                    scan.sizes,
                    ServedSizes::of(jokes.iter().map(|joke| joke.len() as u64)),
                    "served sizes"
                );
            }
        }
    }
    if let Ok(text) = utf8 {
        assert_eq!(served_form(text), reference_served_form(input));
    }
}

fn check_spans(input: &[u8], format: Format, spans: &[crate::JokeSpan]) {
    let is_separator = |class| match format {
        Format::Dashed => class == LineClass::DashedSeparator,
        Format::Fortune => class == LineClass::FortuneSeparator,
    };
    let lines = line_ranges_in(input, spans);
    assert_eq!(lines.len(), spans.len(), "line ranges for every span");
    let mut previous_end = 0;
    for (span, span_lines) in spans.iter().zip(&lines) {
        let (start, end) = (span.bytes.start as usize, span.bytes.end as usize);
        assert!(previous_end <= start, "spans overlap or go backwards");
        assert!(start < end && end <= input.len(), "span outside the input");
        assert!(
            start == 0 || input[start - 1] == b'\n',
            "span starts mid-line"
        );
        assert!(
            end == input.len() || input[end - 1] == b'\n',
            "span ends mid-line"
        );
        assert_eq!(span_lines.start + 1, line_of(input, start), "first line");
        let count = lines_of(&input[start..end]).count() as u64;
        assert_eq!(span_lines.end - span_lines.start, count, "line count");
        for line in lines_of(&input[start..end]) {
            assert!(
                !is_separator(classify_line(line)),
                "a separator inside a joke"
            );
        }
        let first = lines_of(&input[start..end])
            .next()
            .expect("a span has lines");
        assert_ne!(
            classify_line(first),
            LineClass::Blank,
            "a joke starts blank"
        );
        previous_end = end;
    }
    // Every line of text lies inside some span.
    let mut offset = 0;
    for line in lines_of(input) {
        let class = classify_line(line);
        if class != LineClass::Blank && !is_separator(class) {
            let inside = spans
                .iter()
                .any(|s| s.bytes.start as usize <= offset && offset < s.bytes.end as usize);
            assert!(inside, "text at byte {offset} belongs to no joke");
        }
        offset += line.len() + 1;
    }
}

/// The lines of `bytes` without their `\n` (a last line without one counts too).
fn lines_of(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let body = if ends_with_newline {
        &bytes[..bytes.len() - 1]
    } else {
        bytes
    };
    let empty = bytes.is_empty();
    body.split(|&b| b == b'\n').filter(move |_| !empty)
}

/// The 1-based number of the line holding byte `offset`.
fn line_of(input: &[u8], offset: usize) -> u64 {
    1 + input[..offset].iter().filter(|&&b| b == b'\n').count() as u64
}

/// DESIGN.md's definition of the served form, read literally and written without the index's
/// machinery, as an oracle.
fn reference_served_form(raw: &[u8]) -> String {
    let lines: Vec<&[u8]> = lines_of(raw)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect();
    let blank = |line: &&[u8]| line.iter().all(|&b| b == b' ' || b == b'\t');
    let first = lines.iter().position(|l| !blank(l)).unwrap_or(lines.len());
    let last = lines
        .iter()
        .rposition(|l| !blank(l))
        .map_or(first, |i| i + 1);
    let mut served = Vec::new();
    for line in &lines[first..last.max(first)] {
        served.extend_from_slice(line);
        served.push(b'\n');
    }
    String::from_utf8(served).expect("lines of UTF-8 text are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the fuzz targets keep what they found: their corpora, and the inputs that once
    /// broke a rule.
    fn saved_inputs() -> Vec<std::path::PathBuf> {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut inputs = Vec::new();
        for folder in ["corpus/index_text", "regressions/index_text"] {
            let folder = fuzz.join(folder);
            let entries = std::fs::read_dir(&folder)
                .unwrap_or_else(|e| panic!("reading {}: {e}", folder.display()));
            for entry in entries {
                inputs.push(entry.expect("a directory entry").path());
            }
        }
        inputs
    }

    #[test]
    fn every_saved_fuzz_input_keeps_the_rules() {
        let inputs = saved_inputs();
        assert!(
            inputs.len() >= 50,
            "the saved corpus has only {} inputs",
            inputs.len()
        );
        for path in inputs {
            let bytes = std::fs::read(&path).expect("reading a saved input");
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} breaks a rule", path.display());
        }
    }

    #[test]
    fn the_oracle_reads_the_definition_literally() {
        // Worked by hand from DESIGN.md: CRLF and one CR dropped, blank edges gone.
        assert_eq!(line_of(b"a\nb\n\xff", 4), 3);
        assert_eq!(
            reference_served_form(b"\n a\r\n\n b\r\r\n \n"),
            " a\n\n b\r\n"
        );
    }

    #[test]
    fn tricky_inputs_keep_the_rules() {
        for input in [
            &b""[..],
            b"---",
            b"%",
            b"a\r\r\n---\r\r\n%\r\n",
            b"\xe2\x82\n",
            b"ok\n\xff",
            b" \t\n---\n  x  \n\n",
            b"--->>> x <<<---\n-----    -----\n---\n%\nb",
        ] {
            check(input);
        }
    }
}
