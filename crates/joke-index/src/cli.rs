//! The `joke-index` command line: the arguments, one function per subcommand, and the mapping
//! from errors to exit codes.
//!
//! This module belongs to the binary (only `main.rs` declares it), not to the library. Every
//! subcommand writes to the `out` and `err` it is given rather than to the process's own
//! streams, so the unit tests below can run it and look at what it printed.
//!
//! Exit codes ([`joke_index::exit_code`]): 0 when all went well; 1 when `check` found
//! something, or when something other than the input went wrong (writing the output, say); 2
//! for bad usage or unreadable or invalid input, always with a message that names the file.

mod check;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use joke_index::exit_code::{BAD_INPUT, FAILURE, SUCCESS};
use joke_index::strfile::{Strfile, StrfileError};
use joke_index::{
    Format, FormatChoice, Index, IndexError, RFC865_LIMIT, ReadError, ServedJokes, ServedSizes,
};

/// Inspect, lint and index jokes files (dashed `---` or fortune `%` format).
#[derive(Debug, Parser)]
#[command(name = "joke-index", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the format, the number of jokes and their sizes in served form. Given a
    /// directory (fortune's layout), one line per jokes file, the total, and what was skipped.
    Stats {
        #[command(flatten)]
        input: Input,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// With a directory: include its off/ folder of offensive (ROT13) fortunes.
        #[arg(long)]
        offensive: bool,
    },
    /// Print joke N (counting from 0) exactly as a server sends it.
    Get {
        #[command(flatten)]
        input: Input,
        /// The joke's number, counting from 0.
        number: usize,
    },
    /// Print every joke in served form, in file order, as one JSON string per line.
    Dump {
        #[command(flatten)]
        input: Input,
    },
    /// Lint the file: look-alike separators, jokes over 512 bytes, empty records.
    /// Prints FILE:LINE: message for each finding; exit status 1 when there is any.
    Check {
        #[command(flatten)]
        input: Input,
    },
    /// Write the strfile(8) index fortune(6) reads, byte-identical to `strfile FILE [OUT]`.
    Dat {
        /// The fortune file (records separated by `%` lines).
        file: PathBuf,
        /// Where to write the index [default: FILE.dat].
        out: Option<PathBuf>,
    },
}

/// The jokes file a subcommand reads, and how to read it.
#[derive(Debug, Args)]
pub struct Input {
    /// The jokes file (for `stats`, a directory of them too).
    pub file: PathBuf,
    /// Read the file in this format instead of detecting it.
    #[arg(long, value_enum, default_value_t = FormatChoice::Auto)]
    pub format: FormatChoice,
}

/// How a subcommand that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `check` found something to report.
    Findings,
}

/// A mistake in how the command was used that clap cannot see (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadUsage(String);

/// Runs the command, prints any error as `joke-index: message` on `err`, and returns the exit
/// code.
pub fn run_and_report(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match run(cli, out, err) {
        Ok(Outcome::Done) => SUCCESS,
        Ok(Outcome::Findings) => FAILURE,
        // `joke-index dump big.txt | head` closes our stdout early: that is the reader saying
        // it has seen enough, not a failure worth a message.
        Err(error) if is_broken_pipe(&error) => SUCCESS,
        Err(error) => {
            // If even stderr is gone there is nobody left to tell; the exit code still says it.
            let _ = writeln!(err, "joke-index: {error:#}");
            exit_code_for(&error)
        }
    }
}

