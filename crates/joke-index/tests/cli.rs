//! The real `joke-index` binary on temporary files: output, exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A dashed jokes file with one joke over 512 bytes, an indented joke, CRLF endings on one
/// joke and a look-alike separator.
const JOKES: &str = concat!(
    "Why do programmers prefer dark mode?\nBecause light attracts bugs.\n",
    "---\r\n",
    "  Knock knock.\r\n\r\n  Race condition.\r\n  Who's there?\r\n",
    "----  \n\n",
    "--->>> not a separator <<<---\n",
    "---\n",
);

fn long_joke() -> String {
    format!("{}\n", "na ".repeat(200).trim_end())
}

fn joke_index(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_joke-index"))
        .args(args)
        .output()
        .expect("run joke-index")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("output is UTF-8")
}

struct Files {
    _dir: tempfile::TempDir,
    jokes: PathBuf,
}

fn jokes_file() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let jokes = dir.path().join("jokes.txt");
    std::fs::write(&jokes, format!("{JOKES}{}", long_joke())).unwrap();
    Files { _dir: dir, jokes }
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn stats_text() {
    let files = jokes_file();
    let output = joke_index(&["stats", arg(&files.jokes)]);
    assert!(output.status.success(), "{output:?}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("format:    dashed\n"), "{stdout}");
    assert!(stdout.contains("jokes:     4\n"), "{stdout}");
    assert!(stdout.contains("over 512:  1\n"), "{stdout}");
}

#[test]
fn stats_json() {
    let files = jokes_file();
    let output = joke_index(&["stats", arg(&files.jokes), "--json"]);
    assert!(output.status.success(), "{output:?}");
    let stats: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let sizes = [
        "Why do programmers prefer dark mode?\nBecause light attracts bugs.\n".len(),
        "  Knock knock.\n\n  Race condition.\n  Who's there?\n".len(),
        "--->>> not a separator <<<---\n".len(),
        long_joke().len(),
    ];
    assert_eq!(stats["file"], arg(&files.jokes));
    assert_eq!(stats["format"], "dashed");
    assert_eq!(stats["jokes"], 4);
    assert_eq!(stats["shortest_bytes"], *sizes.iter().min().unwrap());
    assert_eq!(stats["longest_bytes"], *sizes.iter().max().unwrap());
    let mean = sizes.iter().sum::<usize>() as f64 / 4.0;
    assert!(
        (stats["mean_bytes"].as_f64().unwrap() - mean).abs() < 1e-9,
        "{stats}"
    );
    assert_eq!(stats["rfc865_limit"], 512);
    assert_eq!(stats["over_rfc865_limit"], 1);
}

#[test]
fn stats_with_forced_format() {
    let files = jokes_file();
    let output = joke_index(&["stats", arg(&files.jokes), "--json", "--format", "fortune"]);
    let stats: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(stats["format"], "fortune");
    assert_eq!(stats["jokes"], 1);
}

#[test]
fn get_prints_the_exact_served_bytes() {
    let files = jokes_file();
    let output = joke_index(&["get", arg(&files.jokes), "1"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        output.stdout,
        b"  Knock knock.\n\n  Race condition.\n  Who's there?\n"
    );
    assert!(output.stderr.is_empty());
}

#[test]
fn get_with_a_bad_number_exits_2_naming_the_number_and_the_count() {
    let files = jokes_file();
    let output = joke_index(&["get", arg(&files.jokes), "4"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(stderr.contains(arg(&files.jokes)), "{stderr}");
    assert!(stderr.contains("no joke 4 (the file has 4)"), "{stderr}");

    let output = joke_index(&["get", arg(&files.jokes), "-1"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn dump_gives_one_json_string_per_joke_in_file_order() {
    let files = jokes_file();
    let output = joke_index(&["dump", arg(&files.jokes)]);
    assert!(output.status.success(), "{output:?}");
    let jokes: Vec<String> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON string"))
        .collect();
    assert_eq!(
        jokes,
        [
            "Why do programmers prefer dark mode?\nBecause light attracts bugs.\n".to_string(),
            "  Knock knock.\n\n  Race condition.\n  Who's there?\n".to_string(),
            "--->>> not a separator <<<---\n".to_string(),
            long_joke(),
        ]
    );
}

#[test]
fn check_lists_findings_and_exits_1() {
    let files = jokes_file();
    std::fs::write(
        &files.jokes,
        format!("{JOKES}---\n{}---\n  \n---\nlast\n", long_joke()),
    )
    .unwrap();
    let output = joke_index(&["check", arg(&files.jokes)]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = text(&output.stdout);
    let file = arg(&files.jokes);
    let expected = [
        format!("{file}:10: starts like a separator"),
        format!("{file}:12: empty record"),
        format!("{file}:13: joke 3 is 600 bytes, over RFC 865's 512"),
        format!("{file}:15: blank-only record"),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(want.as_str()),
            "{line:?} should start with {want:?}"
        );
    }
    assert!(text(&output.stderr).contains("4 findings"));
}

#[test]
fn check_a_clean_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clean.txt");
    std::fs::write(&path, "one\n%\ntwo\n%\n").unwrap();
    let output = joke_index(&["check", arg(&path)]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn check_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.txt");
    let output = joke_index(&["check", arg(&path)]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains(&format!("{}: no such file", arg(&path))));
}

#[test]
fn bad_input_exits_2_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"fine\n---\nnot \xff fine\n").unwrap();
    for command in ["stats", "get", "dump", "check"] {
        let mut args = vec![command, arg(&bad)];
        if command == "get" {
            args.push("0");
        }
        let output = joke_index(&args);
        assert_eq!(output.status.code(), Some(2), "{command}: {output:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("{} line 3: invalid UTF-8", arg(&bad))),
            "{stderr}"
        );
    }
    let output = joke_index(&["get", arg(dir.path()), "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("is a directory"));
    // `stats` reads a directory, and says when nothing in it can be served.
    let output = joke_index(&["stats", arg(dir.path())]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no jokes file in this directory"),
        "{output:?}"
    );
    assert!(
        text(&output.stdout).contains("line 3: invalid UTF-8"),
        "{output:?}"
    );
    let output = joke_index(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn dat_writes_strfiles_bytes_next_to_the_file_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let fortunes = dir.path().join("fortunes");
    std::fs::write(&fortunes, "ab\n%\ncde\n%\n").unwrap();
    let output = joke_index(&["dat", arg(&fortunes)]);
    assert!(output.status.success(), "{output:?}");
    let dat = std::fs::read(dir.path().join("fortunes.dat")).expect("fortunes.dat written");
    // What `strfile fortunes` writes for this text: header, then offsets 0, 5 and 11.
    let expected: Vec<u8> = [2u32, 2, 4, 3, 0]
        .iter()
        .flat_map(|n| n.to_be_bytes())
        .chain(*b"%\0\0\0")
        .chain([0u32, 5, 11].iter().flat_map(|n| n.to_be_bytes()))
        .collect();
    assert_eq!(dat, expected);
    assert!(text(&output.stdout).contains("2 records"));

    let out = dir.path().join("elsewhere.dat");
    let output = joke_index(&["dat", arg(&fortunes), arg(&out)]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read(&out).unwrap(), expected);

    let output = joke_index(&["dat", arg(&dir.path().join("missing"))]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("missing"));
}

#[test]
fn stats_of_a_directory_reports_each_file_the_total_and_what_was_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("riddles"), "one\n%\ntwo, longer\n%\n").unwrap();
    joke_index(&["dat", arg(&d.join("riddles"))]);
    std::fs::write(d.join("jokes.txt"), "a\n---\nbb\n---\nccc\n").unwrap();
    std::fs::write(d.join("README"), "Not jokes.\n").unwrap();
    std::fs::create_dir(d.join("off")).unwrap();
    std::fs::write(d.join("off/rude"), "n\n%\nb\n%\n").unwrap();

    let output = joke_index(&["stats", arg(d)]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains(&format!("{} (dashed)", arg(&d.join("jokes.txt")))),
        "{stdout}"
    );
    assert!(lines[1].split_whitespace().next() == Some("3"), "{stdout}");
    assert!(lines[2].contains("riddles (fortune)"), "{stdout}");
    assert!(lines[3].contains("total: 2 files"), "{stdout}");
    assert_eq!(lines[3].split_whitespace().next(), Some("5"), "{stdout}");
    assert!(
        stdout.contains("skipped: ") && stdout.contains("README"),
        "{stdout}"
    );
    assert!(stdout.contains("--offensive"), "{stdout}");
    assert!(!stdout.contains("riddles.dat"), "{stdout}");

    let output = joke_index(&["stats", "--json", "--offensive", arg(d)]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["total"]["files"], 3);
    assert_eq!(json["total"]["jokes"], 7);
    assert_eq!(json["files"].as_array().unwrap().len(), 3);
    assert_eq!(json["skipped"][0]["path"], arg(&d.join("README")));
}
