//! `--max-per-address`: at most N connections at once from one client address.
//!
//! `--max-connections` is global, so without this one address can hold every slot (10,000
//! idle connections, and everyone else waits in the backlog). The limit is off by default:
//! on one machine every client (`bench-client --conns 1000`, `soak`'s bursts) comes from
//! 127.0.0.1, and behind a balancer every client comes from the balancer's address unless the
//! PROXY protocol tells us the real one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The connections open per client, and the limit.
#[derive(Debug)]
pub(crate) struct PerAddress {
    limit: usize,
    /// Only keys with at least one connection are kept, so the map never holds more entries
    /// than there are connections open (at most `--max-connections`).
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Refusals are logged once in a while, not once each.
    quiet: Quiet,
}

/// A problem that may come with every connection is logged at most once every [`Quiet::EVERY`];
/// the statistics count every occurrence.
#[derive(Debug, Default)]
pub(crate) struct Quiet {
    last: Mutex<Option<Instant>>,
}

impl Quiet {
    pub(crate) const EVERY: Duration = Duration::from_secs(10);

    /// Whether it is time to log again (and if so, the clock starts over).
    pub(crate) fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= Self::EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// One connection's place in its address's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// What one client is counted under: an IPv4 address as it is, an IPv6 address by its /64
/// (one subscriber usually has a whole /64, and can pick any address in it), an IPv4 address
/// mapped into IPv6 (`::ffff:192.0.2.1`, from a dual-stack socket) as the IPv4 address.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

impl PerAddress {
    pub(crate) fn new(limit: usize) -> Self {
        PerAddress {
            limit,
            open: Arc::default(),
            quiet: Quiet::default(),
        }
    }

    /// A slot for one more connection from `ip`, or `None` when its address is at the limit.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            key,
            open: Arc::clone(&self.open),
        })
    }

    /// Logs a refusal, at most once every [`Quiet::EVERY`] (the count is in the statistics).
    pub(crate) fn report_refusal(&self, ip: IpAddr) {
        if self.quiet.due() {
            tracing::warn!(
                "{} has {} connections open, the --max-per-address limit: refusing more \
                 (counted in per_address_refusals; this is logged at most every {:?})",
                client_key(ip),
                self.limit,
                Quiet::EVERY
            );
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn slots_are_given_back_and_empty_addresses_forgotten() {
        let limits = PerAddress::new(2);
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let first = limits.admit(one).unwrap();
        let second = limits.admit(one).unwrap();
        assert!(limits.admit(one).is_none(), "a third from one address");
        let other = limits
            .admit(two)
            .expect("another address has its own count");
        drop(first);
        let third = limits.admit(one).expect("a slot was given back");
        drop((second, third, other));
        assert!(
            limits.open.lock().unwrap().is_empty(),
            "no entry stays behind"
        );
    }
}
