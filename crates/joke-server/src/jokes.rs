//! The jokes as the server sees them: one file or a directory of them, each file's index
//! swapped for a fresh one whenever the file changes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use joke_index::dir::{self, ListedFile};
use joke_index::pick::{Candidates, LengthLimits, Picker, Weighting};
use joke_index::{
    Fingerprint, FormatChoice, Index, IndexError, JokeLineReader, ReadError, ServedSizes,
};
use tokio::task::JoinError;

use crate::{Act, JokeLines, simulate_slow_disk_for, timeline};

/// One joke, chosen for one connection: which joke, in which version of the index, and how
/// slow the simulated disk is.
///
/// It carries its own `Arc` of the index, so a reload that swaps the index while the joke is
/// being served changes nothing for this connection: it reads from the offsets it was given,
/// and the read checks that the file still is the one those offsets describe.
#[derive(Debug, Clone)]
pub struct JokeToServe {
    index: Arc<Index>,
    number: usize,
    io_delay: Duration,
    /// The connection it is served to, as the `--timeline` numbers them (`None` when no
    /// timeline is recorded): a read on the blocking pool is drawn with its connection.
    connection: Option<u64>,
}

impl JokeToServe {
    /// Joke `number` of `index`, read with `io_delay` of simulated slow disk.
    pub fn new(index: Arc<Index>, number: usize, io_delay: Duration) -> Self {
        JokeToServe {
            index,
            number,
            io_delay,
            // Made inside the connection's task: the task being polled is its connection.
            connection: timeline::current_connection(),
        }
    }

    /// The joke's number in the index (0-based).
    pub fn number(&self) -> usize {
        self.number
    }

    /// The index the joke was chosen from.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The simulated disk latency (`--io-delay`).
    pub fn io_delay(&self) -> Duration {
        self.io_delay
    }

    /// Reads the joke with blocking `std::fs` calls, after the simulated disk delay.
    ///
    /// This blocks the calling thread for as long as the disk takes: fine on the blocking pool,
    /// a problem on a runtime worker (that is act 1's lesson).
    // ANCHOR: read_blocking
    pub fn read_blocking(&self) -> Result<String, ReadError> {
        simulate_slow_disk_for(self.io_delay, self.connection);
        // One interval of the `--timeline`, when one is recorded.
        timeline::blocking_read(self.connection, || {
            self.index.read_joke_blocking(self.number)
        })
    }
    // ANCHOR_END: read_blocking

    /// Opens the joke for reading line by line with blocking calls, after the simulated disk
    /// delay: an iterator whose every `next` may block, for the blocking pool only. See
    /// [`JokeLineReader`] for its checks, and for why a failure may come after lines.
    // ANCHOR: lines_blocking
    pub fn lines_blocking(&self) -> BlockingLines {
        simulate_slow_disk_for(self.io_delay, self.connection);
        let lines = timeline::blocking_read(self.connection, || {
            Index::lines_blocking(&self.index, self.number)
        });
        BlockingLines {
            lines,
            connection: self.connection,
        }
    }
    // ANCHOR_END: lines_blocking

    /// Reads the joke on the blocking pool (after the `--io-delay` sleep, also there), then
    /// hands out its lines one by one.
    ///
    /// The whole joke is read and checked *before* the first line is handed out, on purpose:
    /// the index lets us read a joke in one seek and one read, and only a finished read can say
    /// whether the file changed under us. A stream that yielded lines as they came off the disk
    /// could yield three lines and then an error, and the client would get a torn joke.
    // ANCHOR: read_lines_off_runtime
    pub async fn read_lines_off_runtime(self) -> Result<JokeLines, ReadError> {
        let reader = self.clone();
        let text = tokio::task::spawn_blocking(move || reader.read_blocking())
            .await
            .map_err(|error| self.read_task_failed(error))??;
        Ok(JokeLines::new(text))
    }
    // ANCHOR_END: read_lines_off_runtime

    /// The read error to report when the blocking task that was reading this joke did not
    /// finish: it panicked, or the runtime is shutting down. Nothing was read, so nothing may
    /// be written.
    pub fn read_task_failed(&self, error: JoinError) -> ReadError {
        ReadError::io(self.index().path())(io::Error::other(format!(
            "the blocking read did not finish: {error}"
        )))
    }
}