/// Runs one subcommand.
pub fn run(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome> {
    match &cli.command {
        Command::Stats {
            input,
            json,
            offensive,
        } => stats(input, *json, *offensive, out),
        Command::Get { input, number } => get(input, *number, out),
        Command::Dump { input } => dump(input, out),
        Command::Check { input } => check(input, out, err),
        Command::Dat { file, out: dat } => dat_command(file, dat.as_deref(), out, err),
    }
    .and_then(|outcome| {
        out.flush().context("writing to standard output")?;
        Ok(outcome)
    })
}

/// Exit code 2 when the error is about the input or the usage, 1 otherwise.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let blames_input = error.chain().any(|cause| {
        cause.is::<IndexError>()
            || cause.is::<ReadError>()
            || cause.is::<BadUsage>()
            || cause.downcast_ref::<StrfileError>().is_some_and(|e| {
                matches!(
                    e,
                    StrfileError::Read { .. }
                        | StrfileError::TooLarge { .. }
                        | StrfileError::InvalidDat { .. }
                )
            })
    });
    if blames_input { BAD_INPUT } else { FAILURE }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// What `joke-index stats` reports. Sizes are bytes of the served form, the bytes a client
/// receives.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub file: String,
    pub format: Format,
    pub jokes: usize,
    pub shortest_bytes: usize,
    pub longest_bytes: usize,
    pub mean_bytes: f64,
    pub rfc865_limit: usize,
    /// Jokes longer than [`RFC865_LIMIT`] bytes.
    pub over_rfc865_limit: usize,
}

impl Stats {
    /// Sums up the served jokes of one file, from the sizes its index measured.
    pub fn of(file: &Path, format: Format, sizes: ServedSizes) -> Stats {
        Stats {
            file: file.display().to_string(),
            format,
            jokes: sizes.jokes as usize,
            shortest_bytes: sizes.shortest as usize,
            longest_bytes: sizes.longest as usize,
            mean_bytes: if sizes.jokes == 0 {
                0.0
            } else {
                sizes.total as f64 / sizes.jokes as f64
            },
            rfc865_limit: RFC865_LIMIT,
            over_rfc865_limit: sizes.over_rfc865_limit as usize,
        }
    }

    /// The stats as aligned `name: value` lines.
    pub fn to_text(&self) -> String {
        format!(
            "file:      {}\n\
             format:    {}\n\
             jokes:     {}\n\
             shortest:  {} bytes\n\
             longest:   {} bytes\n\
             mean:      {:.1} bytes\n\
             over {}:  {}\n",
            self.file,
            self.format,
            self.jokes,
            self.shortest_bytes,
            self.longest_bytes,
            self.mean_bytes,
            self.rfc865_limit,
            self.over_rfc865_limit,
        )
    }
}

/// Indexes the input file and reads every joke in served form.
fn read_all(input: &Input) -> Result<(Index, ServedJokes)> {
    let index = Index::build(&input.file, input.format)?;
    let jokes = index.read_served_blocking()?;
    Ok((index, jokes))
}

fn stats(input: &Input, json: bool, offensive: bool, out: &mut dyn Write) -> Result<Outcome> {
    if input.file.is_dir() {
        return dir_stats(input, json, offensive, out);
    }
    // The index measured every joke's served size as it went: no second read of the file.
    let index = Index::build(&input.file, input.format)?;
    let stats = Stats::of(index.path(), index.format(), index.served_sizes());
    let text = if json {
        serde_json::to_string_pretty(&stats).context("formatting the stats as JSON")? + "\n"
    } else {
        stats.to_text()
    };
    out.write_all(text.as_bytes())
        .context("writing to standard output")?;
    Ok(Outcome::Done)
}

/// What `joke-index stats DIR` reports: each jokes file as `stats FILE` would, their total,
/// and the entries left out with the reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DirStats {
    pub dir: String,
    pub files: Vec<Stats>,
    pub total: DirTotal,
    pub skipped: Vec<SkippedEntry>,
}

/// The jokes of every file of a directory, together.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DirTotal {
    pub files: usize,
    pub jokes: usize,
    pub shortest_bytes: usize,
    pub longest_bytes: usize,
    pub mean_bytes: f64,
    pub over_rfc865_limit: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SkippedEntry {
    pub path: String,
    pub reason: String,
}

