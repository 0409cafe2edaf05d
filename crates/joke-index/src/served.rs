//! The served form of a joke: the exact bytes every act sends.

/// Turns the raw bytes of a joke (as an index's [`JokeSpan`](crate::JokeSpan) delimits them)
/// into its served form: every line ends in `\n`, a CRLF ending becomes `\n`, and the leading
/// and trailing blank lines are dropped. Inner blank lines, indentation and trailing spaces are
/// kept exactly.
///
/// The index already trims blank edges when it records a span, so for a span the trimming here
/// changes nothing; it is done anyway so that any text can be put in served form.
// ANCHOR: served_form
pub fn served_form(raw: &str) -> String {
    let mut lines: Vec<&str> = raw
        .split_inclusive('\n')
        .map(|line| {
            let line = line.strip_suffix('\n').unwrap_or(line);
            line.strip_suffix('\r').unwrap_or(line)
        })
        .collect();
    let is_blank = |line: &&str| line.bytes().all(|b| b == b' ' || b == b'\t');
    while lines.last().is_some_and(is_blank) {
        lines.pop();
    }
    let first_text = lines
        .iter()
        .position(|l| !is_blank(l))
        .unwrap_or(lines.len());
    let mut served = String::with_capacity(raw.len() + 1);
    for line in &lines[first_text..] {
        served.push_str(line);
        served.push('\n');
    }
    served
}
// ANCHOR_END: served_form

/// Splits a served joke into its lines, each still ending in `\n`: the unit the streaming
/// acts write one at a time.
pub fn served_lines(served: &str) -> impl Iterator<Item = &str> {
    served.split_inclusive('\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_becomes_lf_and_a_last_line_gets_its_newline() {
        assert_eq!(served_form("a\r\nb\r\nc"), "a\nb\nc\n");
    }

    #[test]
    fn blank_edges_go_inner_blanks_and_indentation_stay() {
        let raw = "\n  \t\n  indented\n\n\tafter a blank \n \n\n";
        assert_eq!(served_form(raw), "  indented\n\n\tafter a blank \n");
    }

    #[test]
    fn a_lone_carriage_return_inside_a_line_is_content() {
        assert_eq!(served_form("a\rb\n"), "a\rb\n");
    }

    #[test]
    fn blank_text_serves_nothing() {
        assert_eq!(served_form(" \n\t\n"), "");
        assert_eq!(served_form(""), "");
    }

    #[test]
    fn lines_keep_their_newlines() {
        let lines: Vec<_> = served_lines("a\n\nb\n").collect();
        assert_eq!(lines, ["a\n", "\n", "b\n"]);
    }
}