/// The lines of one joke, read with blocking calls: a [`JokeLineReader`] whose every read
/// (the open in [`JokeToServe::lines_blocking`], then each line) is one interval of the
/// `--timeline`, when one is recorded.
#[derive(Debug)]
pub struct BlockingLines {
    lines: JokeLineReader,
    connection: Option<u64>,
}

impl Iterator for BlockingLines {
    type Item = <JokeLineReader as Iterator>::Item;

    fn next(&mut self) -> Option<Self::Item> {
        timeline::blocking_read(self.connection, || self.lines.next())
    }
}

/// How the server chooses among its jokes: fortune's rules (see [`joke_index::pick`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JokeChoice {
    /// A file's chance: by its number of jokes (fortune's default) or equal (`fortune -e`).
    pub weighting: Weighting,
    /// Which jokes may be served, by served length (`--max-length`, `--min-length`).
    pub lengths: LengthLimits,
    /// Whether a directory's `off/` folder of offensive fortunes is served too.
    pub offensive: bool,
}

/// What connections pick from: every jokes file in service, and the picker that chooses among
/// them. A server given one file has a shelf of one.
///
/// A shelf never changes; a reload publishes a new one. A file that did not change is the very
/// same `Arc<Index>` on the new shelf, so whatever an act keeps for it (the cached finale's
/// copy of its jokes) stays valid.
#[derive(Debug)]
pub struct Shelf {
    files: Vec<Loaded>,
    picker: Picker,
}

/// One file in service: its index, and which of its jokes the length limits admit.
#[derive(Debug, Clone)]
struct Loaded {
    index: Arc<Index>,
    candidates: Candidates,
}

impl Shelf {
    fn new(files: Vec<Loaded>, weighting: Weighting) -> Option<Shelf> {
        let candidates = files.iter().map(|file| file.candidates.clone()).collect();
        let picker = Picker::new(candidates, weighting)?;
        Some(Shelf { files, picker })
    }

    /// The indexes of the files in service, sorted by path.
    pub fn files(&self) -> impl ExactSizeIterator<Item = &Arc<Index>> {
        self.files.iter().map(|file| &file.index)
    }

    /// How many jokes the files in service hold, together.
    pub fn jokes(&self) -> usize {
        self.files.iter().map(|file| file.index.len()).sum()
    }

    /// The served sizes of the jokes of every file in service, together.
    pub fn served_sizes(&self) -> ServedSizes {
        let sizes: Vec<ServedSizes> = self.files().map(|index| index.served_sizes()).collect();
        ServedSizes {
            jokes: sizes.iter().map(|s| s.jokes).sum(),
            total: sizes.iter().map(|s| s.total).sum(),
            shortest: sizes.iter().map(|s| s.shortest).min().unwrap_or(0),
            longest: sizes.iter().map(|s| s.longest).max().unwrap_or(0),
            over_rfc865_limit: sizes.iter().map(|s| s.over_rfc865_limit).sum(),
        }
    }

    /// How many of them the length limits admit.
    pub fn eligible_jokes(&self) -> usize {
        self.files
            .iter()
            .map(|file| file.candidates.eligible_count())
            .sum()
    }

    /// Each file's chance of being chosen, in the order of [`files`](Self::files).
    pub fn shares(&self) -> Vec<f64> {
        self.picker.shares()
    }

    /// A file and a joke in it, with the picker's chances.
    pub fn pick(&self) -> (&Arc<Index>, usize) {
        let (file, number) = self.picker.pick_random();
        (&self.files[file].index, number)
    }

    fn find(&self, path: &Path) -> Option<&Loaded> {
        self.files.iter().find(|file| file.index.path() == path)
    }
}

/// The jokes a server serves from: one file, or a directory of them (`--jokes DIR`).
///
/// The [`Shelf`] sits behind an [`ArcSwap`]: every connection takes a cheap snapshot without
/// locking, and a reload publishes a new shelf in one atomic store. Connections that already
/// hold a joke of the old one finish with it.
///
/// Everything sits behind one `Arc` so that a reload can run as a task of its own (see
/// [`reload`](Jokes::reload)), outliving whichever connection asked for it.
#[derive(Debug)]
pub struct Jokes {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Whether `path` is a directory of jokes files (decided at start-up).
    is_dir: bool,
    format: FormatChoice,
    choice: JokeChoice,
    io_delay: Duration,
    current: ArcSwap<Shelf>,
    /// Reloads are serialised, so a burst of connections that all notice a change at once
    /// rebuilds the index once, not a thousand times. The lock also guards what the reloads
    /// remember of the files that failed.
    reloading: tokio::sync::Mutex<Failures>,
}

