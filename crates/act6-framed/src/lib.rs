//! # Act VI: frames, a codec and a sink
//!
//! Act IV wrote its own future to push lines into a socket. `tokio-util` has that machinery
//! ready-made: a [`FramedWrite`] wraps any `AsyncWrite` and turns it into a [`Sink`] of
//! *frames*, with a *codec* saying how one frame becomes bytes. [`LinesCodec`] is the codec for
//! text lines: a frame is a `String`, written as its bytes followed by `\n`. The frames are
//! gathered in a buffer and written to the socket in big pieces, so a short joke still goes
//! out in one `write`, not one per line.
//!
//! The joke's lines come as a [`Stream`] (read off the runtime by
//! [`JokeToServe::read_lines_off_runtime`]), and a stream is poured into a sink in one call.
//! There are two such calls, and the difference matters here:
//!
//! - [`StreamExt::forward`] sends every item, flushes, and then **closes** the sink. Closing a
//!   `FramedWrite` shuts down the socket's writing side (`poll_shutdown`).
//! - [`SinkExt::send_all`] sends every item and flushes, and leaves the sink **open**.
//!
//! We use `send_all`: closing the connection is the harness's job. It shuts down our side,
//! then drains what the client sent before it closes (RFC 865's polite close, so that a
//! talkative client is not answered with a reset). With `forward` the shutdown would happen
//! here, and the harness's own shutdown would then find the socket already half-closed.
//!
//! Two details the seed article tripped over, in their modern form:
//!
//! - **Errors.** The sink's error type is the codec's, [`LinesCodecError`], while a connection
//!   handler speaks `io::Error`; and `send_all` insists that the stream's error type be the
//!   sink's. `sink_map_err` converts the sink's errors on the way out (the article needed the
//!   same adapter, and a page of type errors to find out). [`LinesCodecError::Io`] carries the
//!   socket's own error, which we unwrap.
//! - **The line limit.** [`LinesCodec::new_with_max_length`] bounds the line the codec will
//!   *decode*: a server that reads lines from clients with a plain `LinesCodec::new()` lets one
//!   client that never sends `\n` fill its memory. Encoding is not checked against the limit
//!   (a `String` we hand it is written whatever its length), so for our writing side the limit
//!   is a habit worth keeping rather than a guard.
//!
//! The bytes are the same as every other act's: our lines end in `\n`, which we take off
//! because `LinesCodec` puts one back. A line that ends in `\r` (content, see DESIGN.md) keeps
//! it: the codec does not touch what is inside a line.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act6-framed -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: no slow polls (the read is on the blocking pool), and fewer polls per
//! connection than Acts IV and V, thanks to the buffer: one write per joke.

use std::io;

use futures::{SinkExt, Stream, StreamExt};
use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio_util::codec::{FramedWrite, LinesCodec, LinesCodecError};

// ANCHOR: codec
/// The longest line [`LinesCodec`] would decode (it does not check lines it encodes): the
/// harness's own limit, which refuses jokes files with longer lines, so codec and server agree.
pub const MAX_LINE: usize = joke_server::MAX_LINE_BYTES;

/// The codec's error as the `io::Error` a connection handler reports.
fn codec_error_to_io(error: LinesCodecError) -> io::Error {
    match error {
        LinesCodecError::Io(error) => error,
        LinesCodecError::MaxLineLengthExceeded => io::Error::new(io::ErrorKind::InvalidData, error),
    }
}
// ANCHOR_END: codec

// ANCHOR: send_all
/// Sends every line of `lines` (each ending in `\n`) through a `FramedWrite` on `writer`,
/// flushes, and leaves `writer` open.
pub async fn write_lines_framed<W>(
    lines: impl Stream<Item = String> + Unpin,
    writer: W,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let framed = FramedWrite::new(writer, LinesCodec::new_with_max_length(MAX_LINE));
    // A `FramedWrite` is a sink of anything its codec can encode, so say which: `String`s.
    let mut sink = SinkExt::<String>::sink_map_err(framed, codec_error_to_io);
    // `send_all` takes a stream of `Result`s whose error type is the sink's.
    let mut frames = lines.map(|mut line| {
        // `LinesCodec` adds the `\n` back.
        if line.ends_with('\n') {
            line.pop();
        }
        Ok::<String, io::Error>(line)
    });
    sink.send_all(&mut frames).await
}
// ANCHOR_END: send_all

/// Writes each joke through `FramedWrite` and `LinesCodec`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FramedLines;

// ANCHOR: serve
impl Act for FramedLines {
    async fn serve_joke(
        &self,
        joke: JokeToServe,
        socket: &mut TcpStream,
    ) -> Result<(), ServeError> {
        // The whole joke is read (and checked) before the first line: a read error returns
        // here, before anything is written.
        let lines = joke.read_lines_off_runtime().await?;
        // `&mut TcpStream` is itself an `AsyncWrite`: the `FramedWrite` borrows the socket and
        // the harness gets it back, still open, when we return.
        write_lines_framed(lines, &mut *socket).await?;
        Ok(())
    }
}
// ANCHOR_END: serve

#[cfg(test)]
mod tests {
    use futures::stream;
    use joke_server::JokeLines;

    use super::*;

    #[tokio::test]
    async fn the_bytes_are_the_served_form_exactly() {
        let served = "  indented\n\nline with a carriage return at its end\r\n\tlast\n";
        let mut written = Vec::new();
        write_lines_framed(JokeLines::new(served.into()), &mut written)
            .await
            .unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), served);
    }

    #[tokio::test]
    async fn a_long_line_is_written_whole() {
        let long = format!("{}\n", "x".repeat(3 * MAX_LINE));
        let mut written = Vec::new();
        write_lines_framed(stream::iter([long.clone()]), &mut written)
            .await
            .unwrap();
        assert_eq!(written, long.as_bytes());
    }

    /// A writer that fails: its error comes out as the `io::Error` it was.
    #[tokio::test]
    async fn a_socket_error_comes_out_as_itself() {
        let (ours, theirs) = tokio::io::duplex(16);
        drop(theirs);
        let error = write_lines_framed(stream::iter(["a line\n".to_owned()]), ours)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe, "{error}");
    }

    #[test]
    fn the_codec_s_own_error_becomes_invalid_data() {
        let error = codec_error_to_io(LinesCodecError::MaxLineLengthExceeded);
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
