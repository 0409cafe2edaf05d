//! # Act III: the version that does not compile
//!
//! Acts I and II wrote the whole joke with one `write_all`. The seed article then tried to be
//! more "streaming": turn the joke's lines into a stream and, with a combinator, write each
//! line to the socket as it comes. In today's Rust that first attempt reads:
//!
//! ```text
//! stream::iter(lines)
//!     .for_each(move |line| async move {
//!         let _ = socket.write_all(line.as_bytes()).await;
//!     })
//!     .await;
//! ```
//!
//! and the compiler refuses it with `error[E0507]: cannot move out of `socket`, a captured
//! variable in an `FnMut` closure` (the full message, as rustc prints it today, is in
//! `compile-error.txt` beside this crate). Why:
//!
//! - `for_each` calls its closure once per line, so the closure is an `FnMut`: it must still
//!   be whole after each call.
//! - Each call returns a future (the `async move` block) that lives on after the call
//!   returns, until it is awaited. To use the socket, that future must hold the socket, so
//!   `async move` moves `socket` (a `&mut TcpStream`, which cannot be copied) out of the
//!   closure and into the first future.
//! - The second call would then find the closure without its socket. Rust rejects the
//!   first move rather than let that happen.
//!
//! Dropping the `move`s does not help either: the future would then *borrow* the closure's
//! socket while the closure may be called again for the next line, and two live `&mut` to one
//! socket are exactly what the borrow checker exists to forbid ("captured variable cannot
//! escape `FnMut` closure body"). The compiler is right both times: nothing in `for_each`'s
//! signature promises that one line's write finishes before the next one starts.
//!
//! There are two ways out, both below and both tested:
//!
//! - [`write_lines_threading_the_socket`]: make the socket part of the data that flows from
//!   one step to the next. `try_fold` hands each step the accumulator *by value* and takes it
//!   back from the step's future, so each future owns the socket while it runs and returns it
//!   when done. (The article's fix with futures 0.1 was the same idea: `fold`, with
//!   `tokio::io::write_all` taking the socket and giving it back.) Errors now have somewhere
//!   to go too, which `for_each` never had: its `let _ =` threw them away.
//! - [`write_lines_in_a_loop`]: with `async`/`await`, the plain loop says it best. The loop
//!   body finishes one write before it asks for the next line, so one `&mut` borrow at a time
//!   is obvious to the compiler.
//!
//! Act III is no server: it is this lesson and its tests. Run them with
//! `cargo test -p act3-borrow-checker`. The doctest below, marked `compile_fail,E0507`, passes
//! only while the broken version fails to compile; stable rustdoc does not check the error
//! code, so `tests/still_does_not_compile.rs` also compiles it for real and checks that rustc
//! still says E0507 (and keeps `compile-error.txt` in step; its header says how to regenerate
//! the file).

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
