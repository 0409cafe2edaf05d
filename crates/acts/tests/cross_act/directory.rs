//! `--jokes DIR`: a directory of jokes files, laid out as fortune lays out its own. The harness
//! and the index own it, so every act serves from a directory the same way:
//!
//! - every answer is one whole joke of one of its jokes files, each file is served, the
//!   offensive `off/` folder only with `--offensive` and decoded from ROT13, and what is not a
//!   jokes file (strfile's `.dat`, a `.u8` link, a README, a file that is not UTF-8) never;
//! - one file rewritten again and again never tears a joke, and never takes the other files
//!   out of service;
//! - a file added to the directory is served, a file removed is not (one act stands for all:
//!   the harness does this, not the act);
//! - the real process says at start-up what it loaded and skipped, and refuses (exit 2) a
//!   directory with nothing to serve and length limits no joke meets.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use joke_index::pick::Weighting;
use joke_index::strfile::{FLAG_ROTATED, write_dat_for};
use joke_index::{FormatChoice, jokes_in, rot13};
use joke_server::{Act, Config, JokeChoice};
use joke_testkit::client::{client_runtime, fetch_joke, within};
use joke_testkit::{JokesFile, ServerUnderTest};

use crate::common::{alongside_others, os, run_binary_to_exit, start_binary};

/// `count` jokes in fortune's format, each tagged with `tag` so its file can be told.
fn fortune_text(tag: &str, count: usize) -> String {
    (0..count)
        .map(|n| format!("{tag} joke {n}:\n  a line {}\n%\n", "ha".repeat(1 + n % 5)))
        .collect()
}

/// A fortunes directory: `jokes.txt` (dashed, no `.dat`), `riddles` (fortune format with its
/// `.dat` and a `.u8` link), `off/rude` (ROT13-encoded, flagged in its `.dat`), and entries
/// that are not jokes files: a README (one "joke", no separator), a file that is not UTF-8,
/// and a C source (an extension fortune never reads).
struct FortunesDir {
    file: JokesFile,
}

impl FortunesDir {
    fn new() -> Self {
        let dashed: String = (0..12)
            .map(|n| format!("dashed joke {n}\nwith a second line\n---\n"))
            .collect();
        let file = JokesFile::with_bytes(dashed);
        let dir = file.folder();
        std::fs::write(dir.join("riddles"), fortune_text("riddle", 12)).unwrap();
        write_dat_for(dir.join("riddles"), dir.join("riddles.dat")).unwrap();
        std::os::unix::fs::symlink("riddles", dir.join("riddles.u8")).unwrap();
        std::fs::create_dir(dir.join("off")).unwrap();
        let mut rude = fortune_text("rude", 12).into_bytes();
        rot13(&mut rude);
        std::fs::write(dir.join("off/rude"), &rude).unwrap();
        let mut dat = write_dat_for(dir.join("off/rude"), dir.join("off/rude.dat"))
            .unwrap()
            .to_bytes();
        // The flags word is bytes 16..20, big-endian.
        dat[19] |= FLAG_ROTATED as u8;
        std::fs::write(dir.join("off/rude.dat"), dat).unwrap();
        std::fs::write(dir.join("README"), "These are jokes. Enjoy.\n").unwrap();
        std::fs::write(dir.join("latin1"), b"caf\xe9\n%\nbar\n%\n").unwrap();
        std::fs::write(dir.join("strfile.c"), "int main(void) { return 0; }\n%\n").unwrap();
        FortunesDir { file }
    }

    fn path(&self) -> &Path {
        self.file.folder()
    }

    /// Every joke that may be served, by the file it comes from (`off/rude` decoded).
    fn jokes(&self, offensive: bool) -> HashMap<String, &'static str> {
        let mut jokes = HashMap::new();
        let mut add = |text: String, name: &'static str| {
            for joke in jokes_in(text.as_bytes(), FormatChoice::Auto).unwrap().1 {
                jokes.insert(joke, name);
            }
        };
        add(
            std::fs::read_to_string(self.file.path()).unwrap(),
            "jokes.txt",
        );
        add(fortune_text("riddle", 12), "riddles");
        if offensive {
            add(fortune_text("rude", 12), "off/rude");
        }
        jokes
    }
}

