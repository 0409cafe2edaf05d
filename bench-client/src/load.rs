//! The load itself: many connections released at the same instant, each read to its end.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::verify::JokeSet;

/// A response longer than this is not a joke (RFC 865 asks for under 512 characters; ours are
/// a few hundred bytes). Reading stops there, so a server that streams forever cannot fill our
/// memory before `--timeout` ends it.
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;

/// What to do in one round: where, how many connections, and what counts as success.
#[derive(Debug, Clone)]
pub(crate) struct LoadPlan {
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    /// How long the connect may take, and then how long the whole response may take.
    pub(crate) timeout: Duration,
    /// Bytes to send before reading (`--send`); empty for none.
    pub(crate) send: Arc<[u8]>,
    /// The jokes a response must be one of (`--verify`); without it, any non-empty response is
    /// a success.
    pub(crate) verify: Option<Arc<JokeSet>>,
}

/// Why a connection failed. The names are the keys of `errors` in the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ErrorKind {
    /// Nobody listening: the kernel answered the SYN with a reset.
    Refused,
    /// The connection was reset (or aborted) after it was established.
    Reset,
    /// The connect, or the response, took longer than `--timeout`.
    Timeout,
    /// The response was empty, too long, or not one of the `--verify` jokes.
    Invalid,
    /// Anything else (for example running out of file descriptors).
    Other,
}

impl ErrorKind {
    /// Every kind, in the order they are printed.
    pub(crate) const ALL: [ErrorKind; 5] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Invalid,
        ErrorKind::Other,
    ];

    /// The kind's name in the output.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of an I/O error from the socket.
    pub(crate) fn of(error: &io::Error) -> ErrorKind {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Other,
        }
    }
}

/// How long the phases of one successful connection took, each from the moment it started
/// connecting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timings {
    pub(crate) connect: Duration,
    pub(crate) first_byte: Duration,
    /// Until the server closed the connection (end-of-stream).
    pub(crate) total: Duration,
}

/// Why one connection failed, with a message for the reader.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) detail: String,
}

/// What happened to one connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnOutcome {
    pub(crate) result: Result<Timings, Failure>,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
}

/// One round: its wall time and the outcome of each of its connections.
#[derive(Debug, Clone)]
pub(crate) struct Round {
    pub(crate) wall: Duration,
    pub(crate) outcomes: Vec<ConnOutcome>,
}

// ANCHOR: round
/// Runs one round: `plan.conns` connections, all started at the same instant.
///
/// A loop that connects and then moves on would serialise the connects behind one another and
/// measure the client as much as the server. Instead every connection is its own task, and all
/// of them first wait at a barrier. The barrier counts one more party, this function, so it only
/// opens once every task is spawned and waiting; then they all connect together, as the burst
/// of the seed article meant to. The wall clock starts just before this function's own wait at
/// the barrier (so before any connection can start: the barrier cannot open without us) and
/// stops when the last connection ends; a round's wall time is never shorter than its slowest
/// connection. (Started after the wait, it was: the released tasks, on other worker threads,
/// could begin connecting before this task was polled again.)
pub(crate) async fn run_round(plan: &Arc<LoadPlan>, progress: &ProgressBar) -> Round {
    let start_line = Arc::new(Barrier::new(plan.conns + 1));
    let mut connections = JoinSet::new();
    for _ in 0..plan.conns {
        let start_line = Arc::clone(&start_line);
        let plan = Arc::clone(plan);
        let progress = progress.clone();
        connections.spawn(async move {
            start_line.wait().await;
            let outcome = one_connection(&plan).await;
            progress.inc(1);
            outcome
        });
    }
    let started = Instant::now();
    start_line.wait().await;
    let mut outcomes = Vec::with_capacity(plan.conns);
    while let Some(joined) = connections.join_next().await {
        outcomes.push(joined.unwrap_or_else(|panic| ConnOutcome {
            result: Err(Failure {
                kind: ErrorKind::Other,
                detail: format!("the connection's task failed: {panic}"),
            }),
            bytes_received: 0,
            bytes_sent: 0,
        }));
    }
    Round {
        wall: started.elapsed(),
        outcomes,
    }
}
// ANCHOR_END: round

// ANCHOR: connection
/// One connection: connect, send `--send` if any, read to end-of-stream, check the joke.
///
/// Two deadlines keep it from hanging: the connect must finish within `--timeout` (a dropped
/// SYN is retried by the kernel for minutes), and then the whole exchange must finish within
/// another `--timeout` (a server that accepts and never writes, or trickles a byte a second,
/// would otherwise hold us forever).
pub(crate) async fn one_connection(plan: &LoadPlan) -> ConnOutcome {
    let started = Instant::now();
    let mut outcome = ConnOutcome {
        result: Err(Failure {
            kind: ErrorKind::Other,
            detail: String::new(),
        }),
        bytes_received: 0,
        bytes_sent: 0,
    };
    let fail = |kind, detail: String| Err(Failure { kind, detail });

    let mut stream = match timeout(plan.timeout, TcpStream::connect(plan.addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            outcome.result = fail(ErrorKind::of(&error), format!("connect: {error}"));
            return outcome;
        }
        Err(_) => {
            let waited = humantime::format_duration(plan.timeout);
            outcome.result = fail(
                ErrorKind::Timeout,
                format!("connect: no answer in {waited}"),
            );
            return outcome;
        }
    };
    let connect = started.elapsed();

    let mut response = Vec::with_capacity(1024);
    let mut first_byte = None;
    let exchange = async {
        if !plan.send.is_empty() {
            stream.write_all(&plan.send).await?;
            outcome.bytes_sent = plan.send.len() as u64;
        }
        // `read_buf` appends to the vector, growing it as needed; `take` stops us one byte past
        // the limit, which is enough to know the response is too long.
        let mut limited = (&mut stream).take(MAX_RESPONSE as u64 + 1);
        loop {
            let read = limited.read_buf(&mut response).await?;
            if read == 0 {
                return Ok::<_, io::Error>(());
            }
            first_byte.get_or_insert_with(|| started.elapsed());
        }
    };
    let deadline = Instant::now() + plan.timeout;
    let exchanged = timeout_at(deadline, exchange).await;
    let total = started.elapsed();
    outcome.bytes_received = response.len() as u64;
    outcome.result = match exchanged {
        Err(_) => fail(
            ErrorKind::Timeout,
            format!(
                "no end-of-stream {} after connecting ({} bytes received)",
                humantime::format_duration(plan.timeout),
                response.len()
            ),
        ),
        Ok(Err(error)) => fail(ErrorKind::of(&error), format!("reading: {error}")),
        Ok(Ok(())) => match check_response(&response, plan.verify.as_deref()) {
            Ok(()) => Ok(Timings {
                connect,
                first_byte: first_byte.unwrap_or(total),
                total,
            }),
            Err(detail) => fail(ErrorKind::Invalid, detail),
        },
    };
    outcome
}
// ANCHOR_END: connection

