//! The book may not point at anything that is not there.
//!
//! mdBook renders a page even when an `{{#include}}` names a file that moved or an anchor that
//! was renamed: it prints a warning and leaves a hole where the code should be. This test reads
//! every chapter in `src/` and fails, naming the chapter and line, when
//!
//! - an `{{#include}}` or `{{#rustdoc_include}}` names a file that does not exist, or an anchor
//!   without both an `ANCHOR: name` and a later `ANCHOR_END: name` line in that file;
//! - a chapter listed in `SUMMARY.md` is missing, or a `.md` file in `src/` is not listed;
//! - an image or a relative link points at nothing, or out of `src/` (the rendered book only
//!   contains `src/`, so such a link would be dead on the web even if it works in an editor).
//!
//! It uses only the standard library, so `cargo test -p book-check` needs no mdBook.

use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The book's sources: `docs/src`.
fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// One thing wrong, where it was found.
#[derive(Debug)]
struct Problem {
    file: PathBuf,
    line: usize,
    message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Every `.md` file under `dir`, sorted, so failures come out in a stable order.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// What an include asks for beyond the file.
#[derive(Debug, PartialEq, Eq)]
enum Selector {
    /// The whole file.
    Whole,
    /// Lines `start..=end` (1-based, either side optional), as in `file.rs:10:20`.
    Lines {
        start: Option<usize>,
        end: Option<usize>,
    },
    /// The lines between `ANCHOR: name` and `ANCHOR_END: name`.
    Anchor(String),
}

/// One `{{#include ...}}` or `{{#rustdoc_include ...}}`.
#[derive(Debug, PartialEq, Eq)]
struct Include {
    /// 1-based line of the chapter where it appears.
    line: usize,
    path: String,
    selector: Selector,
}

/// The 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Finds the include directives in a chapter, the way mdBook's link preprocessor does:
/// anywhere in the text (code blocks included, that is where they usually are), except when
/// escaped with a backslash (`\{{#include ...}}`, which mdBook prints literally).
fn includes_in(text: &str) -> Result<Vec<Include>, (usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("{{#").map(|i| from + i) {
        from = at + 3;
        if text[..at].ends_with('\\') {
            continue;
        }
        let line = line_of(text, at);
        let Some(close) = text[at..].find("}}").map(|i| at + i) else {
            return Err((line, "`{{#` without a closing `}}`".into()));
        };
        let inner = text[at + 3..close].trim();
        let (directive, argument) = inner
            .split_once(char::is_whitespace)
            .map_or((inner, ""), |(d, a)| (d, a.trim()));
        if directive != "include" && directive != "rustdoc_include" {
            // {{#playground}}, {{#title}} and friends: nothing we check.
            continue;
        }
        let (path, selector) = match argument.split_once(':') {
            None => (argument, Selector::Whole),
            Some((path, rest)) => (path, parse_selector(rest).map_err(|e| (line, e))?),
        };
        if path.is_empty() {
            return Err((line, format!("`{{{{#{directive}}}}}` without a path")));
        }
        found.push(Include {
            line,
            path: path.to_string(),
            selector,
        });
        from = close + 2;
    }
    Ok(found)
}

/// Parses what follows the path's first `:`: line numbers (`10`, `10:20`, `10:`, `:20`) or an
/// anchor name.
fn parse_selector(rest: &str) -> Result<Selector, String> {
    if rest.is_empty() {
        return Ok(Selector::Whole);
    }
    if rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        let number = |s: &str| -> Result<Option<usize>, String> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse()
                    .map(Some)
                    .map_err(|_| format!("bad line number {s:?}"))
            }
        };
        return match rest.split_once(':') {
            None => {
                let line = number(rest)?;
                Ok(Selector::Lines {
                    start: line,
                    end: line,
                })
            }
            Some((start, end)) => Ok(Selector::Lines {
                start: number(start)?,
                end: number(end)?,
            }),
        };
    }
    if rest.bytes().all(is_anchor_byte) {
        Ok(Selector::Anchor(rest.to_string()))
    } else {
        Err(format!(
            "{rest:?} is neither line numbers nor an anchor name"
        ))
    }
}

