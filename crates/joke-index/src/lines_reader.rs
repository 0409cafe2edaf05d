//! Reading one joke a line at a time, for an act that sends each line as soon as it is read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::sync::Arc;

use crate::{Index, ReadError};

/// The lines of one joke in served form (each ending in `\n`), read from the file one at a
/// time with blocking calls: an [`Iterator`] of `Result`s, made by [`Index::lines_blocking`].
///
/// It makes the same checks as [`Index::read_joke_blocking`], spread over the read: the file
/// is checked against the index when it is opened, and again after the joke's last byte, and
/// a short read or bytes that are not UTF-8 also mean that the file changed. A failure is the
/// iterator's last item. Unlike a whole read, a failure may come *after* lines were handed
/// out: a caller that sent them on must treat the joke as cut (the harness ends such a
/// connection with a reset, never a clean end that would pass for a whole joke).
#[derive(Debug)]
pub struct JokeLineReader {
    index: Arc<Index>,
    /// The file, limited to the joke's bytes, or the error met opening it (handed out first).
    reader: Result<BufReader<Take<File>>, Option<ReadError>>,
    /// The joke's bytes not read yet.
    left: u64,
    done: bool,
}

impl Index {
    /// Opens joke `number` of `index` for reading line by line (see [`JokeLineReader`]).
    pub fn lines_blocking(index: &Arc<Index>, number: usize) -> JokeLineReader {
        let opened = index.open_joke(number);
        let left = index.span(number).map_or(0, |span| span.byte_len());
        JokeLineReader {
            index: Arc::clone(index),
            reader: opened.map_err(Some),
            left,
            done: false,
        }
    }

    fn open_joke(&self, number: usize) -> Result<BufReader<Take<File>>, ReadError> {
        let span = self.span_or_error(number)?;
        let io_error = ReadError::io(self.path());
        let mut file = File::open(self.path()).map_err(io_error)?;
        self.ensure_unchanged(&file.metadata().map_err(io_error)?)?;
        file.seek(SeekFrom::Start(span.bytes.start))
            .map_err(io_error)?;
        Ok(BufReader::new(file.take(span.byte_len())))
    }
}

impl Iterator for JokeLineReader {
    type Item = Result<String, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let reader = match &mut self.reader {
            Ok(reader) => reader,
            Err(error) => {
                self.done = true;
                return error.take().map(Err);
            }
        };
        let mut raw = Vec::new();
        let result = match reader.read_until(b'\n', &mut raw) {
            // The end of the joke's bytes: all there, and the file still the indexed one?
            Ok(0) => {
                self.done = true;
                if self.left != 0 {
                    return Some(Err(ReadError::changed(self.index.path())));
                }
                let metadata = reader.get_ref().get_ref().metadata();
                return match metadata {
                    Ok(metadata) => self.index.ensure_unchanged(&metadata).err().map(Err),
                    Err(source) => Some(Err(ReadError::io(self.index.path())(source))),
                };
            }
            Ok(read) => {
                self.left = self.left.saturating_sub(read as u64);
                self.index.decode(&mut raw);
                served_line(raw).ok_or_else(|| ReadError::changed(self.index.path()))
            }
            Err(source) => Err(ReadError::io(self.index.path())(source)),
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// One raw line of a joke's span in served form: its ending (`\n` or `\r\n`, or none at the
/// end of the file) becomes `\n`. The index trimmed the span's blank edges, so every line of
/// it is served. `None` when the bytes are not UTF-8, which the indexed file's were.
fn served_line(mut raw: Vec<u8>) -> Option<String> {
    if raw.last() == Some(&b'\n') {
        raw.pop();
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
    }
    raw.push(b'\n');
    String::from_utf8(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FormatChoice;

    fn indexed(text: &str) -> (tempfile::TempDir, Arc<Index>) {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("jokes.txt");
        std::fs::write(&path, text).unwrap();
        let index = Arc::new(Index::build(&path, FormatChoice::Auto).unwrap());
        (folder, index)
    }

    #[test]
    fn the_lines_make_the_served_joke() {
        let text = "\n  first\r\n\n\tsecond \n---\nother\n---\nlast, no newline";
        let (_folder, index) = indexed(text);
        for number in 0..index.len() {
            let lines: Vec<String> = Index::lines_blocking(&index, number)
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                lines.concat(),
                index.read_joke_blocking(number).unwrap(),
                "joke {number}"
            );
        }
    }

    #[test]
    fn a_change_under_the_reader_ends_it_with_an_error() {
        let (folder, index) = indexed("one\ntwo\nthree\n---\nfour\n");
        let mut lines = Index::lines_blocking(&index, 0);
        assert_eq!(lines.next().unwrap().unwrap(), "one\n");
        // Shorter now: the rest of the joke is not there any more, or the check at the end
        // sees another file.
        std::fs::write(folder.path().join("jokes.txt"), "one\n").unwrap();
        let rest: Vec<_> = lines.collect();
        let error = rest.last().unwrap().as_ref().unwrap_err();
        assert!(error.is_stale(), "{error}");
        assert!(rest[..rest.len() - 1].iter().all(Result::is_ok));
    }

    #[test]
    fn a_missing_joke_is_the_first_and_only_item() {
        let (_folder, index) = indexed("one\n");
        let items: Vec<_> = Index::lines_blocking(&index, 5).collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Err(ReadError::NoSuchJoke { .. })));
    }
}
