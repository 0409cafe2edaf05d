//! Measures slowfs itself: what one read through the mount costs, and how many reads per second
//! it serves at different queue depths. The figures in the README come from this:
//!
//! ```text
//! cargo run --release -p slowfs --example measure -- --delay 2ms --readers 64 --depths 1,32
//! ```
//!
//! 1. Per-read delay: one thread, 4 KiB `pread`s at random 4 KiB-aligned offsets of a 16 MiB
//!    file, timed one by one (median and 99th percentile), beside the same reads of the backing
//!    file (page cache) for scale.
//! 2. Throughput: `--readers` threads doing the same reads as fast as they can for `--seconds`,
//!    once per queue depth in `--depths`; reads per second over the whole run.
//!
//! Needs Linux and FUSE (root, or Debian's fuse3); mounts in a temporary folder and unmounts.

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("measure: slowfs needs Linux");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
fn main() {
    linux::main()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::Path;
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use clap::Parser;
    use rand::Rng;

    const FILE_SIZE: u64 = 16 * 1024 * 1024;
    const READ_SIZE: usize = 4096;

    /// Per-read delay and parallel throughput of slowfs.
    #[derive(Debug, Parser)]
    struct Args {
        /// slowfs's --delay
        #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
        delay: Duration,
        /// How many single reads to time, one after another
        #[arg(long, default_value_t = 1000)]
        samples: usize,
        /// Concurrent reader threads for the throughput runs
        #[arg(long, default_value_t = 64)]
        readers: usize,
        /// Queue depths to measure throughput at
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        depths: Vec<usize>,
        /// Length of each throughput run
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        seconds: Duration,
    }

    pub(super) fn main() {
        let args = Args::parse();
        let backing = tempfile::tempdir().expect("a temporary backing folder");
        let data: Vec<u8> = (0..FILE_SIZE).map(|i| (i % 251) as u8).collect();
        std::fs::write(backing.path().join("data.bin"), &data).expect("writing data.bin");

        let direct = single_reads(&backing.path().join("data.bin"), args.samples);
        report("backing file (page cache)", &direct);

        let mountpoint = tempfile::tempdir().expect("a temporary mount point");
        let options = slowfs::Options::with_delay(args.delay);
        let guard = slowfs::mount(backing.path(), mountpoint.path(), &options)
            .unwrap_or_else(|e| fail(&e.to_string()));
        let slow = single_reads(&guard.mountpoint().join("data.bin"), args.samples);
        report(
            &format!("slowfs --delay {}", humantime::format_duration(args.delay)),
            &slow,
        );
        drop(guard);

        for &depth in &args.depths {
            let options = slowfs::Options {
                queue_depth: depth,
                ..slowfs::Options::with_delay(args.delay)
            };
            let guard = slowfs::mount(backing.path(), mountpoint.path(), &options)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let (reads, took) = parallel_reads(
                &guard.mountpoint().join("data.bin"),
                args.readers,
                args.seconds,
            );
            let stats = guard.stats();
            println!(
                "queue depth {depth:>4}, {} readers: {reads} reads in {:.2?} = {:.0} reads/s \
                 (ideal {:.0}; at most {} in service at once)",
                args.readers,
                took,
                reads as f64 / took.as_secs_f64(),
                depth.min(args.readers) as f64 / args.delay.as_secs_f64(),
                stats.max_in_service,
            );
        }
    }

    fn fail(message: &str) -> ! {
        eprintln!("measure: {message}");
        std::process::exit(2);
    }

    fn random_offset(rng: &mut impl Rng) -> u64 {
        rng.random_range(0..FILE_SIZE / READ_SIZE as u64) * READ_SIZE as u64
    }

    fn single_reads(path: &Path, samples: usize) -> Vec<Duration> {
        let file = File::open(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        let mut rng = rand::rng();
        let mut buf = vec![0u8; READ_SIZE];
        let mut timings: Vec<Duration> = (0..samples)
            .map(|_| {
                let offset = random_offset(&mut rng);
                let start = Instant::now();
                let n = file.read_at(&mut buf, offset).expect("pread");
                let took = start.elapsed();
                assert_eq!(n, READ_SIZE);
                assert_eq!(buf[0], (offset % 251) as u8, "wrong bytes at {offset}");
                took
            })
            .collect();
        timings.sort();
        timings
    }

    fn report(what: &str, sorted: &[Duration]) {
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        println!(
            "{what}: {} single 4 KiB preads at random offsets: min {:.2?}, median {:.2?}, \
             p99 {:.2?}, max {:.2?}",
            sorted.len(),
            sorted[0],
            at(0.5),
            at(0.99),
            sorted[sorted.len() - 1],
        );
    }

    fn parallel_reads(path: &Path, readers: usize, run: Duration) -> (u64, Duration) {
        let barrier = Arc::new(Barrier::new(readers + 1));
        let threads: Vec<_> = (0..readers)
            .map(|_| {
                let file = File::open(path).expect("opening data.bin through slowfs");
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut rng = rand::rng();
                    let mut buf = vec![0u8; READ_SIZE];
                    barrier.wait();
                    let deadline = Instant::now() + run;
                    let mut reads = 0u64;
                    while Instant::now() < deadline {
                        file.read_at(&mut buf, random_offset(&mut rng))
                            .expect("pread");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let reads = threads.into_iter().map(|t| t.join().unwrap()).sum();
        (reads, start.elapsed())
    }
}
