//! Clients: polite ones that read a joke to the end, talkative ones, rude ones that reset, and
//! crowds. Every network operation has a timeout, so a broken server fails a test instead of
//! hanging it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use joke_server::{Act, JokeToServe, ServeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How long one client operation (connect, or read to the end) may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A runtime for the clients of a test (two worker threads, like the machine's two cores).
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the clients' runtime")
}

/// Runs `future` to completion, failing with `TimedOut` after `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: no answer within {limit:?}"),
        )),
    }
}

/// Connects to `addr`.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    within(CLIENT_TIMEOUT, "connecting", TcpStream::connect(addr)).await
}

/// Reads from `socket` until the server closes it.
pub async fn read_to_end(socket: &mut TcpStream) -> io::Result<Vec<u8>> {
    within(CLIENT_TIMEOUT, "reading the joke", async {
        let mut received = Vec::new();
        socket.read_to_end(&mut received).await?;
        Ok(received)
    })
    .await
}

/// Connects, and reads everything the server sends until it closes: one joke, if all is well.
pub async fn fetch_joke(addr: SocketAddr) -> io::Result<Vec<u8>> {
    let mut socket = connect(addr).await?;
    read_to_end(&mut socket).await
}

/// Like [`fetch_joke`], but sends `bytes` first, as a client that misunderstood the protocol
/// would. The server must still deliver the whole joke (and not reset the connection).
pub async fn fetch_joke_after_sending(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut socket = connect(addr).await?;
    within(CLIENT_TIMEOUT, "sending", socket.write_all(bytes)).await?;
    read_to_end(&mut socket).await
}

/// Connects, reads at most `read_first` bytes, then closes with a reset (`SO_LINGER` 0):
/// a client that goes away mid-joke, as abruptly as TCP allows.
pub async fn reset_after_reading(addr: SocketAddr, read_first: usize) -> io::Result<()> {
    let mut socket = connect(addr).await?;
    if read_first > 0 {
        let mut buffer = vec![0; read_first];
        within(CLIENT_TIMEOUT, "reading", socket.read(&mut buffer)).await?;
    }
    socket.set_zero_linger()?;
    drop(socket);
    Ok(())
}

/// `count` clients fetching a joke each, at most `in_flight` at a time.
pub async fn fetch_concurrently(
    addr: SocketAddr,
    count: usize,
    in_flight: usize,
) -> Vec<io::Result<Vec<u8>>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut clients = JoinSet::new();
    for n in 0..count {
        let limit = Arc::clone(&limit);
        clients.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            (n, fetch_joke(addr).await)
        });
    }
    collect_in_order(clients, count).await
}

/// Opens `count` connections and holds them all open at once, then reads a joke from each.
///
/// Every connect completes before the first read starts, so the server really has `count`
/// connections at the same moment: the accept backlog is what gets them all in.
pub async fn open_all_then_read(addr: SocketAddr, count: usize) -> Vec<io::Result<Vec<u8>>> {
    let mut connecting = JoinSet::new();
    for n in 0..count {
        connecting.spawn(async move { (n, connect(addr).await) });
    }
    let sockets = collect_in_order(connecting, count).await;
    let mut reading = JoinSet::new();
    for (n, socket) in sockets.into_iter().enumerate() {
        reading.spawn(async move {
            let received = match socket {
                Ok(mut socket) => read_to_end(&mut socket).await,
                Err(error) => Err(error),
            };
            (n, received)
        });
    }
    collect_in_order(reading, count).await
}

async fn collect_in_order<T: 'static>(
    mut tasks: JoinSet<(usize, io::Result<T>)>,
    count: usize,
) -> Vec<io::Result<T>> {
    let mut results: Vec<Option<io::Result<T>>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((n, result)) => results[n] = Some(result),
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    results
        .into_iter()
        .map(|result| result.expect("every client reports"))
        .collect()
}

/// Raises this process's open-files limit to at least `needed`, or panics saying why a test
/// cannot run here. Each connection costs a descriptor on each side, and the usual soft limit
/// (1024) is far below a 2000-connection burst against an in-process server.
pub fn raise_open_files_limit(needed: u64) {
    let reached = rlimit::increase_nofile_limit(needed.max(1)).unwrap_or(0);
    assert!(
        reached >= needed,
        "this test needs {needed} open files but the limit can only be raised to {reached} \
         (see `ulimit -Hn`)"
    );
}

/// Serves `joke` with `act` over a real loopback connection, outside any server: what the act
/// returned, and every byte the client received before the act's side was closed.
pub async fn serve_over_socket_pair<A: Act>(
    act: &A,
    joke: JokeToServe,
) -> (Result<(), ServeError>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback listener");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let client = tokio::spawn(fetch_joke(addr));
    let (mut socket, _) = within(CLIENT_TIMEOUT, "accepting", listener.accept())
        .await
        .expect("accepting the test client");
    let served = match tokio::time::timeout(CLIENT_TIMEOUT, act.serve_joke(joke, &mut socket)).await
    {
        Ok(served) => served,
        Err(_) => panic!("serve_joke did not finish within {CLIENT_TIMEOUT:?}"),
    };
    let _ = socket.shutdown().await;
    drop(socket);
    let received = client
        .await
        .expect("the client task does not panic")
        .expect("the client reads until the server closes");
    (served, received)
}
