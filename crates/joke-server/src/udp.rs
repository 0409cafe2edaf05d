//! RFC 865 over UDP (`--udp`), without becoming a weapon.
//!
//! Over UDP the source address of a datagram is whatever the sender wrote in it. Anyone can
//! send us a one-byte datagram "from" a victim's address, and we would send the victim a joke:
//! a reflection amplifier (US-CERT's alert TA14-017A lists the quote-of-the-day service, with
//! a bandwidth amplification factor of about 140). So the answerer:
//!
//! - sends only jokes of at most [`MAX_REPLY`] bytes (RFC 865: "should be less than 512
//!   characters"), never a 60 KB one for a 1-byte request;
//! - answers each source (an IPv4 address, or an IPv6 /64) at most `--udp-rate` times a second
//!   after a burst of `--udp-burst` (a token bucket per source, from the `governor` crate);
//! - answers all sources together at most `--udp-global-rate` times a second, so that forged
//!   datagrams from many addresses buy no more than that;
//! - keeps at most [`MAX_SOURCES`] sources in its table, however many (forged) ones it sees;
//! - counts everything it drops.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::per_address::client_key;
use crate::{Jokes, Stats};

/// The longest joke sent over UDP, in bytes.
pub const MAX_REPLY: usize = joke_index::RFC865_LIMIT;

/// The most sources the per-source limiter remembers at once.
pub const MAX_SOURCES: usize = 65_536;

/// The UDP answerer's rates ([`Config::udp_limits`](crate::Config::udp_limits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpLimits {
    /// Replies per second to one source, after its burst (`--udp-rate`).
    pub per_source_rate: NonZeroU32,
    /// Replies one source may get at once (`--udp-burst`).
    pub per_source_burst: NonZeroU32,
    /// Replies per second to all sources together (`--udp-global-rate`).
    pub global_rate: NonZeroU32,
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its source used up its bucket.
    PerSource,
    /// Every source together used up the global budget.
    Global,
    /// The table of sources is full of sources seen a moment ago (a flood of forged ones).
    SourcesFull,
}

/// The two token buckets, and the bound on the first one's memory.
#[derive(Debug)]
pub(crate) struct Limiter {
    per_source: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
    max_sources: usize,
    /// When the table of sources was last pruned because it was full: pruning walks the whole
    /// table, so under a flood it is done at most every [`Self::PRUNE_EVERY`].
    last_prune: Option<Instant>,
}

impl Limiter {
    const PRUNE_EVERY: Duration = Duration::from_millis(100);

    pub(crate) fn new(limits: UdpLimits, max_sources: usize) -> Self {
        let per_source =
            Quota::per_second(limits.per_source_rate).allow_burst(limits.per_source_burst);
        Limiter {
            per_source: RateLimiter::keyed(per_source),
            // The global budget's burst is one second's worth.
            global: RateLimiter::direct(Quota::per_second(limits.global_rate)),
            max_sources,
            last_prune: None,
        }
    }

    /// Whether a datagram from `source` may be answered now.
    pub(crate) fn check(&mut self, source: IpAddr) -> Result<(), Refusal> {
        if self.per_source.len() >= self.max_sources {
            let due = self
                .last_prune
                .is_none_or(|at| at.elapsed() >= Self::PRUNE_EVERY);
            if due {
                // Forgets every source whose bucket has filled up again: nothing is lost, a
                // forgotten source starts with a full bucket, which is what it had.
                self.per_source.retain_recent();
                self.per_source.shrink_to_fit();
                self.last_prune = Some(Instant::now());
            }
            if self.per_source.len() >= self.max_sources {
                return Err(Refusal::SourcesFull);
            }
        }
        // Per source first, so that one source's flood does not use up everyone's budget.
        self.per_source
            .check_key(&client_key(source))
            .map_err(|_| Refusal::PerSource)?;
        self.global.check().map_err(|_| Refusal::Global)
    }