/// The directory's jokes files, by the rules a server serving it applies
/// ([`joke_index::dir`]): what would be served, and what would not.
fn dir_stats(input: &Input, json: bool, offensive: bool, out: &mut dyn Write) -> Result<Outcome> {
    use joke_index::dir::{index_listed, list_dir};
    let listing = list_dir(&input.file, offensive).map_err(|source| IndexError::Io {
        path: input.file.clone(),
        source,
    })?;
    let mut files = Vec::new();
    let mut skipped: Vec<SkippedEntry> = listing
        .skipped
        .iter()
        .map(|entry| SkippedEntry {
            path: entry.path.display().to_string(),
            reason: entry.reason.clone(),
        })
        .collect();
    let mut all = Vec::new();
    for listed in &listing.files {
        match index_listed(listed, input.format) {
            Ok(index) => {
                let sizes = index.served_sizes();
                all.push(sizes);
                files.push(Stats::of(index.path(), index.format(), sizes));
            }
            Err(reason) => skipped.push(SkippedEntry {
                path: listed.path.display().to_string(),
                reason,
            }),
        }
    }
    let jokes: u64 = all.iter().map(|s| s.jokes).sum();
    let total_bytes: u64 = all.iter().map(|s| s.total).sum();
    let total = DirTotal {
        files: files.len(),
        jokes: jokes as usize,
        shortest_bytes: all.iter().map(|s| s.shortest).min().unwrap_or(0) as usize,
        longest_bytes: all.iter().map(|s| s.longest).max().unwrap_or(0) as usize,
        mean_bytes: if jokes == 0 {
            0.0
        } else {
            total_bytes as f64 / jokes as f64
        },
        over_rfc865_limit: all.iter().map(|s| s.over_rfc865_limit).sum::<u64>() as usize,
    };
    let stats = DirStats {
        dir: input.file.display().to_string(),
        files,
        total,
        skipped,
    };
    let text = if json {
        serde_json::to_string_pretty(&stats).context("formatting the stats as JSON")? + "\n"
    } else {
        dir_stats_text(&stats)
    };
    out.write_all(text.as_bytes())
        .context("writing to standard output")?;
    if stats.files.is_empty() {
        return Err(BadUsage(format!(
            "{}: no jokes file in this directory",
            input.file.display()
        ))
        .into());
    }
    Ok(Outcome::Done)
}

/// One line per file (jokes, shortest, longest, mean, over 512), the total, then the skipped.
fn dir_stats_text(stats: &DirStats) -> String {
    let mut text = format!(
        "{:>7} {:>8} {:>8} {:>7} {:>8}  file\n",
        "jokes", "shortest", "longest", "mean", "over 512"
    );
    for file in &stats.files {
        text += &format!(
            "{:>7} {:>8} {:>8} {:>7.1} {:>8}  {} ({})\n",
            file.jokes,
            file.shortest_bytes,
            file.longest_bytes,
            file.mean_bytes,
            file.over_rfc865_limit,
            file.file,
            file.format
        );
    }
    let total = &stats.total;
    text += &format!(
        "{:>7} {:>8} {:>8} {:>7.1} {:>8}  total: {} in {}\n",
        total.jokes,
        total.shortest_bytes,
        total.longest_bytes,
        total.mean_bytes,
        total.over_rfc865_limit,
        if total.files == 1 {
            "1 file".to_string()
        } else {
            format!("{} files", total.files)
        },
        stats.dir
    );
    for entry in &stats.skipped {
        text += &format!("skipped: {}: {}\n", entry.path, entry.reason);
    }
    text
}

fn get(input: &Input, number: usize, out: &mut dyn Write) -> Result<Outcome> {
    let index = Index::build(&input.file, input.format)?;
    let joke = index.read_joke_blocking(number)?;
    out.write_all(joke.as_bytes())
        .context("writing to standard output")?;
    Ok(Outcome::Done)
}

fn dump(input: &Input, out: &mut dyn Write) -> Result<Outcome> {
    let (_, jokes) = read_all(input)?;
    let mut out = io::BufWriter::new(out);
    for joke in jokes.iter() {
        // A JSON string escapes newlines, so each joke stays on one line of output.
        let line = serde_json::to_string(joke).context("formatting a joke as JSON")?;
        writeln!(out, "{line}").context("writing to standard output")?;
    }
    out.flush().context("writing to standard output")?;
    Ok(Outcome::Done)
}

