//! `slowfs MOUNTPOINT --backing DIR --delay 2ms`: mount a slow, read-only copy of DIR at
//! MOUNTPOINT and serve it in the foreground until Ctrl-C (SIGINT) or SIGTERM, then unmount.
//!
//! Try it in two terminals:
//!
//! ```text
//! mkdir -p /tmp/slow && cargo run --release -p slowfs -- /tmp/slow --backing crates/joke-server --delay 2ms
//! time cat /tmp/slow/Cargo.toml     # in the other terminal: at least 2 ms per read request
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// A FUSE filesystem that serves a folder read-only, every read taking at least --delay.
///
/// The page cache is kept out of the way (direct I/O), so the delay is paid on every read, by
/// every process. Runs in the foreground; Ctrl-C or SIGTERM unmounts. Linux only.
#[derive(Debug, Parser)]
#[command(name = "slowfs", version)]
struct Args {
    /// Where to mount the slow copy (an existing directory)
    mountpoint: PathBuf,

    /// The folder to serve, read-only
    #[arg(long, value_name = "DIR")]
    backing: PathBuf,

    /// The least time each read request takes, e.g. 2ms or 500us
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Duration,

    /// How many requests are served at once, like a device's command queue (32: a SATA SSD's
    /// NCQ depth, and the depth SSD data sheets quote random reads at)
    #[arg(long, value_name = "N", default_value_t = slowfs::DEFAULT_QUEUE_DEPTH,
          value_parser = parse_queue_depth)]
    queue_depth: usize,

    /// The least time each open of a file takes (default: no delay)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    open_delay: Duration,

    /// Do not let the kernel send asynchronous reads (FUSE_ASYNC_DIO): then the thread that
    /// submits an io_uring read waits inside io_uring_enter until slowfs answers
    #[arg(long)]
    no_async_reads: bool,
}

fn parse_queue_depth(text: &str) -> Result<usize, String> {
    let depth: usize = text.parse().map_err(|e| format!("{e}"))?;
    if (1..=slowfs::MAX_QUEUE_DEPTH).contains(&depth) {
        Ok(depth)
    } else {
        Err(format!("must be between 1 and {}", slowfs::MAX_QUEUE_DEPTH))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    run(args)
}

#[cfg(not(target_os = "linux"))]
fn run(_args: Args) -> ExitCode {
    eprintln!("slowfs: {}", slowfs::Error::NotLinux(std::env::consts::OS));
    ExitCode::from(2)
}

#[cfg(target_os = "linux")]
fn run(args: Args) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};

    // The signal handlers go in before the mount, so there is no moment when Ctrl-C would kill
    // us with the filesystem still mounted. A current-thread runtime is all the waiting needs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("slowfs: starting the signal handler: {e}");
            return ExitCode::from(2);
        }
    };
    let signals = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    });
    let (mut interrupt, mut terminate) = match signals {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("slowfs: installing the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::from(2);
        }
    };

    let options = slowfs::Options {
        delay: args.delay,
        open_delay: args.open_delay,
        queue_depth: args.queue_depth,
        async_reads: !args.no_async_reads,
    };
    let guard = match slowfs::mount(&args.backing, &args.mountpoint, &options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("slowfs: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "slowfs: serving {} read-only at {}: each read takes at least {}, {} at once{}; Ctrl-C unmounts",
        args.backing.display(),
        args.mountpoint.display(),
        humantime::format_duration(args.delay),
        args.queue_depth,
        if args.open_delay.is_zero() {
            String::new()
        } else {
            format!(
                ", each open at least {}",
                humantime::format_duration(args.open_delay)
            )
        },
    );

    let why = runtime.block_on(async {
        let mut check = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interrupt.recv() => return "SIGINT",
                _ = terminate.recv() => return "SIGTERM",
                _ = check.tick() => if !guard.is_serving() {
                    return "unmounted from outside";
                },
            }
        }
    });
    let stats = guard.stats();
    eprintln!(
        "slowfs: {why}; unmounting after {} reads, {} opens, at most {} requests in service at once",
        stats.reads, stats.opens, stats.max_in_service
    );
    match guard.unmount() {
        Ok(slowfs::Unmounted {
            stopped_early: Some(e),
        }) => {
            eprintln!("slowfs: it had stopped serving before the unmount: {e}");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slowfs: {e}");
            ExitCode::FAILURE
        }
    }
}
