//! Jokes files for tests: the tricky fixture every act is checked against, and temporary files
//! holding whatever a test needs.

use std::path::{Path, PathBuf};

use joke_index::{FormatChoice, Index};

/// Lines of the long joke that is over RFC 865's 512 bytes.
const LONG_JOKE_LINES: usize = 12;
/// Lines of the big joke: about 100 KB, more than a socket takes in one write, so the
/// streaming acts meet partial writes and `Pending` on a real socket.
const BIG_JOKE_LINES: usize = 1_300;

/// A jokes file (dashed format) with every shape that has caught a server out:
///
/// - leading blank lines before the first joke, trailing blank lines after a joke;
/// - CRLF line endings (served as `\n`), and a line ending in `\r\r\n` (served as `\r\n`, the
///   first `\r` being content);
/// - indented lines (spaces and a tab), an inner blank line, trailing spaces kept;
/// - `--->>> x <<<---` and `-----    -----`: lines that start with dashes but are content;
/// - a joke longer than 512 bytes, and one of about 100 KB;
/// - a last joke without a final newline.
pub fn fixture_text() -> String {
    fixture_text_with_big_joke(true)
}

/// The fixture without its 100 KB joke: what tests use that measure how long the server's
/// polls take, so that the time spent copying a big joke (a millisecond and more in a debug
/// build) does not hide what they look for.
pub fn short_jokes_text() -> String {
    fixture_text_with_big_joke(false)
}

fn fixture_text_with_big_joke(big: bool) -> String {
    let mut text = String::new();
    text.push_str("\n  \n\n");
    text.push_str("Why did the async task cross the road?\r\n");
    text.push_str("It was .awaited on the other side.\r\n");
    text.push_str("\r\n");
    text.push_str("---\n");
    text.push_str("    An indented opening line.\n");
    text.push_str("\tA line indented with a tab.\n");
    text.push('\n');
    text.push_str("After an inner blank line; trailing spaces stay.   \n");
    text.push_str("\n\n");
    text.push_str("------\t \n");
    text.push_str("--->>> x <<<---\n");
    text.push_str("-----    -----\n");
    text.push_str("---\r\n");
    for n in 0..LONG_JOKE_LINES {
        text.push_str(&format!(
            "Line {n:02} of a joke far longer than RFC 865's 512 bytes, so nobody can trim it.\n"
        ));
    }
    text.push_str("---\n");
    text.push_str("A line with a carriage return \r inside, and one at its end:\r\r\n");
    text.push_str("the punchline.\n");
    text.push_str("---\n");
    if big {
        for n in 0..BIG_JOKE_LINES {
            text.push_str(&format!(
                "{n:04} A very big joke: long enough that one write(2) cannot take it whole. ha\n"
            ));
        }
        text.push_str("---\n");
    }
    text.push_str("Knock knock.\nWho's there?\nA joke with no newline at the end.");
    text
}

/// A jokes file in a temporary folder, removed when dropped.
#[derive(Debug)]
pub struct JokesFile {
    // Held for its `Drop`, which removes the folder.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl JokesFile {
    /// A file holding [`fixture_text`].
    pub fn fixture() -> Self {
        Self::with_bytes(fixture_text())
    }

    /// A file holding [`short_jokes_text`].
    pub fn short_jokes() -> Self {
        Self::with_bytes(short_jokes_text())
    }

    /// A file holding exactly `bytes`.
    pub fn with_bytes(bytes: impl AsRef<[u8]>) -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary folder");
        let path = dir.path().join("jokes.txt");
        std::fs::write(&path, bytes).expect("writing a temporary jokes file");
        JokesFile { _dir: dir, path }
    }

    /// A path in the same temporary folder where no file exists.
    pub fn missing_sibling(&self) -> PathBuf {
        self.folder().join("no-such-jokes.txt")
    }

    /// The temporary folder holding the file.
    pub fn folder(&self) -> &Path {
        self.path.parent().expect("the file is in a folder")
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file, indexed.
    pub fn index(&self) -> Index {
        Index::build(&self.path, FormatChoice::Auto).expect("indexing a test jokes file")
    }

    /// Every joke of the file in served form, read through the index: what a server must send.
    pub fn served_jokes(&self) -> Vec<String> {
        self.index()
            .read_all_blocking()
            .expect("reading a test jokes file")
    }

    /// The same, as the set of byte strings a client may receive (what [`crate::load`]
    /// checks against).
    pub fn served_joke_set(&self) -> std::sync::Arc<std::collections::HashSet<Vec<u8>>> {
        std::sync::Arc::new(
            self.served_jokes()
                .into_iter()
                .map(String::into_bytes)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_holds_the_tricky_shapes_in_served_form() {
        let file = JokesFile::fixture();
        let jokes = file.served_jokes();
        assert_eq!(jokes.len(), 7, "{jokes:#?}");
        assert_eq!(
            jokes[0],
            "Why did the async task cross the road?\nIt was .awaited on the other side.\n"
        );
        assert_eq!(
            jokes[1],
            "    An indented opening line.\n\tA line indented with a tab.\n\n\
             After an inner blank line; trailing spaces stay.   \n"
        );
        assert_eq!(jokes[2], "--->>> x <<<---\n-----    -----\n");
        assert!(jokes[3].len() > joke_index::RFC865_LIMIT);
        assert_eq!(
            jokes[4],
            "A line with a carriage return \r inside, and one at its end:\r\nthe punchline.\n"
        );
        assert!(jokes[5].len() > 64 * 1024);
        assert_eq!(
            jokes[6],
            "Knock knock.\nWho's there?\nA joke with no newline at the end.\n"
        );
        // The same jokes, split from the text in memory by the other code path.
        let (_, in_memory) =
            joke_index::jokes_in(fixture_text().as_bytes(), FormatChoice::Auto).unwrap();
        assert_eq!(in_memory, jokes);
        // The short version is the same without the big one.
        let mut short = jokes;
        short.remove(5);
        assert_eq!(JokesFile::short_jokes().served_jokes(), short);
    }
}
