//! One test per kind of bad input: the error variant is the telling one, and its message
//! names the file (and the line, where there is one).

use std::io::Write;
use std::path::Path;

use joke_index::strfile::{DatProblem, Strfile, StrfileError};
use joke_index::{FormatChoice, Index, IndexError, InvalidUtf8, ReadError, jokes_in};

fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a test file");
    path
}

fn assert_names(message: &str, path: &Path) {
    let shown = path.display().to_string();
    assert!(
        message.contains(&shown),
        "message {message:?} should name {shown}"
    );
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-jokes.txt");
    let error = Index::build(&path, FormatChoice::Auto).unwrap_err();
    assert!(
        matches!(&error, IndexError::NotFound { path: p } if p == &path),
        "{error:?}"
    );
    assert_names(&error.to_string(), &path);
    assert_eq!(error.path(), path);
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let error = Index::build(dir.path(), FormatChoice::Auto).unwrap_err();
    assert!(
        matches!(error, IndexError::IsADirectory { .. }),
        "{error:?}"
    );
    assert_names(&error.to_string(), dir.path());
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(dir.path(), "empty.txt", b"");
    let error = Index::build(&path, FormatChoice::Auto).unwrap_err();
    assert!(matches!(error, IndexError::NoJokes { .. }), "{error:?}");
    assert_names(&error.to_string(), &path);
}

