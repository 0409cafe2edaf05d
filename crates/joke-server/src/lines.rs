//! A joke as a `Stream` of lines, read on the blocking pool: what the streaming acts (4 and 6)
//! write one line at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use joke_index::ReadError;
use tokio::task::JoinError;

use crate::JokeToServe;

impl JokeToServe {
    /// Reads the joke on the blocking pool (after the `--io-delay` sleep, also there), then
    /// hands out its lines one by one.
    ///
    /// The whole joke is read and checked *before* the first line is handed out, on purpose:
    /// the index lets us read a joke in one seek and one read, and only a finished read can say
    /// whether the file changed under us. A stream that yielded lines as they came off the disk
    /// could yield three lines and then an error, and the client would get a torn joke.
    // ANCHOR: read_lines_off_runtime
    pub async fn read_lines_off_runtime(self) -> Result<JokeLines, ReadError> {
        let reader = self.clone();
        let text = tokio::task::spawn_blocking(move || reader.read_blocking())
            .await
            .map_err(|error| self.read_task_failed(error))??;
        Ok(JokeLines { text, next: 0 })
    }
    // ANCHOR_END: read_lines_off_runtime

    /// The read error to report when the blocking task that was reading this joke did not
    /// finish: it panicked, or the runtime is shutting down. Nothing was read, so nothing may
    /// be written.
    pub fn read_task_failed(&self, error: JoinError) -> ReadError {
        ReadError::Io {
            path: self.index().path().to_path_buf(),
            source: io::Error::other(format!("the blocking read did not finish: {error}")),
        }
    }
}

/// The lines of one joke in served form, each ending in `\n`, as a [`Stream`].
///
/// The joke is already in memory (see [`JokeToServe::read_lines_off_runtime`]), so the stream
/// is always ready: it never returns `Pending`.
#[derive(Debug, Clone)]
pub struct JokeLines {
    text: String,
    next: usize,
}

impl JokeLines {
    /// The lines of `served`, a joke in served form.
    pub fn new(served: String) -> Self {
        JokeLines {
            text: served,
            next: 0,
        }
    }
}

// ANCHOR: joke_lines_stream
impl Stream for JokeLines {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<String>> {
        let rest = &self.text[self.next..];
        let Some(line) = joke_index::served_lines(rest).next() else {
            return Poll::Ready(None);
        };
        let line = line.to_owned();
        self.next += line.len();
        Poll::Ready(Some(line))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.text[self.next..].matches('\n').count();
        (left, Some(left + 1))
    }
}
// ANCHOR_END: joke_lines_stream

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn yields_each_line_with_its_newline() {
        let lines: Vec<String> = JokeLines::new("a\n\n  b\n".into()).collect().await;
        assert_eq!(lines, ["a\n", "\n", "  b\n"]);
    }

    #[tokio::test]
    async fn an_empty_joke_has_no_lines() {
        let lines: Vec<String> = JokeLines::new(String::new()).collect().await;
        assert!(lines.is_empty());
    }
}
