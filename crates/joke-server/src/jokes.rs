//! The jokes file as the server sees it: the current index, swapped for a fresh one whenever
//! the file changes.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use joke_index::{FormatChoice, Index, IndexError, JokeLineReader, ReadError};
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
        ReadError::Io {
            path: self.index().path().to_path_buf(),
            source: io::Error::other(format!("the blocking read did not finish: {error}")),
        }
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

/// The jokes file a server serves from.
///
/// The index sits behind an [`ArcSwap`]: every connection takes a cheap snapshot (`Arc<Index>`)
/// without locking, and a reload publishes a new index in one atomic store. Connections that
/// already hold the old snapshot finish with it.
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
    format: FormatChoice,
    io_delay: Duration,
    current: ArcSwap<Index>,
    /// Reloads are serialised, so a burst of connections that all notice a change at once
    /// rebuilds the index once, not a thousand times.
    reloading: tokio::sync::Mutex<()>,
    /// The last reload failure, so that a file that stays broken is reported once, not on
    /// every check.
    last_failure: Mutex<Option<String>>,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The file had not changed; the index was kept.
    Unchanged,
    /// A fresh index is in use.
    Reloaded,
    /// The file changed but could not be indexed (empty, unreadable, mid-write); the last good
    /// index was kept.
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

impl Jokes {
    /// Indexes the file (blocking) and lets `act` prepare its own state from it.
    pub fn load<A: Act>(
        act: &A,
        path: impl AsRef<Path>,
        format: FormatChoice,
        io_delay: Duration,
    ) -> Result<Jokes, LoadError> {
        let path = path.as_ref().to_path_buf();
        let index = Arc::new(Index::build(&path, format)?);
        check_line_lengths(&index)?;
        act.index_loaded(&index)?;
        let inner = Inner {
            path,
            format,
            io_delay,
            current: ArcSwap::new(index),
            reloading: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
        };
        Ok(Jokes {
            inner: Arc::new(inner),
        })
    }

    /// The jokes file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The index in use now.
    pub fn current(&self) -> Arc<Index> {
        self.inner.current.load_full()
    }

    /// A random joke from the current index.
    pub fn pick(&self) -> JokeToServe {
        let index = self.current();
        let number = index.random_number();
        JokeToServe::new(index, number, self.inner.io_delay)
    }

    /// A random joke of at most `limit` raw bytes, for UDP; `None` when the current index has
    /// none. A few random draws first (cheap, and fair when most jokes are short), then the
    /// first short one in the file.
    pub fn pick_short(&self, limit: u64) -> Option<JokeToServe> {
        let index = self.current();
        let fits = |number: usize| {
            index
                .span(number)
                .is_some_and(|span| span.byte_len() <= limit)
        };
        let number = (0..16)
            .map(|_| index.random_number())
            .find(|&number| fits(number))
            .or_else(|| (0..index.len()).find(|&number| fits(number)))?;
        Some(JokeToServe::new(index, number, self.inner.io_delay))
    }

    /// Rebuilds the index if the file changed (or always, with `force`), off the runtime.
    ///
    /// The new index is handed to the act's [`Act::index_loaded`] and then published, in one
    /// step on the blocking pool, so the act's state (the cached finale's jokes) and the index
    /// connections pick from change together. When the file cannot be indexed (it is
    /// momentarily empty while an editor rewrites it, say), the last good index stays in use
    /// and the failure is logged once.
    ///
    /// The reload runs as a task of its own, which the caller only waits for. A connection that
    /// asks for a reload may be given up on (its deadline, the end of the shutdown's grace
    /// period) while it waits: dropping a future stops it at its next `.await`, and a reload
    /// stopped between the act's new state and the new index would leave the two disagreeing.
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

impl Inner {
    async fn reload<A: Act>(self: Arc<Self>, act: Arc<A>, force: bool) -> Reload {
        let _only_one_reload = self.reloading.lock().await;
        let current = self.current.load_full();
        if !force && !file_changed(&current).await {
            return Reload::Unchanged;
        }
        let inner = Arc::clone(&self);
        let built = tokio::task::spawn_blocking(move || -> Result<Arc<Index>, LoadError> {
            let index = Arc::new(Index::build(&inner.path, inner.format)?);
            if !has_settled(&index) {
                return Err(LoadError::Settling {
                    path: inner.path.clone(),
                });
            }
            check_line_lengths(&index)?;
            act.index_loaded(&index)?;
            // The act's state and the index, published together.
            inner.current.store(Arc::clone(&index));
            Ok(index)
        })
        .await;
        let built = match built {
            Ok(result) => result,
            Err(join_error) => {
                tracing::error!("reloading {}: {join_error}", self.path.display());
                return Reload::Failed;
            }
        };
        match built {
            Ok(index) => {
                tracing::info!(
                    "reloaded {}: {} jokes ({} format)",
                    self.path.display(),
                    index.len(),
                    index.format()
                );
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Reload::Reloaded
            }
            Err(error @ LoadError::Settling { .. }) => {
                tracing::debug!("{error}");
                Reload::Failed
            }
            Err(error) => {
                let message = error.to_string();
                let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_deref() != Some(message.as_str()) {
                    tracing::warn!("{message}; still serving the last good version");
                    *last = Some(message);
                }
                Reload::Failed
            }
        }
    }
}

/// Whether the file at the index's path is no longer the indexed one. `tokio::fs::metadata`
/// runs the `stat` on the blocking pool, so a slow disk never stalls a worker here.
async fn file_changed(index: &Index) -> bool {
    match tokio::fs::metadata(index.path()).await {
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
        let jokes = Jokes::load(&*act, &path, FormatChoice::Auto, Duration::ZERO).unwrap();
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
            jokes.current().len()
        );
        assert_eq!(jokes.current().len(), 3);
    }
}