/// The files a reload could not put in service, by path: why, and the fingerprint the file had
/// then, so that a file that stays broken is reported once and not re-read on every check.
#[derive(Debug, Default)]
struct Failures(HashMap<PathBuf, Failure>);

#[derive(Debug)]
struct Failure {
    message: String,
    /// `None`: try again at every check (the file was still being written).
    fingerprint: Option<Fingerprint>,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// No file had changed; the shelf was kept.
    Unchanged,
    /// A fresh shelf is in use: a file was re-indexed, added, or taken out of service.
    Reloaded,
    /// A file changed but could not be indexed (empty, unreadable, mid-write), and there was
    /// nothing else to change: the last good version was kept.
    Failed,
}

/// Why the jokes could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A line is longer than the servers stream ([`MAX_LINE_BYTES`]).
    #[error(
        "{} line {line}: {bytes} bytes, longer than the {limit} a line of a joke may have",
        path.display()
    )]
    LineTooLong {
        path: PathBuf,
        line: u64,
        bytes: u64,
        limit: usize,
    },
    /// The file was modified a moment ago and may still be being written.
    #[error("{}: modified a moment ago, waiting for the writing to finish", path.display())]
    Settling { path: PathBuf },
    /// A file of a directory that is not taken for a jokes file (see [`dir::index_listed`]).
    #[error("{0}")]
    NotJokes(String),
    /// The directory holds no file that could be served.
    #[error("{}: no jokes file could be served from this directory{}", path.display(), skipped_note(skipped))]
    NoJokesFile { path: PathBuf, skipped: usize },
    /// The directory cannot be read.
    #[error("reading the directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No joke is as long as the limits ask.
    #[error("{}: no joke is {lengths} ({jokes} jokes)", path.display())]
    NoneFits {
        path: PathBuf,
        lengths: LengthLimits,
        jokes: usize,
    },
    /// `--min-length` above `--max-length`.
    #[error("--min-length {min} is more than --max-length {max}: no joke could be served")]
    EmptyLengthRange { min: usize, max: usize },
}

fn skipped_note(skipped: &usize) -> String {
    match skipped {
        0 => " (it is empty)".into(),
        n => format!(
            " ({} skipped, see above)",
            crate::stats::plural(*n as u64, "entry")
        ),
    }
}

// ANCHOR: line_limit
/// The longest line a joke may have, in bytes (its line ending not counted).
///
/// The streaming acts hand a joke over line by line, and Act VI's `LinesCodec` is built with
/// this as its maximum length. A file with a longer line is refused at start-up (and a reload
/// to one is refused, keeping the last good version), so that no act ever meets a line it
/// would handle differently from the others.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
// ANCHOR_END: line_limit

/// Refuses an index whose file has a line longer than [`MAX_LINE_BYTES`].
fn check_line_lengths(index: &Index) -> Result<(), LoadError> {
    let longest = index.longest_line();
    if longest.bytes > MAX_LINE_BYTES as u64 {
        return Err(LoadError::LineTooLong {
            path: index.path().to_path_buf(),
            line: longest.line,
            bytes: longest.bytes,
            limit: MAX_LINE_BYTES,
        });
    }
    Ok(())
}

// ANCHOR: settle_time
/// How long a changed file must stay untouched before it is indexed.
///
/// An editor that rewrites a file in place truncates it and then writes it, perhaps in several
/// pieces. Between two pieces the file is a perfectly readable jokes file whose last joke is
/// cut short, and an index built then would serve that stump as a whole joke. A file whose
/// modification time is older than this is taken as finished.
pub const SETTLE_TIME: Duration = Duration::from_millis(200);

/// Whether the indexed file was last modified at least [`SETTLE_TIME`] ago. An index whose
/// scan saw the file change under it has no modification time, and has not settled either.
fn has_settled(index: &Index) -> bool {
    match index.modified() {
        None => false,
        // A modification time in the future (a clock set back) cannot be waited out.
        Some(modified) => match SystemTime::now().duration_since(modified) {
            Ok(age) => age >= SETTLE_TIME,
            Err(_) => true,
        },
    }
}
// ANCHOR_END: settle_time