fn check(input: &Input, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome> {
    let (index, jokes) = read_all(input)?;
    let findings = check::findings(&index, &jokes)?;
    let file = index.path().display();
    for finding in &findings {
        writeln!(out, "{file}:{}: {}", finding.line, finding.message)
            .context("writing to standard output")?;
    }
    // The summary goes to stderr so that stdout holds only findings, one per line.
    let _ = match findings.len() {
        0 => writeln!(err, "{file}: clean ({} jokes)", jokes.len()),
        1 => writeln!(err, "{file}: 1 finding"),
        n => writeln!(err, "{file}: {n} findings"),
    };
    Ok(if findings.is_empty() {
        Outcome::Done
    } else {
        Outcome::Findings
    })
}

/// strfile's default output name: the input's name with `.dat` appended (`fortunes` ->
/// `fortunes.dat`, `jokes.txt` -> `jokes.txt.dat`).
pub fn default_dat_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".dat");
    PathBuf::from(name)
}

fn dat_command(
    file: &Path,
    dat: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome> {
    let dat = dat.map_or_else(|| default_dat_path(file), Path::to_path_buf);
    if is_same_file(file, &dat) {
        return Err(BadUsage(format!(
            "{}: refusing to write the index over the fortune file itself",
            dat.display()
        ))
        .into());
    }
    let strfile = Strfile::from_text_file(file)?;
    // strfile works on any bytes (old fortune files are not always UTF-8), so only a file we
    // can read as jokes gets this friendly warning: a dashed file is one big fortune record.
    if let Ok(index) = Index::build(file, FormatChoice::Auto) {
        if index.format() == Format::Dashed {
            let _ = writeln!(
                err,
                "joke-index: warning: {} looks like the dashed format; strfile and fortune split \
                 records only at `%` lines, so this index has {} record(s), not {} jokes",
                file.display(),
                strfile.len(),
                index.len()
            );
        }
    }
    strfile.write_dat(&dat)?;
    let header = strfile.header();
    let summary = if strfile.is_empty() {
        format!("wrote {}: no records\n", dat.display())
    } else {
        format!(
            "wrote {}: {} record{}, longest {} bytes, shortest {} bytes\n",
            dat.display(),
            header.numstr,
            if header.numstr == 1 { "" } else { "s" },
            header.longlen,
            header.shortlen
        )
    };
    out.write_all(summary.as_bytes())
        .context("writing to standard output")?;
    Ok(Outcome::Done)
}

/// True when both paths name one existing file (so writing `b` would destroy `a`).
fn is_same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the command line `args` (without the program name) and returns the exit code,
    /// stdout and stderr.
    fn run_args(args: &[&str]) -> (u8, String, String) {
        let cli = Cli::try_parse_from(std::iter::once("joke-index").chain(args.iter().copied()))
            .expect("the test's arguments parse");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_and_report(&cli, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).expect("stdout is UTF-8"),
            String::from_utf8(err).expect("stderr is UTF-8"),
        )
    }

    fn temp_file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text).expect("write temp file");
        file
    }

    #[test]
    fn stats_counts_and_measures_served_jokes() {
        let long = "x".repeat(600);
        let jokes = [
            String::from("ab\n"),
            String::from("abcd\n"),
            format!("{long}\n"),
        ];
        let sizes = ServedSizes::of(jokes.iter().map(|joke| joke.len() as u64));
        let stats = Stats::of(Path::new("f"), Format::Dashed, sizes);
        assert_eq!(stats.jokes, 3);
        assert_eq!(stats.shortest_bytes, 3);
        assert_eq!(stats.longest_bytes, 601);
        assert!((stats.mean_bytes - 203.0).abs() < 1e-9);
        assert_eq!(stats.over_rfc865_limit, 1);
        assert!(stats.to_text().contains("over 512:  1\n"));
    }

    #[test]
    fn get_prints_exact_served_bytes() {
        let file = temp_file(b"one\r\n---\n\n  two\n\n  lines\n\n---\n");
        let path = file.path().to_str().unwrap();
        assert_eq!(
            run_args(&["get", path, "1"]),
            (0, "  two\n\n  lines\n".into(), "".into())
        );
    }

    #[test]
    fn get_out_of_range_names_the_number_and_the_count() {
        let file = temp_file(b"one\n---\ntwo\n");
        let path = file.path().to_str().unwrap();
        let (code, out, err) = run_args(&["get", path, "2"]);
        assert_eq!(code, BAD_INPUT);
        assert_eq!(out, "");
        assert!(err.contains(path), "{err}");
        assert!(err.contains("no joke 2 (the file has 2)"), "{err}");
    }

    #[test]
    fn dump_writes_one_json_string_per_joke() {
        let file = temp_file(b"a \"quoted\"\nline\n%\n\tb\n");
        let path = file.path().to_str().unwrap();
        let (code, out, _) = run_args(&["dump", path]);
        assert_eq!(code, 0);
        assert_eq!(out, "\"a \\\"quoted\\\"\\nline\\n\"\n\"\\tb\\n\"\n");
    }

    #[test]
    fn missing_file_is_exit_2_naming_it() {
        let (code, _, err) = run_args(&["stats", "/nonexistent/jokes.txt"]);
        assert_eq!(code, BAD_INPUT);
        assert!(
            err.contains("/nonexistent/jokes.txt: no such file"),
            "{err}"
        );
    }

    #[test]
    fn check_exits_1_on_findings_and_0_when_clean() {
        let messy = temp_file(b"a\n---\n---\nb\n--->>> x <<<---\n");
        let path = messy.path().to_str().unwrap();
        let (code, out, _) = run_args(&["check", path]);
        assert_eq!(code, FAILURE);
        assert!(out.contains(&format!("{path}:3: empty record")), "{out}");
        assert!(out.contains(&format!("{path}:5: ")), "{out}");

        let clean = temp_file(b"a\n---\nb\n");
        let (code, out, err) = run_args(&["check", clean.path().to_str().unwrap()]);
        assert_eq!((code, out.as_str()), (0, ""));
        assert!(err.contains("clean (2 jokes)"), "{err}");
    }

    #[test]
    fn dat_refuses_to_overwrite_its_input() {
        let file = temp_file(b"a\n%\nb\n");
        let path = file.path().to_str().unwrap();
        let (code, _, err) = run_args(&["dat", path, path]);
        assert_eq!(code, BAD_INPUT);
        assert!(err.contains("refusing"), "{err}");
        assert_eq!(std::fs::read(file.path()).unwrap(), b"a\n%\nb\n");
    }

    #[test]
    fn default_dat_path_appends_like_strfile() {
        assert_eq!(
            default_dat_path(Path::new("dir/jokes.txt")),
            Path::new("dir/jokes.txt.dat")
        );
    }

    #[test]
    fn output_failures_are_exit_1_and_broken_pipes_are_quiet() {
        let not_input = anyhow::Error::new(io::Error::other("disk full")).context("writing");
        assert_eq!(exit_code_for(&not_input), FAILURE);
        let write = anyhow::Error::new(StrfileError::Write {
            path: "x.dat".into(),
            source: io::Error::other("read-only"),
        });
        assert_eq!(exit_code_for(&write), FAILURE);

        struct ClosedPipe;
        impl Write for ClosedPipe {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let file = temp_file(b"a\n---\nb\n");
        let cli =
            Cli::try_parse_from(["joke-index", "dump", file.path().to_str().unwrap()]).unwrap();
        let mut err = Vec::new();
        assert_eq!(run_and_report(&cli, &mut ClosedPipe, &mut err), SUCCESS);
        assert!(err.is_empty());
    }
}
