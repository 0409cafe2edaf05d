// Act III as the seed article first wrote it, in today's Rust: send the joke one line at a
// time with a stream combinator. It does not compile, and the error is the lesson.
//
// This file is not part of the crate. It is the body of a `compile_fail,E0507` doctest in
// `src/lib.rs`, so `cargo test` checks that it keeps failing; and
// `tests/still_does_not_compile.rs` compiles it alone, checks that it fails for that reason,
// and keeps rustc's message in `compile-error.txt` (`ACT3_REGENERATE=1` rewrites it).

// ANCHOR: does_not_compile
use futures::{StreamExt, stream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn write_lines(lines: Vec<String>, socket: &mut TcpStream) {
    stream::iter(lines)
        .for_each(move |line| async move {
            let _ = socket.write_all(line.as_bytes()).await;
        })
        .await;
}
// ANCHOR_END: does_not_compile

fn main() {
    // Only here so that this file is a whole program; `write_lines` is what matters.
    let _ = write_lines;
}
