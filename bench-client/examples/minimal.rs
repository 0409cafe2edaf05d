//! The smallest honest client, as a yardstick for bench-client's own overhead: `conns`
//! connections at once, each read to its end, one wall time per round. No timeouts, no
//! verification, no percentiles.
//!
//! ```text
//! cargo run --release -p finale-cached -- --addr 127.0.0.1:12345
//! cargo run --release -p bench-client --example minimal -- 127.0.0.1:12345 1000 10
//! ```
use std::time::Instant;
use tokio::{io::AsyncReadExt, net::TcpStream, task::JoinSet};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().cloned().unwrap_or("127.0.0.1:12345".into());
    let arg = |i: usize, default| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    let (conns, rounds): (usize, usize) = (arg(1, 1000), arg(2, 1));
    for round in 1..=rounds {
        let (started, mut tasks) = (Instant::now(), JoinSet::new());
        for _ in 0..conns {
            let addr = addr.clone();
            tasks.spawn(async move {
                let mut joke = Vec::new();
                TcpStream::connect(addr).await?.read_to_end(&mut joke).await
            });
        }
        let results = tasks.join_all().await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let jokes = results
            .iter()
            .filter(|r| matches!(r, Ok(n) if *n > 0))
            .count();
        println!("round {round}: {jokes} of {conns} jokes in {ms:.3} ms");
    }
}
