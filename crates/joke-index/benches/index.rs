//! What the index costs to build, and why it keeps byte offsets, in numbers.
//!
//! - **index build**: [`Index::build`] on a ~100 MB dashed file (the workspace's `jokes.txt`
//!   repeated), side by side with the floor for "look at every byte once": the same file read
//!   through the same buffer with only its newlines counted, in this process; and, as whole
//!   commands, `wc -l` next to `joke-index stats` (what a user waits for).
//! - **validate UTF-8**: std's validator against `simdutf8` on the same bytes, in the scanner's
//!   block size (why the scanner uses the second).
//! - **read one random joke**: seeking to the joke's byte offset
//!   ([`Index::read_joke_blocking`]) versus the seed article's way: reopen the file, skip N
//!   lines with `BufRead::lines`, take M lines. On `jokes.txt` itself and on the 100 MB file:
//!   the seek costs the same on both, the skip grows with the file.
//!
//! Run with `cargo bench -p joke-index`. The big file is written into a temporary folder at
//! start and removed at the end. Under `cargo test --all-targets` the benches run once each on
//! a 1 MB file, as a smoke test.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use joke_index::{FormatChoice, Index};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The workspace's own jokes file.
fn jokes_txt() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jokes.txt")
}

/// Writes `jokes.txt` over and over into `path` until it holds at least `target_bytes`.
fn repeat_jokes_file(path: &Path, target_bytes: u64) -> std::io::Result<u64> {
    let jokes = std::fs::read(jokes_txt())?;
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written = 0u64;
    while written < target_bytes {
        out.write_all(&jokes)?;
        written += jokes.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// The scanner's read buffer size (`READ_BUFFER` in `src/scan.rs`), for the baselines.
const BLOCK: usize = 64 * 1024;

/// The floor for any scan: read the file through one buffer and count its newlines with
/// `memchr`, which is what `wc -l` does.
fn count_newlines(path: &Path) -> u64 {
    let mut file = File::open(path).expect("open the jokes file");
    let mut buf = vec![0u8; BLOCK];
    let mut newlines = 0;
    loop {
        let filled = file.read(&mut buf).expect("read the jokes file");
        if filled == 0 {
            return newlines;
        }
        newlines += memchr::memchr_iter(b'\n', &buf[..filled]).count() as u64;
    }
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

/// The files the benches read: `jokes.txt`, and a big copy removed when this is dropped.
struct Corpus {
    _dir: tempfile::TempDir,
    small: PathBuf,
    large: PathBuf,
    large_len: u64,
}

impl Corpus {
    fn generate(large_target: u64) -> Corpus {
        let dir = tempfile::tempdir().expect("a temporary folder for the bench files");
        let large = dir.path().join("large-jokes.txt");
        let large_len = repeat_jokes_file(&large, large_target).expect("write the large file");
        Corpus {
            _dir: dir,
            small: jokes_txt(),
            large,
            large_len,
        }
    }
}

/// Runs `program args...` once and checks that it succeeded.
fn run_command(program: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(output.status.success(), "{} failed", program.display());
    output
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
    group.bench_function(
        BenchmarkId::new("newline count (wc -l in process)", &label),
        |b| b.iter(|| count_newlines(black_box(&corpus.large))),
    );
    // Whole commands, as a user runs them: spawning a process is included in both.
    let file = corpus.large.as_os_str();
    let wc = Path::new("wc");
    if Command::new(wc).arg("--version").output().is_ok() {
        group.bench_function(BenchmarkId::new("wc -l (command)", &label), |b| {
            b.iter(|| run_command(wc, &["-l".as_ref(), file]))
        });
    } else {
        eprintln!("note: `wc` is not available here; its yardstick is left out");
    }
    // Cargo builds the binary for the benches when the `cli` feature is on (the default).
    if let Some(binary) = option_env!("CARGO_BIN_EXE_joke-index") {
        group.bench_function(
            BenchmarkId::new("joke-index stats (command)", &label),
            |b| b.iter(|| run_command(Path::new(binary), &["stats".as_ref(), file])),
        );
    }
    group.finish();
}

fn bench_utf8(criterion: &mut Criterion, corpus: &Corpus) {
    let bytes = std::fs::read(&corpus.large).expect("read the large file");
    // Whole blocks only, each cut at a character boundary, as the scanner hands them over.
    let mut blocks: Vec<&[u8]> = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let mut cut = BLOCK.min(rest.len());
        while cut < rest.len() && rest[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        let (block, tail) = rest.split_at(cut);
        blocks.push(block);
        rest = tail;
    }
    let mut group = criterion.benchmark_group("validate UTF-8");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(10);
    let label = format!(
        "{} MB in {} KiB blocks",
        bytes.len() / 1_000_000,
        BLOCK / 1024
    );
    group.bench_function(BenchmarkId::new("std::str::from_utf8", &label), |b| {
        b.iter(|| {
            blocks
                .iter()
                .all(|block| std::str::from_utf8(block).is_ok())
        })
    });
    group.bench_function(
        BenchmarkId::new("simdutf8::basic::from_utf8", &label),
        |b| {
            b.iter(|| {
                blocks
                    .iter()
                    .all(|block| simdutf8::basic::from_utf8(block).is_ok())
            })
        },
    );
    group.finish();
}

fn bench_read_one_joke(criterion: &mut Criterion, corpus: &Corpus) {
    let mut group = criterion.benchmark_group("read one random joke");
    group.sample_size(10);
    for (size, path) in [("jokes.txt", &corpus.small), ("large", &corpus.large)] {
        let index = Index::build(path, FormatChoice::Auto).expect("index the bench file");
        // The seed article's way needs line numbers, which the index counts on demand: once,
        // here, outside the measurement.
        let lines: Vec<Range<u64>> = index.line_ranges().expect("count the lines");
        // The two ways must agree, or the comparison means nothing.
        for number in [0, index.len() / 2, index.len() - 1] {
            let span = &lines[number];
            let skipped = read_joke_by_skipping_lines(path, span.start, span.end - span.start);
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
                let span = &lines[number];
                read_joke_by_skipping_lines(black_box(path), span.start, span.end - span.start)
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
    bench_utf8(&mut criterion, &corpus);
    bench_read_one_joke(&mut criterion, &corpus);
    criterion.final_summary();
}