#[test]
fn only_separators_and_blank_lines() {
    use FormatChoice::{Auto, Dashed, Fortune};
    let dir = tempfile::tempdir().unwrap();
    // Each file, and the formats in which it holds no joke. (Read in the other format, a
    // separator line is text: `---` is a fine fortune, `%` a fine dashed joke.)
    let cases: [(&str, &[u8], &[FormatChoice]); 4] = [
        (
            "dashes.txt",
            b"---\n\n-----  \n \t\n---\r\n",
            &[Auto, Dashed],
        ),
        ("percents.txt", b"%\n%\n\n%\r\n", &[Auto, Fortune]),
        ("blank.txt", b"\n  \n\t\r\n", &[Auto, Dashed, Fortune]),
        ("one-separator-no-newline.txt", b"---", &[Auto, Dashed]),
    ];
    for (name, bytes, choices) in cases {
        let path = file_with(dir.path(), name, bytes);
        for &choice in choices {
            let error = Index::build(&path, choice).unwrap_err();
            assert!(
                matches!(error, IndexError::NoJokes { .. }),
                "{name} {choice:?}: {error:?}"
            );
            assert_names(&error.to_string(), &path);
        }
    }
    let index = Index::build(dir.path().join("dashes.txt"), Fortune).unwrap();
    assert_eq!(
        index.read_joke_blocking(0).unwrap(),
        "---\n\n-----  \n \t\n---\n"
    );
    let index = Index::build(dir.path().join("percents.txt"), Dashed).unwrap();
    assert_eq!(index.read_joke_blocking(0).unwrap(), "%\n%\n\n%\n");
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(dir.path(), "latin1.txt", b"good\n---\ncaf\xe9\nmore\n");
    let error = Index::build(&path, FormatChoice::Auto).unwrap_err();
    assert!(
        matches!(error, IndexError::InvalidUtf8 { line: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(&message, &path);
    assert!(message.contains("line 3"), "{message}");
    assert_eq!(
        jokes_in(b"good\n---\ncaf\xe9\n", FormatChoice::Auto),
        Err(InvalidUtf8 { line: 3 })
    );
}

#[test]
fn invalid_utf8_far_into_a_file_and_across_read_buffers() {
    // 70,000 short lines push the bad byte well past the scanner's first 64 KiB buffer, and a
    // truncated multi-byte character at the very end must be caught too.
    let mut text = Vec::new();
    for _ in 0..70_000 {
        text.extend_from_slice("ok é\n".as_bytes());
    }
    let bad_line = 70_001;
    let dir = tempfile::tempdir().unwrap();
    let mut truncated = text.clone();
    truncated.extend_from_slice(b"cut \xe2\x82");
    let path = file_with(dir.path(), "truncated.txt", &truncated);
    let error = Index::build(&path, FormatChoice::Auto).unwrap_err();
    assert!(
        matches!(error, IndexError::InvalidUtf8 { line, .. } if line == bad_line),
        "{error:?}"
    );
    assert!(error.to_string().contains(&format!("line {bad_line}")));

    text.extend_from_slice(b"\xff\n");
    let path = file_with(dir.path(), "late.txt", &text);
    let error = Index::build(&path, FormatChoice::Auto).unwrap_err();
    assert!(
        matches!(error, IndexError::InvalidUtf8 { line, .. } if line == bad_line),
        "{error:?}"
    );
}

#[test]
fn joke_number_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(dir.path(), "two.txt", b"one\n---\ntwo\n");
    let index = Index::build(&path, FormatChoice::Auto).unwrap();
    let error = index.read_joke_blocking(2).unwrap_err();
    assert!(
        matches!(
            error,
            ReadError::NoSuchJoke {
                number: 2,
                count: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_names(&error.to_string(), &path);
    assert!(!error.is_stale());
}

#[test]
fn a_file_changed_after_indexing_is_refused_not_torn() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(dir.path(), "jokes.txt", b"one\n---\ntwo\n");
    let index = Index::build(&path, FormatChoice::Auto).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"---\nthree\n").unwrap();
    drop(file);
    assert!(index.has_changed());
    let error = index.read_joke_blocking(1).unwrap_err();
    assert!(matches!(error, ReadError::Changed { .. }), "{error:?}");
    assert!(error.is_stale());
    assert_names(&error.to_string(), &path);
    assert!(matches!(
        index.read_all_blocking(),
        Err(ReadError::Changed { .. })
    ));
}

#[test]
fn strfile_bad_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let error = Strfile::from_text_file(&missing).unwrap_err();
    assert!(matches!(error, StrfileError::Read { .. }), "{error:?}");
    assert_names(&error.to_string(), &missing);

    let error = Strfile::from_text_file(dir.path()).unwrap_err();
    assert!(matches!(error, StrfileError::Read { .. }), "{error:?}");
    assert_names(&error.to_string(), dir.path());

    let error = Strfile::read_dat(&missing).unwrap_err();
    assert!(matches!(error, StrfileError::Read { .. }), "{error:?}");

    let short = file_with(dir.path(), "short.dat", b"\0\0\0\x02");
    let error = Strfile::read_dat(&short).unwrap_err();
    assert!(
        matches!(
            &error,
            StrfileError::InvalidDat {
                problem: DatProblem::TooShort { len: 4 },
                ..
            }
        ),
        "{error:?}"
    );
    assert_names(&error.to_string(), &short);

    // A text file is not a .dat file, whatever its length.
    let text = file_with(dir.path(), "text.dat", &[b'x'; 40]);
    let error = Strfile::read_dat(&text).unwrap_err();
    assert!(
        matches!(
            &error,
            StrfileError::InvalidDat {
                problem: DatProblem::UnsupportedVersion { .. },
                ..
            }
        ),
        "{error:?}"
    );

    let unwritable = dir.path().join("no-such-dir").join("x.dat");
    let error = Strfile::from_text_bytes(b"a\n")
        .unwrap()
        .write_dat(&unwritable)
        .unwrap_err();
    assert!(matches!(error, StrfileError::Write { .. }), "{error:?}");
    assert_names(&error.to_string(), &unwritable);
}

#[test]
fn a_fortune_file_too_long_for_32_bit_offsets_is_an_error() {
    // A sparse file: 4 GiB long, but it takes no disk space and is refused before any read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge");
    let file = std::fs::File::create(&path).unwrap();
    let len = u64::from(u32::MAX) + 1;
    file.set_len(len).unwrap();
    let error = Strfile::from_text_file(&path).unwrap_err();
    assert!(
        matches!(&error, StrfileError::TooLarge { len: l, .. } if *l == len),
        "{error:?}"
    );
    assert_names(&error.to_string(), &path);
}