impl Inner {
    /// The files to serve, as the path says now: the one file, or the directory's listing (its
    /// left-out entries beside).
    fn list(&self) -> Result<(Vec<ListedFile>, Vec<dir::Skipped>), LoadError> {
        if !self.is_dir {
            let file = ListedFile {
                path: self.path.clone(),
                has_dat: false,
                rot13: false,
                offensive: false,
            };
            return Ok((vec![file], Vec::new()));
        }
        let listing =
            dir::list_dir(&self.path, self.choice.offensive).map_err(|source| LoadError::Dir {
                path: self.path.clone(),
                source,
            })?;
        Ok((listing.files, listing.skipped))
    }

    /// Indexes one file, checks it, works out which of its jokes fit, and lets the act load
    /// it (blocking: on the blocking pool, or at start-up). `settled` asks that the file has
    /// not been written to for [`SETTLE_TIME`] (every reload; not the start-up).
    fn load_file<A: Act>(
        &self,
        act: &A,
        listed: &ListedFile,
        settled: bool,
    ) -> Result<Loaded, LoadError> {
        let index = if self.is_dir {
            dir::index_listed(listed, self.format).map_err(LoadError::NotJokes)?
        } else {
            Index::build(&listed.path, self.format)?
        };
        if settled && !has_settled(&index) {
            return Err(LoadError::Settling {
                path: listed.path.clone(),
            });
        }
        check_line_lengths(&index)?;
        let candidates = if self.choice.lengths.is_unlimited() {
            Candidates::all(index.len())
        } else {
            // One sequential read of the file, to measure each joke as it is served.
            let served = index.read_served_blocking()?;
            let lengths = (0..served.len()).map(|n| served.range(n).map_or(0, |r| r.len()));
            Candidates::fitting(lengths, &self.choice.lengths)
        };
        let index = Arc::new(index);
        act.index_loaded(&index)?;
        Ok(Loaded { index, candidates })
    }
}

impl Jokes {
    /// Indexes the file, or every jokes file of the directory (blocking), and lets `act`
    /// prepare its own state from each.
    ///
    /// A single file that cannot be served is an error. In a directory, a file that cannot be
    /// served (not UTF-8, a line over [`MAX_LINE_BYTES`], no joke, not a jokes file) is left
    /// out with a warning that names it, and the others are served: a directory is a
    /// collection, and one bad file should not keep the rest from service. Start-up fails
    /// only when no file at all can be served, or no joke fits the length limits.
    pub fn load<A: Act>(
        act: &A,
        path: impl AsRef<Path>,
        format: FormatChoice,
        choice: JokeChoice,
        io_delay: Duration,
    ) -> Result<Jokes, LoadError> {
        let path = path.as_ref().to_path_buf();
        if choice.lengths.min > choice.lengths.max {
            return Err(LoadError::EmptyLengthRange {
                min: choice.lengths.min,
                max: choice.lengths.max,
            });
        }
        let is_dir = path.is_dir();
        let weighting = choice.weighting;
        let mut inner = Inner {
            path,
            is_dir,
            format,
            choice,
            io_delay,
            // Replaced below, once there is something to serve.
            current: ArcSwap::from_pointee(Shelf {
                files: Vec::new(),
                picker: Picker::new(vec![Candidates::all(1)], Weighting::ByJokes)
                    .expect("one joke is something to pick"),
            }),
            reloading: tokio::sync::Mutex::new(Failures::default()),
        };
        let (listed, skipped) = inner.list()?;
        for entry in &skipped {
            tracing::info!("skipping {}: {}", entry.path.display(), entry.reason);
        }
        let mut loaded = Vec::new();
        let mut failures = Failures::default();
        for file in &listed {
            match inner.load_file(act, file, false) {
                Ok(file) => loaded.push(file),
                Err(error) if !is_dir => return Err(error),
                Err(error) => {
                    // The error names the file.
                    tracing::warn!("{error}; skipped");
                    failures.remember(&file.path, &error);
                }
            }
        }
        if loaded.is_empty() {
            return Err(LoadError::NoJokesFile {
                path: inner.path.clone(),
                skipped: skipped.len() + failures.0.len(),
            });
        }
        let jokes: usize = loaded.iter().map(|file| file.index.len()).sum();
        let Some(shelf) = Shelf::new(loaded, weighting) else {
            return Err(LoadError::NoneFits {
                path: inner.path.clone(),
                lengths: inner.choice.lengths.clone(),
                jokes,
            });
        };
        if is_dir {
            tracing::info!("{}", describe(&inner.path, &shelf));
        }
        inner.current = ArcSwap::from_pointee(shelf);
        inner.reloading = tokio::sync::Mutex::new(failures);
        Ok(Jokes {
            inner: Arc::new(inner),
        })
    }