    /// How many sources the table holds now.
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.per_source.len()
    }
}

/// Answers datagrams until `stopping` is cancelled.
// ANCHOR: answer_udp
pub(crate) async fn answer(
    udp: UdpSocket,
    limits: UdpLimits,
    jokes: &Jokes,
    stats: &Stats,
    stopping: CancellationToken,
) {
    let mut limiter = Limiter::new(limits, MAX_SOURCES);
    // A request's content does not matter; a longer one is cut to this and counted as read.
    let mut request = [0u8; 512];
    loop {
        let (received, peer) = tokio::select! {
            () = stopping.cancelled() => return,
            received = udp.recv_from(&mut request) => match received {
                Ok(received) => received,
                Err(error) => {
                    tracing::debug!("udp: {error}");
                    continue;
                }
            },
        };
        stats.udp_received(received);
        if let Err(refusal) = limiter.check(peer.ip()) {
            stats.udp_refused(refusal);
            continue;
        }
        let Some(text) = read_short_joke(jokes, stats).await else {
            continue;
        };
        send(&udp, &text, peer, stats).await;
    }
}
// ANCHOR_END: answer_udp

/// A joke of at most [`MAX_REPLY`] bytes, read on the blocking pool; `None` (counted) when the
/// read failed, or the joke picked turned out longer in its served form.
async fn read_short_joke(jokes: &Jokes, stats: &Stats) -> Option<String> {
    let joke = jokes.pick_short(MAX_REPLY as u64)?;
    match tokio::task::spawn_blocking(move || joke.read_blocking()).await {
        Ok(Ok(text)) if text.len() <= MAX_REPLY => Some(text),
        Ok(Ok(_)) => {
            stats.udp_too_long();
            None
        }
        Ok(Err(error)) => {
            stats.read_failed();
            tracing::debug!("udp: {error}");
            None
        }
        Err(_) => None,
    }
}

async fn send(udp: &UdpSocket, text: &str, peer: SocketAddr, stats: &Stats) {
    match udp.send_to(text.as_bytes(), peer).await {
        Ok(sent) => {
            stats.served();
            stats.udp_replied(sent);
        }
        Err(error) => tracing::debug!("udp: sending to {peer}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, global: u32) -> UdpLimits {
        UdpLimits {
            per_source_rate: NonZeroU32::new(rate).unwrap(),
            per_source_burst: NonZeroU32::new(burst).unwrap(),
            global_rate: NonZeroU32::new(global).unwrap(),
        }
    }

    #[test]
    fn one_source_gets_its_burst_then_waits_while_another_is_answered() {
        let mut limiter = Limiter::new(limits(1, 3, 1000), 100);
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let answered = (0..100).filter(|_| limiter.check(one).is_ok()).count();
        assert_eq!(
            answered, 3,
            "the burst, then nothing within the same moment"
        );
        assert_eq!(limiter.check(one), Err(Refusal::PerSource));
        assert_eq!(limiter.check(two), Ok(()));
    }

    #[test]
    fn the_global_budget_caps_many_sources_together() {
        let mut limiter = Limiter::new(limits(1, 1, 10), 10_000);
        let answered = (0..1000u32)
            .filter(|n| limiter.check(IpAddr::from(n.to_be_bytes())).is_ok())
            .count();
        assert_eq!(answered, 10);
    }

    /// A flood of forged sources fills the table up to its bound and no further.
    #[test]
    fn the_table_of_sources_stays_bounded() {
        let mut limiter = Limiter::new(limits(1, 1, 1_000_000), 1_000);
        let mut full = 0;
        for n in 0..100_000u32 {
            if limiter.check(IpAddr::from(n.to_be_bytes())) == Err(Refusal::SourcesFull) {
                full += 1;
            }
            assert!(limiter.sources() <= 1_000, "{} sources", limiter.sources());
        }
        assert!(full > 0, "the bound was reached");
    }
}