/// The characters mdBook allows in an anchor name (`[\w_-]`, ASCII here).
fn is_anchor_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The anchor name after `marker` on `line`, if the line carries that marker. Matches mdBook:
/// the marker may sit anywhere on the line (after `//`, `#`, `<!--`), spaces may follow it,
/// and the name runs as far as anchor characters go, so `serve` never matches
/// `serve_connection`.
fn marker_name<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let after = &line[line.find(marker)? + marker.len()..];
    let after = after.trim_start();
    let len = after.bytes().take_while(|&b| is_anchor_byte(b)).count();
    (len > 0).then(|| &after[..len])
}

/// Checks that `source` holds `ANCHOR: name`, and after it `ANCHOR_END: name`.
fn check_anchor(source: &str, name: &str) -> Result<(), String> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines
        .iter()
        .position(|line| marker_name(line, "ANCHOR:") == Some(name));
    let Some(start) = start else {
        return Err(format!("no `ANCHOR: {name}` line"));
    };
    let ends_after = lines[start + 1..]
        .iter()
        .any(|line| marker_name(line, "ANCHOR_END:") == Some(name));
    if ends_after {
        Ok(())
    } else {
        Err(format!(
            "`ANCHOR: {name}` has no `ANCHOR_END: {name}` after it"
        ))
    }
}

