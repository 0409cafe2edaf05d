//! `act2-spawn-blocking`: see the library's documentation for the lesson.

fn main() -> std::process::ExitCode {
    joke_server::run_act_with(
        env!("CARGO_PKG_NAME"),
        act2_spawn_blocking::SpawnBlocking::new,
    )
}