/// Every act, with `--offensive` and equal files: every answer is a whole joke of a jokes
/// file, decoded, and every jokes file is served.
fn serves_every_jokes_file_and_nothing_else<A: Act>(act: A) {
    let _shared = alongside_others();
    let dir = FortunesDir::new();
    let jokes = dir.jokes(true);
    let config = Config {
        choice: JokeChoice {
            weighting: Weighting::EqualFiles,
            offensive: true,
            ..JokeChoice::default()
        },
        ..Config::new(dir.path())
    };
    let server = ServerUnderTest::start(act, config);
    let addr = server.addr();
    let answers = client_runtime().block_on(async {
        let mut answers = Vec::new();
        for _ in 0..60 {
            answers.push(fetch_joke(addr).await.expect("the server answers"));
        }
        answers
    });
    let mut seen = HashSet::new();
    for answer in &answers {
        let text = String::from_utf8_lossy(answer);
        let file = jokes
            .get(text.as_ref())
            .unwrap_or_else(|| panic!("not one joke of a jokes file: {text:?}"));
        seen.insert(*file);
    }
    // Three files, equally likely: the chance that 60 answers miss one is 3 × (2/3)^60, about
    // one in ten billion.
    assert_eq!(
        seen,
        HashSet::from(["jokes.txt", "riddles", "off/rude"]),
        "every jokes file is served"
    );
    server.stop();
}

/// The same directory without `--offensive`: `off/` is never served.
#[test]
fn without_offensive_the_off_folder_is_never_served() {
    let _shared = alongside_others();
    let dir = FortunesDir::new();
    let jokes = dir.jokes(false);
    let server = ServerUnderTest::start(acts::make::act1_naive(), Config::new(dir.path()));
    let addr = server.addr();
    client_runtime().block_on(async {
        for _ in 0..40 {
            let answer = fetch_joke(addr).await.expect("the server answers");
            let text = String::from_utf8_lossy(&answer);
            assert!(jokes.contains_key(text.as_ref()), "{text:?}");
        }
    });
    server.stop();
}

/// The text of version `v` of the file that is being rewritten: its own number of jokes, each
/// line tagged with the version, so that a joke mixing two versions matches none.
fn version_text(v: usize) -> String {
    (0..(5 + 3 * v))
        .map(|j| format!("v{v} joke {j}: {}\n---\n", "ho".repeat(2 + (v + j) % 11)))
        .collect()
}