/// Checks one include of a chapter in `dir`.
fn check_include(dir: &Path, include: &Include) -> Result<(), String> {
    let path = dir.join(&include.path);
    if !path.is_file() {
        return Err(format!("include of {}: no such file", include.path));
    }
    let source =
        fs::read_to_string(&path).map_err(|e| format!("include of {}: {e}", include.path))?;
    match &include.selector {
        Selector::Whole => Ok(()),
        Selector::Anchor(name) => {
            check_anchor(&source, name).map_err(|e| format!("include of {}: {e}", include.path))
        }
        Selector::Lines { start, end } => {
            let count = source.lines().count();
            let start = start.unwrap_or(1);
            let end = end.unwrap_or(count);
            if start == 0 || start > end || end > count {
                Err(format!(
                    "include of {}: lines {start}..{end} do not exist (the file has {count})",
                    include.path
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// The text with fenced code blocks and inline code blanked out (lengths and newlines kept,
/// so offsets and line numbers stay right): `a[0](b)` in Rust is not a link.
fn prose_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let opens = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
        match (fence, opens) {
            (None, Some(f)) => {
                fence = Some(f);
                out.extend(line.chars().map(blank));
            }
            (Some(f), Some(g)) if f == g => {
                fence = None;
                out.extend(line.chars().map(blank));
            }
            (Some(_), _) => out.extend(line.chars().map(blank)),
            (None, None) => out.push_str(&blank_inline_code(line)),
        }
    }
    out
}

fn blank(c: char) -> char {
    if c == '\n' { '\n' } else { ' ' }
}

/// Blanks what sits between matching runs of backticks on one line.
fn blank_inline_code(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let run = rest[open..].bytes().take_while(|&b| b == b'`').count();
        let ticks = &rest[open..open + run];
        let after = &rest[open + run..];
        match after.find(ticks) {
            Some(close) => {
                let code_len = run + close + run;
                out.extend(rest[open..open + code_len].chars().map(blank));
                rest = &rest[open + code_len..];
            }
            None => {
                out.push_str(&rest[open..open + run]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A link or image target found in a chapter.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    line: usize,
    target: String,
}

/// Inline links and images `[text](target "title")`, reference definitions `[ref]: target`,
/// and HTML `src="..."`/`href="..."`, in the prose of a chapter.
fn targets_in(text: &str) -> Vec<Target> {
    let prose = prose_only(text);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = prose[from..].find("](").map(|i| from + i) {
        let start = at + 2;
        let Some(len) = prose[start..].find(')') else {
            break;
        };
        let inside = prose[start..start + len].trim();
        // An optional title follows the target after a space.
        let target = inside.split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        found.push(Target {
            line: line_of(&prose, at),
            target: target.to_string(),
        });
        from = start + len;
    }
    for (number, line) in prose.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix('[') {
            if let Some((label, definition)) = rest.split_once("]:") {
                if !label.is_empty() && !label.contains('[') {
                    if let Some(target) = definition.split_whitespace().next() {
                        found.push(Target {
                            line: number + 1,
                            target: target.to_string(),
                        });
                    }
                }
            }
        }
        for attribute in ["src=\"", "href=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attribute) {
                rest = &rest[at + attribute.len()..];
                if let Some(end) = rest.find('"') {
                    found.push(Target {
                        line: number + 1,
                        target: rest[..end].to_string(),
                    });
                    rest = &rest[end..];
                }
            }
        }
    }
    found.sort_by_key(|t| t.line);
    found
}

/// Whether a target leaves the book for the web (or is a mere fragment of this page).
fn is_external(target: &str) -> bool {
    target.is_empty()
        || target.starts_with('#')
        || target.contains("://")
        || target.starts_with("mailto:")
}

/// `path` with `.` and `..` resolved by hand (the file need not exist).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Checks a relative link or image target of a chapter in `dir` against the book in `src`.
fn check_target(src: &Path, dir: &Path, target: &str) -> Result<(), String> {
    let path_part = target.split(['#', '?']).next().unwrap_or("");
    if path_part.is_empty() {
        return Ok(());
    }
    let resolved = normalise(&dir.join(path_part));
    if !resolved.starts_with(normalise(src)) {
        return Err(format!(
            "link to {target}: outside the book's src/, so dead in the rendered book"
        ));
    }
    if resolved.exists() {
        Ok(())
    } else {
        Err(format!("link to {target}: no such file"))
    }
}

/// The chapters `SUMMARY.md` lists (resolved paths), with the line of each. Draft chapters,
/// written `[Title]()`, have no file and are skipped.
fn summary_chapters(src: &Path, summary: &str) -> Vec<(usize, PathBuf)> {
    targets_in(summary)
        .into_iter()
        .filter(|t| !is_external(&t.target))
        .map(|t| (t.line, normalise(&src.join(&t.target))))
        .collect()
}

/// Everything wrong with the book in `src`.
fn problems(src: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let summary_path = src.join("SUMMARY.md");
    let Ok(summary) = fs::read_to_string(&summary_path) else {
        problems.push(Problem {
            file: summary_path,
            line: 0,
            message: "SUMMARY.md is missing".into(),
        });
        return problems;
    };
    let listed = summary_chapters(src, &summary);
    for (line, chapter) in &listed {
        if !chapter.is_file() {
            problems.push(Problem {
                file: summary_path.clone(),
                line: *line,
                message: format!("chapter {} is listed but missing", chapter.display()),
            });
        }
    }

    for file in markdown_files(src) {
        let relative = file.strip_prefix(src).unwrap_or(&file).to_path_buf();
        let shown = Path::new("docs/src").join(&relative);
        let text =
            fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let dir = file.parent().expect("a file has a folder");

        if file != summary_path && !listed.iter().any(|(_, c)| *c == normalise(&file)) {
            problems.push(Problem {
                file: shown.clone(),
                line: 1,
                message: "not listed in SUMMARY.md, so mdBook would not render it".into(),
            });
        }
        match includes_in(&text) {
            Ok(includes) => {
                for include in includes {
                    if let Err(message) = check_include(dir, &include) {
                        problems.push(Problem {
                            file: shown.clone(),
                            line: include.line,
                            message,
                        });
                    }
                }
            }
            Err((line, message)) => problems.push(Problem {
                file: shown.clone(),
                line,
                message,
            }),
        }
        for target in targets_in(&text) {
            if is_external(&target.target) {
                continue;
            }
            if let Err(message) = check_target(src, dir, &target.target) {
                problems.push(Problem {
                    file: shown.clone(),
                    line: target.line,
                    message,
                });
            }
        }
    }
    problems
}

#[test]
fn every_include_chapter_image_and_link_of_the_book_exists() {
    let src = book_src();
    let problems = problems(&src);
    assert!(
        problems.is_empty(),
        "the book points at things that are not there:\n{}",
        problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_book_includes_code() {
    // A guard against the checker finding nothing at all because its parser broke.
    let mut count = 0;
    for file in markdown_files(&book_src()) {
        let text = fs::read_to_string(&file).unwrap();
        count += includes_in(&text).unwrap().len();
    }
    assert!(count >= 10, "only {count} includes found in the whole book");
}

// The checker's own parts, on small inputs.

#[test]
fn includes_are_found_with_their_selectors() {
    let text = "intro\n```rust\n{{#include ../../a/lib.rs:serve}}\n```\n\
                {{#rustdoc_include b.rs:3:9}}\n{{#include c.rs}}\n\\{{#include escaped.rs}}\n\
                {{#playground d.rs}}\n";
    let found = includes_in(text).unwrap();
    assert_eq!(
        found,
        [
            Include {
                line: 3,
                path: "../../a/lib.rs".into(),
                selector: Selector::Anchor("serve".into()),
            },
            Include {
                line: 5,
                path: "b.rs".into(),
                selector: Selector::Lines {
                    start: Some(3),
                    end: Some(9)
                },
            },
            Include {
                line: 6,
                path: "c.rs".into(),
                selector: Selector::Whole,
            },
        ]
    );
}

#[test]
fn line_selectors_may_leave_either_end_open() {
    let lines = |start, end| Selector::Lines { start, end };
    assert_eq!(parse_selector("7"), Ok(lines(Some(7), Some(7))));
    assert_eq!(parse_selector("7:"), Ok(lines(Some(7), None)));
    assert_eq!(parse_selector(":7"), Ok(lines(None, Some(7))));
    assert!(parse_selector("not an anchor").is_err());
}

#[test]
fn an_anchor_needs_its_exact_name_at_both_ends() {
    let source = "// ANCHOR: serve_connection\nx\n// ANCHOR_END: serve_connection\n\
                  #   ANCHOR:   listen\ny\n";
    assert_eq!(check_anchor(source, "serve_connection"), Ok(()));
    assert!(
        check_anchor(source, "serve").is_err(),
        "a prefix is not a name"
    );
    assert!(check_anchor(source, "listen").is_err(), "no ANCHOR_END");
    let reversed = "// ANCHOR_END: a\n// ANCHOR: a\n";
    assert!(check_anchor(reversed, "a").is_err(), "END before start");
}

#[test]
fn links_in_code_are_not_links() {
    let text = "See [the harness](harness.md#listen) and ![chart](img/x.svg \"title\").\n\
                `a[0](b)` is code.\n```rust\nlet f = v[0](1);\n```\n[ref]: act1.md\n\
                <img src=\"img/y.svg\" alt=\"\">\n";
    let targets: Vec<_> = targets_in(text).into_iter().map(|t| t.target).collect();
    assert_eq!(
        targets,
        ["harness.md#listen", "img/x.svg", "act1.md", "img/y.svg"]
    );
}

#[test]
fn links_must_stay_inside_the_book() {
    let src = book_src();
    assert!(check_target(&src, &src, "../../crates/act1-naive/src/lib.rs").is_err());
    assert!(check_target(&src, &src, "SUMMARY.md#top").is_ok());
    assert!(check_target(&src, &src, "no-such-chapter.md").is_err());
}
