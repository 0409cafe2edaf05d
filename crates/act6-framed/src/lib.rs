//! # Act VI: frames, a codec and a sink
//!
//! [`FramedWrite`] with [`LinesCodec`] turns the socket into a [`Sink`](futures::Sink) of lines, and the
//! joke's [`Stream`] of lines (read on the blocking pool by
//! [`JokeToServe::read_lines_off_runtime`]) is poured into it with [`SinkExt::send_all`],
//! which flushes and leaves the socket open for the harness's polite close (`forward` would
//! close it). `sink_map_err` turns the codec's [`LinesCodecError`] back into the socket's
//! `io::Error`. The sink buffers frames, so a short joke leaves in one write. The why is in
//! `docs/src/act6-framed.md`.
//!
//! Run it, and fire a burst of connections at it from a second terminal:
//!
//! ```text
//! cargo run --release -p act6-framed -- --io-delay 2ms
//! cargo run --release -p bench-client -- --conns 1000
//! ```
//!
//! What to watch: few slow polls in the summary line (the read is on the pool); polls per
//! connection about Act II's. The difference from Acts IV and V is write calls: one per joke
//! here, one per line there.

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