    /// The path given: the jokes file, or the directory of them.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The files in service now.
    pub fn current(&self) -> Arc<Shelf> {
        self.inner.current.load_full()
    }

    /// A joke chosen from the files in service, with fortune's chances.
    pub fn pick(&self) -> JokeToServe {
        let shelf = self.inner.current.load();
        let (index, number) = shelf.pick();
        JokeToServe::new(Arc::clone(index), number, self.inner.io_delay)
    }

    /// A random joke of at most `limit` raw bytes, for UDP; `None` when no file in service has
    /// one. A few draws with the usual chances first (cheap, and fair when most jokes are
    /// short), then the first short one of the first file that has one.
    pub fn pick_short(&self, limit: u64) -> Option<JokeToServe> {
        let shelf = self.current();
        let fits = |index: &Index, number: usize| {
            index
                .span(number)
                .is_some_and(|span| span.byte_len() <= limit)
        };
        let (index, number) = (0..16)
            .map(|_| shelf.pick())
            .find(|(index, number)| fits(index, *number))
            .or_else(|| {
                shelf.files().find_map(|index| {
                    (0..index.len())
                        .find(|&number| fits(index, number))
                        .map(|number| (index, number))
                })
            })?;
        Some(JokeToServe::new(
            Arc::clone(index),
            number,
            self.inner.io_delay,
        ))
    }

    /// Re-indexes every file that changed (or all of them, with `force`), puts new files of a
    /// directory in service and takes removed ones out, off the runtime.
    ///
    /// Each new index is handed to the act's [`Act::index_loaded`] and the new shelf is then
    /// published, in one step on the blocking pool, so the act's state (the cached finale's
    /// jokes) and what connections pick from change together. When a changed file cannot be
    /// indexed (it is momentarily empty while an editor rewrites it, say), a server with other
    /// files takes it out of service until it can be; a server with just that file keeps its
    /// last good index. Either way the failure is logged once.
    ///
    /// The reload runs as a task of its own, which the caller only waits for. A connection that
    /// asks for a reload may be given up on (its deadline, the end of the shutdown's grace
    /// period) while it waits: dropping a future stops it at its next `.await`, and a reload
    /// stopped between the act's new state and the new shelf would leave the two disagreeing.
    /// Dropping the wait for a spawned task does not stop the task.
    // ANCHOR: reload
    pub async fn reload<A: Act>(&self, act: &Arc<A>, force: bool) -> Reload {
        let (inner, act) = (Arc::clone(&self.inner), Arc::clone(act));
        match tokio::spawn(inner.reload(act, force)).await {
            Ok(reload) => reload,
            Err(join_error) => {
                tracing::error!("reloading {}: {join_error}", self.path().display());
                Reload::Failed
            }
        }
    }
    // ANCHOR_END: reload
}

/// The start-up line of a directory: each file served, its jokes and its chance.
fn describe(path: &Path, shelf: &Shelf) -> String {
    let files: Vec<String> = shelf
        .files
        .iter()
        .zip(shelf.shares())
        .map(|(file, share)| {
            let name = file
                .index
                .path()
                .strip_prefix(path)
                .unwrap_or(file.index.path())
                .display();
            let eligible = file.candidates.eligible_count();
            let fitting = if eligible == file.index.len() {
                String::new()
            } else {
                format!(", {eligible} fit")
            };
            format!(
                "{name} ({}{fitting}, {:.1}%)",
                file.index.len(),
                100.0 * share
            )
        })
        .collect();
    format!(
        "{}: serving {} from {}: {}",
        path.display(),
        crate::stats::plural(shelf.jokes() as u64, "joke"),
        crate::stats::plural(shelf.files.len() as u64, "file"),
        files.join(", ")
    )
}

