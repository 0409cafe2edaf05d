//! A joke as a `Stream` of lines, for an act that writes a joke one line at a time.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

/// The lines of one joke in served form, each ending in `\n`, as a [`Stream`].
///
/// The joke is already in memory (see [`crate::JokeToServe::read_lines_off_runtime`]), so the stream
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
