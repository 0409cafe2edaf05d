//! `act6-framed`: see the library's documentation for the lesson.

fn main() -> std::process::ExitCode {
    joke_server::run_act(env!("CARGO_PKG_NAME"), act6_framed::FramedLines)
}
