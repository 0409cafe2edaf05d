//! A steady load of polite clients, each connecting again as soon as its joke is in, with a
//! record of every connection: when it started and how it ended. For the tests where servers
//! come and go under load (rolling restarts, a replica killed behind a balancer).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::client::{CLIENT_TIMEOUT, connect, within};

/// How one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A whole joke of the file, then a clean end.
    Whole,
    /// connect() was refused: nobody was listening.
    Refused,
    /// Established, then reset before a whole joke arrived.
    Reset,
    /// A clean end with nothing before it.
    Empty,
    /// Bytes that are not one joke of the file, then a clean end: a torn or foreign joke.
    Torn,
    /// Anything else (a timeout, another error).
    Other,
}

/// One connection of a load.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub started: Instant,
    pub took: Duration,
    pub outcome: Outcome,
}

/// The outcomes of a load, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub whole: u64,
    pub refused: u64,
    pub reset: u64,
    pub empty: u64,
    pub torn: u64,
    pub other: u64,
}

impl Outcomes {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Outcomes {
        let mut all = Outcomes::default();
        for record in records {
            *match record.outcome {
                Outcome::Whole => &mut all.whole,
                Outcome::Refused => &mut all.refused,
                Outcome::Reset => &mut all.reset,
                Outcome::Empty => &mut all.empty,
                Outcome::Torn => &mut all.torn,
                Outcome::Other => &mut all.other,
            } += 1;
        }
        all
    }

    pub fn failed(&self) -> u64 {
        self.refused + self.reset + self.empty + self.torn + self.other
    }
}

/// One connection to `addr`.
pub async fn one_connection(addr: SocketAddr, jokes: &HashSet<Vec<u8>>) -> Outcome {
    let mut socket = match connect(addr).await {
        Ok(socket) => socket,
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => return Outcome::Refused,
        Err(_) => return Outcome::Other,
    };
    let mut bytes = Vec::new();
    match within(CLIENT_TIMEOUT, "reading", socket.read_to_end(&mut bytes)).await {
        Ok(_) if jokes.contains(&bytes) => Outcome::Whole,
        Ok(_) if bytes.is_empty() => Outcome::Empty,
        Ok(_) => Outcome::Torn,
        Err(error) if error.kind() == ErrorKind::ConnectionReset => Outcome::Reset,
        Err(_) => Outcome::Other,
    }
}

/// `clients` loops, each connecting to `addr` again as soon as its last connection ended,
/// until [`stop`](Load::stop).
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Record>>>,
}

impl Load {
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        addr: SocketAddr,
        jokes: Arc<HashSet<Vec<u8>>>,
        clients: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let (jokes, stop) = (Arc::clone(&jokes), Arc::clone(&stop));
                runtime.spawn(async move {
                    let mut records = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        let outcome = one_connection(addr, &jokes).await;
                        records.push(Record {
                            started,
                            took: started.elapsed(),
                            outcome,
                        });
                    }
                    records
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the clients (each finishes its connection in flight) and returns every record.
    pub fn stop(self, runtime: &tokio::runtime::Runtime) -> Vec<Record> {
        self.stop.store(true, Ordering::SeqCst);
        runtime.block_on(async {
            let mut all = Vec::new();
            for task in self.tasks {
                all.extend(task.await.expect("a client loop does not panic"));
            }
            all.sort_by_key(|record| record.started);
            all
        })
    }
}