/// One file of the directory rewritten in place, again and again, while clients ask: no joke
/// is torn, every answer is a joke (the other files stay in service while the rewritten one
/// is out), and the last version is served in the end.
fn one_files_rewrite_never_tears_a_joke_nor_stops_the_others<A: Act>(act: A, streams: bool) {
    let _shared = alongside_others();
    let dir = FortunesDir::new();
    let edited = dir.path().join("edited");
    std::fs::write(&edited, version_text(0)).unwrap();
    let mut jokes: HashMap<String, Option<usize>> = dir
        .jokes(false)
        .into_keys()
        .map(|joke| (joke, None))
        .collect();
    for v in 0..6 {
        for joke in jokes_in(version_text(v).as_bytes(), FormatChoice::Auto)
            .unwrap()
            .1
        {
            jokes.insert(joke, Some(v));
        }
    }
    let jokes = Arc::new(jokes);
    let server = ServerUnderTest::start(act, Config::new(dir.path()));
    let addr = server.addr();
    let editing = Arc::new(AtomicBool::new(true));
    let editor = {
        let (edited, editing) = (edited.clone(), Arc::clone(&editing));
        std::thread::spawn(move || {
            use std::io::Write;
            for step in 0..15 {
                let text = version_text(1 + step % 4);
                // In place: truncated, then written in two pieces, the half-written file there
                // to be read in between.
                let mut file = std::fs::File::create(&edited).unwrap();
                file.write_all(&text.as_bytes()[..text.len() / 2]).unwrap();
                file.flush().unwrap();
                std::thread::sleep(Duration::from_millis(3));
                file.write_all(&text.as_bytes()[text.len() / 2..]).unwrap();
                drop(file);
                let pause = if step % 4 == 3 { 450 } else { 25 };
                std::thread::sleep(Duration::from_millis(pause));
            }
            std::fs::write(&edited, version_text(5)).unwrap();
            editing.store(false, Ordering::SeqCst);
        })
    };
    let runtime = client_runtime();
    let (whole, resets, problems) = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (jokes, editing) = (Arc::clone(&jokes), Arc::clone(&editing));
            clients.push(tokio::spawn(async move {
                let (mut whole, mut resets, mut problems) = (0, 0, Vec::new());
                while editing.load(Ordering::SeqCst) {
                    match fetch_joke(addr).await {
                        Ok(answer) => {
                            let text = String::from_utf8_lossy(&answer).into_owned();
                            if jokes.contains_key(&text) {
                                whole += 1;
                            } else {
                                problems.push(text);
                            }
                        }
                        // An act that streams lines as it reads them learns of the change
                        // after writing part of a joke: the harness resets the connection.
                        Err(error)
                            if streams && error.kind() == std::io::ErrorKind::ConnectionReset =>
                        {
                            resets += 1
                        }
                        Err(error) => problems.push(format!("error: {error}")),
                    }
                }
                (whole, resets, problems)
            }));
        }
        let mut total = (0, 0, Vec::new());
        for client in clients {
            let (whole, resets, problems) = client.await.unwrap();
            total.0 += whole;
            total.1 += resets;
            total.2.extend(problems);
        }
        total
    });
    editor.join().unwrap();
    eprintln!(
        "during the rewrites: {whole} whole jokes, {resets} resets, {} others",
        problems.len()
    );
    // An empty answer would be a file out of service taking the others with it; a torn joke,
    // a read that missed the rewrite.
    assert!(
        problems.is_empty(),
        "{} answers were not one whole joke, the first: {:?}",
        problems.len(),
        problems.first()
    );
    assert!(whole > 0);
    runtime.block_on(async {
        within(
            Duration::from_secs(10),
            "waiting for the last version",
            async {
                loop {
                    let answer = fetch_joke(addr).await?;
                    let text = String::from_utf8_lossy(&answer);
                    if jokes.get(text.as_ref()) == Some(&Some(5)) {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        )
        .await
        .expect("the last version of the rewritten file is served");
    });
    server.stop();
}

acts::for_every_act! {
    tests(entry, act) {
        #[test]
        fn serves_every_jokes_file_of_a_directory_and_nothing_else() {
            super::serves_every_jokes_file_and_nothing_else(act);
        }

        #[test]
        fn one_files_rewrite_never_tears_a_joke_nor_stops_the_others() {
            super::one_files_rewrite_never_tears_a_joke_nor_stops_the_others(act, entry.streams);
        }
    }
}

/// Waits (bounded) until `check` holds for an answer of the server at `addr`.
fn wait_for_answer(addr: std::net::SocketAddr, what: &str, check: impl Fn(&str) -> bool) {
    client_runtime().block_on(async {
        within(Duration::from_secs(10), what, async {
            loop {
                let answer = fetch_joke(addr).await?;
                if check(&String::from_utf8_lossy(&answer)) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    });
}

/// A file added to the watched directory is served; a file removed from it no longer is.
#[test]
fn a_file_added_is_served_and_a_file_removed_is_not() {
    let _shared = alongside_others();
    let dir = FortunesDir::new();
    let server = ServerUnderTest::start(acts::make::act1_naive(), Config::new(dir.path()));
    let addr = server.addr();
    let added = dir.path().join("added");
    std::fs::write(&added, fortune_text("added", 200)).unwrap();
    // 200 of 224 jokes: most answers come from it once it is in.
    wait_for_answer(addr, "the added file is served", |text| {
        text.starts_with("added joke")
    });
    std::fs::remove_file(&added).unwrap();
    // Give the watcher (every 500 ms) its look, then no answer may come from the file.
    let removed_at = Instant::now();
    wait_for_answer(addr, "a joke of another file after the removal", |text| {
        !text.starts_with("added joke") && removed_at.elapsed() > Duration::from_secs(1)
    });
    client_runtime().block_on(async {
        for _ in 0..40 {
            let answer = fetch_joke(addr).await.expect("the server answers");
            let text = String::from_utf8_lossy(&answer);
            assert!(
                !text.starts_with("added joke"),
                "served after removal: {text:?}"
            );
        }
    });
    server.stop();
}

fn dir_args(path: &Path, more: &[&str]) -> Vec<OsString> {
    let mut args = os(&["--addr", "127.0.0.1:0", "--jokes"]);
    args.push(path.into());
    args.extend(os(more));
    args
}

/// The real process names, at start-up, what it serves (each file, its jokes, its chance)
/// and each entry it skipped with the reason.
#[test]
fn the_start_up_log_says_what_was_loaded_and_what_was_skipped() {
    let _shared = alongside_others();
    let dir = FortunesDir::new();
    let entry = acts::entry("act2-spawn-blocking");
    // `start_binary` waits for the "listening on" line, which comes after the loading.
    let stderr = start_binary(entry, &dir_args(dir.path(), &[]))
        .terminate()
        .stderr;
    let serving = stderr
        .lines()
        .find(|line| line.contains("serving 24 jokes from 2 files"))
        .unwrap_or_else(|| panic!("no line naming the files served: {stderr}"));
    assert!(
        serving.contains("jokes.txt (12, 50.0%)") && serving.contains("riddles (12, 50.0%)"),
        "{serving}"
    );
    for (skipped, why) in [
        ("README", "not taken for a jokes file"),
        ("latin1", "invalid UTF-8"),
        ("strfile.c", "not a jokes file"),
        ("off", "--offensive"),
    ] {
        let path = dir.path().join(skipped);
        let line = stderr
            .lines()
            .find(|line| line.contains(&path.display().to_string()) && line.contains("skip"))
            .unwrap_or_else(|| panic!("{skipped} is not said to be skipped: {stderr}"));
        assert!(line.contains(why), "{line}");
    }
    assert!(!stderr.contains("riddles.u8") && !stderr.contains("riddles.dat"));
}

/// A directory with nothing to serve, and limits no joke meets, are refused with exit code 2
/// and a message that says why.
#[test]
fn nothing_to_serve_is_refused_with_2() {
    let _shared = alongside_others();
    let entry = acts::entry("act1-naive");
    let empty = JokesFile::with_bytes("");
    std::fs::remove_file(empty.path()).unwrap();
    let exited = run_binary_to_exit(entry, &dir_args(empty.folder(), &[]));
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited
            .stderr
            .contains("no jokes file could be served from this directory"),
        "{}",
        exited.stderr
    );

    let dir = FortunesDir::new();
    let exited = run_binary_to_exit(entry, &dir_args(dir.path(), &["--min-length", "5000"]));
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited
            .stderr
            .contains("no joke is at least 5000 bytes long"),
        "{}",
        exited.stderr
    );

    let exited = run_binary_to_exit(
        entry,
        &dir_args(dir.path(), &["--min-length", "300", "--max-length", "100"]),
    );
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited
            .stderr
            .contains("--min-length 300 is more than --max-length 100"),
        "{}",
        exited.stderr
    );

    let exited = run_binary_to_exit(entry, &dir_args(dir.path(), &["--max-length", "many"]));
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("expected a number of bytes"),
        "{}",
        exited.stderr
    );
}

/// `--max-length` alone is fortune's `-s`: at most 160 bytes.
#[test]
fn max_length_alone_serves_only_short_jokes() {
    let _shared = alongside_others();
    let mut text = String::new();
    for n in 0..6 {
        text += &format!("short {n}\n---\n{}\n---\n", format!("long {n} ").repeat(30));
    }
    let file = JokesFile::with_bytes(&text);
    let entry = acts::entry("act1-naive");
    let mut args = crate::common::server_args(&file);
    args.push("--max-length".into());
    let server = start_binary(entry, &args);
    let addr = server.addr();
    client_runtime().block_on(async {
        for _ in 0..30 {
            let answer = fetch_joke(addr).await.expect("the server answers");
            assert!(answer.len() <= 160, "{} bytes", answer.len());
            assert!(answer.starts_with(b"short"));
        }
    });
    let exited = server.terminate();
    assert!(
        exited
            .stderr
            .contains("serving 12 jokes (6 of the length asked)"),
        "{}",
        exited.stderr
    );
}

/// Without `--jokes`, a binary run outside the checkout (as an installed one is) serves the
/// copy of the project's `jokes.txt` built into it, written to the temporary folder, and never
/// the checkout's file. (`--max-length 1` makes the server refuse at once, naming the file.)
#[test]
fn outside_the_checkout_the_built_in_jokes_are_served() {
    let _shared = alongside_others();
    let elsewhere = JokesFile::with_bytes("");
    std::fs::remove_file(elsewhere.path()).unwrap();
    let output = std::process::Command::new(crate::common::RUN_ACT)
        .args(["act1-naive", "--addr", "127.0.0.1:0", "--max-length", "1"])
        .current_dir(elsewhere.folder())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let path = stderr
        .split_once("error: ")
        .and_then(|(_, rest)| rest.split_once(": no joke is at most 1 bytes long"))
        .map(|(path, _)| std::path::PathBuf::from(path))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(path.starts_with(std::env::temp_dir()), "{}", path.display());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        joke_server::BUILT_IN_JOKES
    );
}