/// Whether a whole response is acceptable: not empty, not too long, and, with `--verify`,
/// exactly one joke of the file.
pub(crate) fn check_response(response: &[u8], verify: Option<&JokeSet>) -> Result<(), String> {
    if response.is_empty() {
        return Err("the server closed without sending anything".into());
    }
    if response.len() > MAX_RESPONSE {
        return Err(format!("response longer than {MAX_RESPONSE} bytes"));
    }
    match verify {
        Some(jokes) if !jokes.contains(response) => Err(format!(
            "not one joke of {} ({} bytes starting {:?})",
            jokes.path().display(),
            response.len(),
            String::from_utf8_lossy(&response[..response.len().min(40)])
        )),
        _ => Ok(()),
    }
}

/// Open files kept free beyond the sockets: stdin/out/err, the runtime's epoll and wakeup
/// descriptors, the jokes file, the pipes to the servers `compare` starts.
const SPARE: u64 = 64;

/// Raises the open-files limit for `conns` connections as far as the hard limit allows, and
/// returns how many of them fit (`conns` when all do).
pub(crate) fn raise_open_files(conns: usize) -> usize {
    let needed = conns as u64 + SPARE;
    let limit = rlimit::increase_nofile_limit(needed)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(needed);
    usize::try_from(limit.saturating_sub(SPARE))
        .unwrap_or(usize::MAX)
        .min(conns)
}

/// The soft limit on open files is often 1024, and every connection is one. Raise it as far as
/// the hard limit allows, and say so plainly when that is not enough for `conns`.
pub(crate) fn ensure_open_files(conns: usize) {
    let needed = conns as u64 + SPARE;
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit < needed => eprintln!(
            "bench-client: warning: --conns {conns} needs about {needed} open files, but this \
             process may open only {limit}. Connections beyond that will fail (counted as \
             `other`). Raise the limit (`ulimit -n {needed}`, or the hard limit) or lower --conns."
        ),
        Ok(_) => {}
        Err(error) => eprintln!(
            "bench-client: warning: cannot raise the open files limit ({error}); --conns {conns} \
             needs about {needed}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_kinds() {
        let kind = |k| ErrorKind::of(&io::Error::from(k));
        assert_eq!(kind(io::ErrorKind::ConnectionRefused), ErrorKind::Refused);
        assert_eq!(kind(io::ErrorKind::ConnectionReset), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::BrokenPipe), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::TimedOut), ErrorKind::Timeout);
        assert_eq!(kind(io::ErrorKind::OutOfMemory), ErrorKind::Other);
    }

    #[test]
    fn empty_and_oversized_responses_are_invalid() {
        assert!(check_response(b"", None).is_err());
        assert!(check_response(&vec![b'a'; MAX_RESPONSE + 1], None).is_err());
        assert!(check_response(b"any joke\n", None).is_ok());
    }

    /// The round's clock must include every connection's: a wall time shorter than the slowest
    /// latency (seen before the clock moved in front of the barrier) would be a lie in the report.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_lasts_at_least_as_long_as_its_slowest_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let _ = socket.write_all(b"a joke\n").await;
                });
            }
        });
        let plan = Arc::new(LoadPlan {
            addr,
            conns: 20,
            timeout: Duration::from_secs(10),
            send: Arc::from(&b""[..]),
            verify: None,
        });
        for _ in 0..20 {
            let round = run_round(&plan, &ProgressBar::hidden()).await;
            let slowest = round
                .outcomes
                .iter()
                .map(|outcome| outcome.result.as_ref().expect("every joke arrives").total)
                .max()
                .unwrap();
            assert!(
                round.wall >= slowest,
                "wall {:?} is shorter than the slowest connection {slowest:?}",
                round.wall
            );
        }
        server.abort();
    }

    #[test]
    fn verify_accepts_only_whole_jokes() {
        let jokes = JokeSet::from_text("t.txt", "one\n---\ntwo\nlines\n").unwrap();
        assert!(check_response(b"one\n", Some(&jokes)).is_ok());
        assert!(check_response(b"two\nlines\n", Some(&jokes)).is_ok());
        assert!(check_response(b"two\n", Some(&jokes)).is_err());
        assert!(check_response(b"one\ntwo\nlines\n", Some(&jokes)).is_err());
        assert!(check_response(b"one", Some(&jokes)).is_err());
    }
}