impl Failures {
    fn remember(&mut self, path: &Path, error: &LoadError) {
        // A file caught while being written is tried again at every check; one that is
        // broken as it stands, only once it changes.
        let fingerprint = match error {
            LoadError::Settling { .. } => None,
            LoadError::Read(read) if read.is_stale() => None,
            _ => std::fs::metadata(path).ok().map(|m| Fingerprint::of(&m)),
        };
        self.0.insert(
            path.to_path_buf(),
            Failure {
                message: error.to_string(),
                fingerprint,
            },
        );
    }

    /// Whether `path` failed before and has not changed since (so trying again is pointless).
    fn still_failing(&self, path: &Path) -> bool {
        self.0.get(path).is_some_and(|failure| {
            failure.fingerprint.is_some()
                && failure.fingerprint == std::fs::metadata(path).ok().map(|m| Fingerprint::of(&m))
        })
    }
}

impl Inner {
    async fn reload<A: Act>(self: Arc<Self>, act: Arc<A>, force: bool) -> Reload {
        let mut failures = self.reloading.lock().await;
        let inner = Arc::clone(&self);
        // Listing the directory and looking at each file are blocking calls too: the whole
        // check runs on the blocking pool, so a slow disk never stalls a worker here.
        let mut taken = std::mem::take(&mut *failures);
        let done = tokio::task::spawn_blocking(move || {
            let reload = inner.reload_blocking(&*act, force, &mut taken);
            (reload, taken)
        })
        .await;
        match done {
            Ok((reload, taken)) => {
                *failures = taken;
                reload
            }
            Err(join_error) => {
                tracing::error!("reloading {}: {join_error}", self.path.display());
                Reload::Failed
            }
        }
    }

    fn reload_blocking<A: Act>(&self, act: &A, force: bool, failures: &mut Failures) -> Reload {
        let current = self.current.load_full();
        let listed = match self.list() {
            Ok((listed, _)) => listed,
            Err(error) => {
                self.log_once(failures, &self.path, error);
                return Reload::Failed;
            }
        };
        let mut files = Vec::with_capacity(listed.len());
        let (mut changed, mut failed) = (false, false);
        for file in &listed {
            let in_service = current.find(&file.path);
            if let Some(loaded) = in_service
                && !force
                && !file_changed(&loaded.index)
            {
                files.push(loaded.clone());
                continue;
            }
            if in_service.is_none() && !force && failures.still_failing(&file.path) {
                continue;
            }
            match self.load_file(act, file, true) {
                Ok(loaded) => {
                    if in_service.is_some() {
                        tracing::info!(
                            "reloaded {}: {} ({} format)",
                            file.path.display(),
                            crate::stats::plural(loaded.index.len() as u64, "joke"),
                            loaded.index.format()
                        );
                    } else if self.is_dir {
                        tracing::info!(
                            "{}: new jokes file, {}",
                            file.path.display(),
                            crate::stats::plural(loaded.index.len() as u64, "joke")
                        );
                    }
                    failures.0.remove(&file.path);
                    files.push(loaded);
                    changed = true;
                }
                Err(error) => {
                    // A file in service goes out of service until it can be indexed again (a
                    // server of this one file keeps it: see below). A file already out that
                    // fails again changes nothing: the caller's next pick cannot meet it.
                    failed |= in_service.is_some();
                    changed |= in_service.is_some();
                    self.log_once(failures, &file.path, error);
                }
            }
        }
        failures
            .0
            .retain(|path, _| *path == self.path || listed.iter().any(|file| file.path == *path));
        for gone in current.files() {
            if !listed.iter().any(|file| file.path == gone.path()) {
                tracing::info!("{}: gone, no longer served", gone.path().display());
                changed = true;
            }
        }
        if !changed {
            return if failed {
                Reload::Failed
            } else {
                Reload::Unchanged
            };
        }
        match Shelf::new(files, self.choice.weighting) {
            Some(shelf) => {
                // The act's state for every new index, and the shelf, published together.
                self.current.store(Arc::new(shelf));
                Reload::Reloaded
            }
            // Nothing left to serve: keep the last good version rather than serve nothing. (A
            // server of one file always ends up here when its file fails.)
            None => {
                if self.is_dir {
                    let message = "every file failed; still serving the last good versions";
                    let failure = failures.0.entry(self.path.clone()).or_insert(Failure {
                        message: String::new(),
                        fingerprint: None,
                    });
                    if failure.message != message {
                        tracing::warn!("{}: {message}", self.path.display());
                        failure.message = message.into();
                    }
                }
                Reload::Failed
            }
        }
    }

