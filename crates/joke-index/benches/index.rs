//! Why the index keeps byte offsets, in numbers.
//!
//! - **index build**: [`Index::build`] on a generated ~100 MB dashed file, in MB/s, next to
//!   `wc -l` on the same file (the floor for "look at every byte once").
//! - **read one random joke**: seeking to the joke's byte offset
//!   ([`Index::read_joke_blocking`]) versus the seed article's way: reopen the file, skip N
//!   lines with `BufRead::lines`, take M lines. On a jokes-sized file (~200 jokes) and on the
//!   100 MB one: the seek costs the same on both, the skip grows with the file.
//!
//! Run with `cargo bench -p joke-index`. The files are generated into a temporary folder at
//! start (from a fixed seed, so every run measures the same bytes) and removed at the end.
//! Under `cargo test --all-targets` the benches run once each on small files, as a smoke test.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use joke_index::{FormatChoice, Index};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Words for the generated jokes (made up here; the bench only needs text of a realistic shape).
const WORDS: &[&str] = &[
    "async",
    "await",
    "future",
    "poll",
    "waker",
    "borrow",
    "checker",
    "lifetime",
    "trait",
    "tokio",
    "runtime",
    "socket",
    "packet",
    "latency",
    "thread",
    "mutex",
    "deadlock",
    "server",
    "client",
    "joke",
    "punchline",
    "why",
    "did",
    "the",
    "a",
    "programmer",
    "cross",
    "road",
    "because",
    "it",
    "was",
    "never",
    "ready",
    "pending",
    "again",
    "compile",
    "error",
    "coffee",
    "bug",
    "feature",
    "stack",
    "heap",
    "pointer",
    "null",
    "segfault",
    "closure",
    "iterator",
];

/// Writes a dashed jokes file of about `target_bytes`, deterministically from `seed`: jokes of
/// 1 to 6 lines, some indented, some with an inner blank line, separated by `---` lines.
fn generate_jokes_file(path: &Path, target_bytes: u64, seed: u64) -> std::io::Result<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written = 0u64;
    let mut line = String::new();
    while written < target_bytes {
        let lines = rng.random_range(1..=6);
        for number in 0..lines {
            line.clear();
            if number > 0 && rng.random_ratio(1, 8) {
                line.push('\n'); // an inner blank line
            }
            if rng.random_ratio(1, 10) {
                line.push_str("    ");
            }
            let words = rng.random_range(3..=14);
            for word in 0..words {
                if word > 0 {
                    line.push(' ');
                }
                line.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            }
            line.push_str(if number + 1 == lines { ".\n" } else { "\n" });
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        out.write_all(b"---\n")?;
        written += 4;
    }
    out.flush()?;
    Ok(written)
}

/// The seed article's way to read joke N: reopen the file, skip to its first line with
/// `BufRead::lines`, take its lines. Each line costs a `String`, and every line before the
/// joke must be read, so the cost grows with the joke's position in the file.
fn read_joke_by_skipping_lines(path: &Path, first_line: u64, line_count: u64) -> String {
    let reader = BufReader::new(File::open(path).expect("open the jokes file"));
    let mut joke = String::new();
    for line in reader
        .lines()
        .skip(first_line as usize)
        .take(line_count as usize)
    {
        joke.push_str(&line.expect("read a line"));
        joke.push('\n');
    }
    joke
}

/// The generated files, removed when this is dropped.
struct Corpus {
    _dir: tempfile::TempDir,
    small: PathBuf,
    large: PathBuf,
    large_len: u64,
}

impl Corpus {
    fn generate(large_target: u64) -> Corpus {
        let dir = tempfile::tempdir().expect("a temporary folder for the bench files");
        let small = dir.path().join("small-jokes.txt");
        let large = dir.path().join("large-jokes.txt");
        // About 200 jokes, like the workspace's own jokes.txt.
        generate_jokes_file(&small, 200 * 215, 1).expect("generate the small file");
        let large_len =
            generate_jokes_file(&large, large_target, 2).expect("generate the large file");
        Corpus {
            _dir: dir,
            small,
            large,
            large_len,
        }
    }
}

fn bench_index_build(criterion: &mut Criterion, corpus: &Corpus) {
    let mut group = criterion.benchmark_group("index build");
    group.throughput(Throughput::Bytes(corpus.large_len));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let label = format!("{} MB dashed", corpus.large_len / 1_000_000);
    group.bench_function(BenchmarkId::new("Index::build", &label), |b| {
        b.iter(|| Index::build(black_box(&corpus.large), FormatChoice::Auto).expect("index"))
    });
    // The same bytes through `wc -l`: a C program that does nothing but count newlines, as a
    // yardstick. Spawning the process is included, as it is a few hundred microseconds at most.
    let wc_works = Command::new("wc")
        .arg("-l")
        .arg(&corpus.large)
        .output()
        .is_ok_and(|output| output.status.success());
    if wc_works {
        group.bench_function(BenchmarkId::new("wc -l", &label), |b| {
            b.iter(|| {
                let output = Command::new("wc")
                    .arg("-l")
                    .arg(black_box(&corpus.large))
                    .output()
                    .expect("run wc -l");
                assert!(output.status.success());
                output
            })
        });
    } else {
        eprintln!("note: `wc -l` is not available here; its yardstick is left out");
    }
    group.finish();
}

fn bench_read_one_joke(criterion: &mut Criterion, corpus: &Corpus) {
    let mut group = criterion.benchmark_group("read one random joke");
    group.sample_size(10);
    for (size, path) in [("small", &corpus.small), ("large", &corpus.large)] {
        let index = Index::build(path, FormatChoice::Auto).expect("index the bench file");
        // The two ways must agree, or the comparison means nothing.
        for number in [0, index.len() / 2, index.len() - 1] {
            let span = index.span(number).expect("a joke");
            let skipped = read_joke_by_skipping_lines(
                path,
                span.lines.start,
                span.lines.end - span.lines.start,
            );
            assert_eq!(
                skipped,
                index.read_joke_blocking(number).expect("read a joke")
            );
        }
        let label = format!("{size} ({} jokes)", index.len());

        let mut rng = StdRng::seed_from_u64(3);
        group.measurement_time(Duration::from_secs(5));
        group.bench_function(BenchmarkId::new("seek to offset", &label), |b| {
            b.iter(|| {
                let number = rng.random_range(0..index.len());
                index
                    .read_joke_blocking(black_box(number))
                    .expect("read a joke")
            })
        });

        let mut rng = StdRng::seed_from_u64(3);
        // On the large file one skip reads 50 MB on average: give it the time for 10 samples.
        group.measurement_time(Duration::from_secs(if size == "large" { 20 } else { 5 }));
        group.bench_function(BenchmarkId::new("skip lines (seed article)", &label), |b| {
            b.iter(|| {
                let number = rng.random_range(0..index.len());
                let span = index.span(number).expect("a joke");
                read_joke_by_skipping_lines(
                    black_box(path),
                    span.lines.start,
                    span.lines.end - span.lines.start,
                )
            })
        });
    }
    group.finish();
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) criterion runs
    // each bench once, and a 1 MB file is enough for that.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let corpus = Corpus::generate(if benchmarking { 100_000_000 } else { 1_000_000 });
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .configure_from_args();
    bench_index_build(&mut criterion, &corpus);
    bench_read_one_joke(&mut criterion, &corpus);
    criterion.final_summary();
}
