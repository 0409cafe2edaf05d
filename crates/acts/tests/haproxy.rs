//! Three replicas behind a real HAProxy (Debian package `haproxy`), configured by
//! `deploy/haproxy.cfg` with its addresses moved to free loopback ports. Behind the
//! `system-tests` feature:
//!
//! ```text
//! cargo test -p acts --features system-tests --test haproxy
//! ```
//!
//! - every joke through HAProxy is whole, and the replicas learn the real client's address
//!   from the PROXY v2 header (HAProxy is made to connect to them from 127.0.0.3, the clients
//!   connect from 127.0.0.1);
//! - HAProxy's health checks reach the replicas as PROXY LOCAL connections, counted as checks;
//! - one replica SIGKILLed mid-run: only connections started before the checks could notice
//!   (kill + fall × inter + a margin) may fail, at most as many as were in flight, and every
//!   connection started after that succeeds. (The ones in flight on the dead replica reach
//!   the client as a clean end, usually with nothing before it: HAProxy closes the client's
//!   side normally when the server's side dies. RFC 865 has no length, so a client cannot
//!   tell a cut joke from a whole one here; the test counts them apart, `empty` and `torn`.)

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use joke_server::supervisor::Signal;
use joke_testkit::client::{client_runtime, fetch_joke};
use joke_testkit::load::{Load, Outcome, Outcomes};
use joke_testkit::{JokesFile, RunningBinary};

/// The clients' concurrency: at most this many connections are in flight at any moment.
const CLIENTS: usize = 8;
/// deploy/haproxy.cfg's `inter` and `fall`: a dead replica is marked down within about
/// INTER × FALL of its death.
const INTER: Duration = Duration::from_millis(500);
const FALL: u32 = 2;
/// What the assertion allows on top: the first check's phase, scheduling on a busy machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// HAProxy in the foreground, killed when dropped.
struct Haproxy {
    child: Child,
    log: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// deploy/haproxy.cfg, on `frontend` and the replicas' addresses, connecting from 127.0.0.3.
fn configuration(frontend: u16, replicas: &[SocketAddr]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/haproxy.cfg");
    let mut text = std::fs::read_to_string(path).expect("reading deploy/haproxy.cfg");
    assert!(text.contains(&format!("inter {}ms fall {FALL}", INTER.as_millis())));
    let mut replace = |from: &str, to: &str| {
        assert!(text.contains(from), "deploy/haproxy.cfg has no {from:?}");
        text = text.replace(from, to);
    };
    replace(
        "bind 127.0.0.1:12345",
        &format!("bind 127.0.0.1:{frontend}"),
    );
    for (old, new) in ["127.0.0.1:12346", "127.0.0.1:12347", "127.0.0.1:12348"]
        .iter()
        .zip(replicas)
    {
        replace(old, &new.to_string());
    }
    // From another address than the clients', so the replicas can only learn 127.0.0.1 from
    // the PROXY header.
    replace(
        "balance leastconn\n",
        "balance leastconn\n    source 127.0.0.3\n",
    );
    text
}

fn start_haproxy(config: &str, folder: &std::path::Path) -> Haproxy {
    let path = folder.join("haproxy.cfg");
    std::fs::write(&path, config).expect("writing the configuration");
    let log = folder.join("haproxy.log");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("creating the log"))
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run haproxy ({error}): the system tests need Debian's package \
                 `haproxy` (apt-get install haproxy)"
            )
        });
    Haproxy { child, log }
}

#[test]
fn replicas_behind_haproxy_survive_one_being_killed() {
    let file = JokesFile::fixture();
    let jokes = file.served_joke_set();
    let run_act = env!("CARGO_BIN_EXE_run-act");
    let path = file.path().display().to_string();
    let args = [
        "finale-cached",
        "--addr",
        "127.0.0.1:0",
        "--proxy-protocol",
        "--jokes",
        &path,
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let mut replicas: Vec<Option<RunningBinary>> = (0..3)
        .map(|_| {
            Some(RunningBinary::start_with_env(
                run_act,
                &args,
                &[("RUST_LOG", "info,joke_server::server=debug")],
            ))
        })
        .collect();
    let addrs: Vec<SocketAddr> = replicas.iter().flatten().map(RunningBinary::addr).collect();
    let frontend = free_port();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let haproxy = start_haproxy(&configuration(frontend, &addrs), folder.path());
    let front = SocketAddr::from(([127, 0, 0, 1], frontend));

    let runtime = client_runtime();
    // HAProxy is ready when a joke comes through.
    let ready = Instant::now() + Duration::from_secs(10);
    while runtime.block_on(fetch_joke(front)).is_err() {
        assert!(
            Instant::now() < ready,
            "no joke through HAProxy:\n{}",
            haproxy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // All three up: every joke whole.
    let load = Load::start(&runtime, front, Arc::clone(&jokes), CLIENTS);
    std::thread::sleep(Duration::from_millis(1000));
    let healthy = Outcomes::of(&load.stop(&runtime));
    assert_eq!(healthy.failed(), 0, "{healthy:?}\n{}", haproxy.log());
    assert!(healthy.whole > 0);

    // One replica killed mid-run.
    let load = Load::start(&runtime, front, Arc::clone(&jokes), CLIENTS);
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    replicas[1].as_ref().expect("running").signal(Signal::KILL);
    let noticed = killed_at + INTER * FALL + MARGIN;
    std::thread::sleep(noticed - killed_at + Duration::from_millis(1000));
    let records = load.stop(&runtime);
    drop(replicas[1].take());

    let failures: Vec<_> = records
        .iter()
        .filter(|record| record.outcome != Outcome::Whole)
        .collect();
    let after_noticed: Vec<_> = records
        .iter()
        .filter(|record| record.started >= noticed)
        .collect();
    let outcomes = Outcomes::of(&records);
    let recovery = failures
        .iter()
        .map(|record| (record.started + record.took).saturating_duration_since(killed_at))
        .max()
        .unwrap_or_default();
    eprintln!(
        "replica killed behind HAProxy: {outcomes:?}; {} failures, the last one ended {recovery:?} \
         after the kill; {} connections started after kill + fall × inter + margin, all whole",
        failures.len(),
        after_noticed.len()
    );
    assert!(
        after_noticed
            .iter()
            .all(|record| record.outcome == Outcome::Whole),
        "a connection started after the checks noticed failed: {outcomes:?}\n{}",
        haproxy.log()
    );
    assert!(!after_noticed.is_empty());
    assert!(
        failures.len() <= CLIENTS,
        "more failures than connections in flight: {outcomes:?}"
    );
    assert!(
        failures.iter().all(|record| record.started < noticed),
        "{outcomes:?}"
    );

    // What the surviving replicas saw: the real client, checks counted as checks.
    for replica in replicas.into_iter().flatten() {
        let exited = replica.terminate();
        let stats = exited.statistics().expect("the statistics line");
        assert!(stats.served > 0, "{stats:?}");
        assert_eq!(stats.proxied, stats.served, "{stats:?}");
        assert!(stats.health_checks > 0, "{stats:?}");
        assert_eq!(stats.proxy_header_refusals, 0, "{stats:?}");
        assert!(
            exited.stderr.contains("served a joke to 127.0.0.1:"),
            "the replica logged the clients' real address:\n{}",
            exited.stderr
        );
        assert!(
            !exited.stderr.contains("served a joke to 127.0.0.3"),
            "the replica took HAProxy's address for the client's"
        );
        assert!(
            !exited.stderr.contains("WARN"),
            "no warning on a healthy replica:\n{}",
            exited.stderr
        );
    }
}
