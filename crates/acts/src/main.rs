//! `run-act ACT [OPTIONS]`: runs any act of the list by its name, exactly as the act's own
//! binary would run (`run-act act1-naive --addr 127.0.0.1:0` is `act1-naive --addr
//! 127.0.0.1:0`). The cross-act tests start it, so that each act is tested as its own process
//! from one binary, and `run-act --list` prints the list.

use std::process::ExitCode;

use joke_index::exit_code;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: run-act ACT [OPTIONS] (run-act --list for the acts)");
        return ExitCode::from(exit_code::BAD_INPUT);
    };
    if name == "--list" {
        for act in acts::ACTS {
            println!(
                "{:<22} {:<24} docs/src/{}",
                act.name, act.title, act.chapter
            );
        }
        return ExitCode::SUCCESS;
    }
    let name = name.to_string_lossy();
    match acts::parse_act(&name) {
        Ok(act) => act.run(args),
        Err(error) => {
            let known: Vec<&str> = acts::ACTS.iter().map(|act| act.name).collect();
            eprintln!("run-act: error: {error}; the acts are {}", known.join(", "));
            ExitCode::from(exit_code::BAD_INPUT)
        }
    }
}