    /// Remembers why `path` failed, and logs it unless it already failed that way.
    fn log_once(&self, failures: &mut Failures, path: &Path, error: LoadError) {
        if let LoadError::Settling { .. } = error {
            tracing::debug!("{error}");
            failures.remember(path, &error);
            return;
        }
        let message = error.to_string();
        if failures
            .0
            .get(path)
            .is_none_or(|failure| failure.message != message)
        {
            if self.is_dir {
                tracing::warn!("{message}; out of service until it can be read again");
            } else {
                tracing::warn!("{message}; still serving the last good version");
            }
        }
        failures.remember(path, &error);
    }
}

/// Whether the file at the index's path is no longer the indexed one (one `stat`, blocking).
fn file_changed(index: &Index) -> bool {
    match std::fs::metadata(index.path()) {
        Ok(metadata) => index.ensure_unchanged(&metadata).is_err(),
        // Gone or unreadable counts as changed: the reload will say what is wrong.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::simulate_slow_disk;

    /// An act that keeps state keyed to the index it last loaded, as the cached finale does,
    /// and takes `delay` to load it: the finale reading the whole file from a slow disk.
    #[derive(Debug)]
    struct SlowToLoad {
        delay: Duration,
        loaded: ArcSwap<Option<Arc<Index>>>,
        loads: AtomicUsize,
    }

    impl Act for SlowToLoad {
        async fn serve_joke(
            &self,
            _: JokeToServe,
            _: &mut tokio::net::TcpStream,
        ) -> Result<(), crate::ServeError> {
            unreachable!("no connection in this test")
        }

        fn index_loaded(&self, index: &Arc<Index>) -> Result<(), ReadError> {
            simulate_slow_disk(self.delay);
            self.loaded.store(Arc::new(Some(Arc::clone(index))));
            self.loads.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl SlowToLoad {
        /// Whether a joke picked now would be found in the act's state: the finale's check.
        fn agrees_with(&self, jokes: &Jokes) -> bool {
            let loaded = self.loaded.load();
            (**loaded)
                .as_ref()
                .is_some_and(|index| Arc::ptr_eq(index, jokes.pick().index()))
        }
    }

    /// A connection's deadline runs out while the reload it asked for waits on a slow disk.
    /// The reload must still finish as one unit: once the act has loaded the new index, that
    /// index is the one connections pick from. (Before, the act kept the new index and the
    /// server the old one, and the finale answered every connection with nothing until the
    /// next reload.)
    #[tokio::test]
    async fn a_reload_given_up_on_still_publishes_what_the_act_loaded() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("jokes.txt");
        let settled = SystemTime::now() - Duration::from_secs(60);
        let write = |text: &str, modified: SystemTime| {
            std::fs::write(&path, text).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(modified).unwrap();
        };
        write("old one\n---\nold two\n", settled);
        let act = Arc::new(SlowToLoad {
            delay: Duration::from_millis(300),
            loaded: ArcSwap::from_pointee(None),
            loads: AtomicUsize::new(0),
        });
        let jokes = Jokes::load(
            &*act,
            &path,
            FormatChoice::Auto,
            JokeChoice::default(),
            Duration::ZERO,
        )
        .unwrap();
        assert!(act.agrees_with(&jokes));

        write(
            "new one\n---\nnew two\n---\nnew three\n",
            settled + Duration::from_secs(1),
        );
        // The connection's deadline: far shorter than the slow disk.
        let given_up = tokio::time::timeout(Duration::from_millis(20), jokes.reload(&act, false));
        assert!(given_up.await.is_err(), "the reload outlasts the deadline");

        // Wait for the act to finish loading the new index, then for the two to agree.
        let patience = Instant::now() + Duration::from_secs(5);
        while act.loads.load(Ordering::SeqCst) < 2 && Instant::now() < patience {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(act.loads.load(Ordering::SeqCst), 2, "the reload's load ran");
        while !act.agrees_with(&jokes) && Instant::now() < patience {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            act.agrees_with(&jokes),
            "the act loaded the new index but the server picks from {} jokes",
            jokes.current().jokes()
        );
        assert_eq!(jokes.current().jokes(), 3);
    }
}
