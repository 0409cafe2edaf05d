//! # Act III: the version that does not compile
//!
//! Write each line of the joke with `stream::iter(lines).for_each(move |line| async move {
//! socket.write_all(..) })` and rustc refuses with E0507: `for_each` takes an `FnMut`, and
//! each call's future would carry the one `&mut` socket away from the closure. The full
//! message is in `compile-error.txt`; the reasoning is in `docs/src/act3-borrow-checker.md`.
//! Two ways out, both tested: [`write_lines_threading_the_socket`] (`try_fold` hands the
//! socket from step to step) and [`write_lines_in_a_loop`] (the plain `async` loop).
//!
//! Act III is no server. Run its tests with `cargo test -p act3-borrow-checker`: the
//! `compile_fail,E0507` doctest below passes only while the broken version fails to compile,
//! and `tests/still_does_not_compile.rs` compiles it for real and checks that rustc still
//! says E0507.

use std::io;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The seed article's version, which does not compile:
///
/// ```compile_fail,E0507
#[doc = include_str!("../broken/does_not_compile.rs")]
/// ```
pub mod does_not_compile {}

// ANCHOR: threading_the_socket
/// Writes each line to `socket`, handing the socket from one step of the stream to the next.
pub async fn write_lines_threading_the_socket<W>(
    lines: Vec<String>,
    socket: &mut W,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    stream::iter(lines)
        .map(Ok::<String, io::Error>)
        // Each step receives the socket by value and gives it back when its write is done.
        .try_fold(socket, |socket, line| async move {
            socket.write_all(line.as_bytes()).await?;
            Ok(socket)
        })
        .await?;
    Ok(())
}
// ANCHOR_END: threading_the_socket

// ANCHOR: in_a_loop
/// Writes each line of `lines` to `socket`, one after the other.
pub async fn write_lines_in_a_loop<W>(
    lines: impl Stream<Item = String>,
    socket: &mut W,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut lines = std::pin::pin!(lines);
    while let Some(line) = lines.next().await {
        socket.write_all(line.as_bytes()).await?;
    }
    Ok(())
}
// ANCHOR_END: in_a_loop

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    fn lines() -> Vec<String> {
        [
            "Why was the borrow checker calm?\n",
            "\n",
            "  It had it all under control.\n",
        ]
        .map(String::from)
        .to_vec()
    }

    /// A connected pair of loopback sockets: what the server writes, the client reads.
    async fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

    async fn received_by_client(mut client: TcpStream) -> String {
        let mut received = String::new();
        client.read_to_string(&mut received).await.unwrap();
        received
    }

    #[tokio::test]
    async fn threading_the_socket_writes_every_line_in_order() {
        let (mut server, client) = socket_pair().await;
        let reader = tokio::spawn(received_by_client(client));
        write_lines_threading_the_socket(lines(), &mut server)
            .await
            .unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), lines().concat());
    }

    #[tokio::test]
    async fn the_loop_writes_every_line_in_order() {
        let (mut server, client) = socket_pair().await;
        let reader = tokio::spawn(received_by_client(client));
        write_lines_in_a_loop(stream::iter(lines()), &mut server)
            .await
            .unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), lines().concat());
    }

    #[tokio::test]
    async fn a_write_error_stops_the_stream_and_is_returned() {
        let (mut server, client) = socket_pair().await;
        server.shutdown().await.unwrap();
        drop(client);
        let error = write_lines_threading_the_socket(lines(), &mut server)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe, "{error}");
    }

    /// The recorded compiler message and the doctest expect the same error code, so the book
    /// never shows one error while the test checks for another.
    #[test]
    fn the_recorded_error_is_the_one_the_doctest_expects() {
        let recorded = include_str!("../compile-error.txt");
        let lib = include_str!("lib.rs");
        let code = "E0507";
        assert!(lib.contains(&format!("compile_fail,{code}")));
        assert!(
            recorded.contains(&format!("error[{code}]: cannot move out of `socket`")),
            "{recorded}"
        );
    }
}
