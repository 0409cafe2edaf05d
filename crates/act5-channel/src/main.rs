//! `act5-channel`: see the library's documentation for the lesson.

fn main() -> std::process::ExitCode {
    joke_server::run_act_with(env!("CARGO_PKG_NAME"), act5_channel::Channel::new)
}
