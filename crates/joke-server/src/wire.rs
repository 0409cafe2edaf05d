//! The contract between a joke server and whoever runs it: two lines of text.
//!
//! A server tells the world two things, and tools (`bench-client compare`, the tests that start
//! real binaries, the `supervisor` module) rely on both. This module is the only place that writes
//! them *and* the only place that reads them, so the two sides cannot drift apart.
//!
//! # The ready line (stderr)
//!
//! Once the listener is bound, the server logs `listening on ADDR` at the `info` level, where
//! `ADDR` is the bound address (`127.0.0.1:40123`, `[::1]:8080`). It goes through `tracing`, so
//! on stderr it carries the subscriber's prefix (time, level, target) and, at a terminal, ANSI
//! colour codes: [`parse_ready_line`] strips the colours and looks for the words wherever they
//! are in the line. [`ready_line`] writes it.
//!
//! # The statistics line (stdout)
//!
//! At a clean exit the server prints one JSON object on one line of stdout, and nothing else
//! ever goes to stdout. [`stats_line`] writes it, [`parse_stats_line`] reads one line and
//! [`parse_stats_output`] reads a whole captured stdout (its last non-empty line). The fields:
//!
//! | field                    | type  | meaning                                                                  |
//! |--------------------------|-------|--------------------------------------------------------------------------|
//! | `version`                | u32   | the format of this object, [`STATS_VERSION`] (2); a reader refuses others |
//! | `served`                 | u64   | connections (and UDP datagrams) that received a whole joke               |
//! | `read_failures`          | u64   | jokes not served because the file could not be read; nothing was written |
//! | `write_failures`         | u64   | connections whose client went away or reset while its joke was written   |
//! | `write_timeouts`         | u64   | connections whose client took no byte for `--write-timeout` (reset)      |
//! | `joke_timeouts`          | u64   | jokes not ready within `--joke-timeout`, client waits not counted (reset) |
//! | `per_address_refusals`   | u64   | connections reset unserved: their address was at `--max-per-address`    |
//! | `proxied`                | u64   | connections whose PROXY header (`--proxy-protocol`) named a client       |
//! | `health_checks`          | u64   | PROXY LOCAL/UNKNOWN connections: the balancer's checks, not clients      |
//! | `proxy_header_refusals`  | u64   | connections reset unserved: no valid PROXY header in time                |
//! | `proxy_closed_early`     | u64   | connections closed before a whole PROXY header arrived                   |
//! | `accept_errors`          | u64   | failed `accept` calls (EMFILE when out of file descriptors, say)         |
//! | `polls`                  | u64   | polls of connection tasks                                                |
//! | `slow_polls`             | u64   | polls longer than `slow_poll_threshold_us`: a worker thread was blocked  |
//! | `slow_poll_threshold_us` | u64   | the threshold of a slow poll, in microseconds ([`crate::SLOW_POLL`])     |
//! | `longest_poll_us`        | u64   | the longest single poll of a connection task, in microseconds            |
//! | `mean_poll_us`           | f64   | the mean duration of a poll of a connection task, in microseconds        |
//! | `runtime_flavor`         | str   | `multi-thread` or `current-thread` (`--flavor`)                          |
//! | `workers`                | u64   | the runtime's worker threads (1 on current-thread)                       |
//! | `mean_scheduled_us`      | f64   | mean time from a connection task's wake-up to its poll, µs: its wait     |
//! | `mean_first_poll_delay_us` | f64 | mean time from a connection task's spawn to its first poll, µs           |
//! | `heartbeat_ticks`        | u64   | heartbeat ticks recorded: one per ms while a connection was open         |
//! | `heartbeat_p50_us`       | u64   | median lateness of a tick against its schedule, µs (heartbeat.rs)        |
//! | `heartbeat_p99_us`       | u64   | 99th percentile of that lateness, µs: the delay tasks suffered           |
//! | `heartbeat_max_us`       | u64   | the latest tick, µs late                                                 |
//! | `worker_busy_ratio`      | f64   | workers' busy time ÷ (workers × running time), 0 to 1                    |
//! | `udp_received`           | u64   | UDP datagrams received (`--udp`)                                         |
//! | `udp_bytes_in`           | u64   | their bytes                                                              |
//! | `udp_replies`            | u64   | datagrams answered with a joke (also in `served`)                        |
//! | `udp_bytes_out`          | u64   | their bytes; out ÷ in is the amplification a forger could buy            |
//! | `udp_per_source_limited` | u64   | datagrams unanswered: their source was over `--udp-rate`/`--udp-burst`   |
//! | `udp_global_limited`     | u64   | datagrams unanswered: all sources were over `--udp-global-rate`          |
//! | `udp_sources_full`       | u64   | datagrams unanswered: the table of sources was full (a forged flood)     |
//! | `udp_too_long`           | u64   | datagrams unanswered: the joke picked was over 512 bytes once served     |
//!
//! # Live statistics (stderr)
//!
//! While it runs, a server logs the same JSON object at the `info` level on stderr when it
//! receives SIGUSR1, and every `--stats-every`: the line's message is `statistics now: ` and the
//! object. [`live_stats_line`] writes it, [`parse_live_stats_line`] reads it (prefix and colours
//! allowed, as for the ready line). Stdout keeps its one line, at exit.
//!
//! The counters are those of [`StatsSummary`], whose field documentation says the same. A new
//! field may be added within version 1 (readers ignore fields they do not know, and take a
//! field a server does not print as zero); renaming or removing one, or changing its meaning,
//! takes a new version. The heartbeat's percentiles cover every tick recorded since start-up,
//! served time only (see `heartbeat.rs` for why), and `worker_busy_ratio` the whole running
//! time. Version 2 changed the meaning of `write_timeouts` (it was one deadline over reading,
//! reloading and writing; it is now the write *progress* timeout) and added `joke_timeouts`
//! for the deadline of getting the joke, `per_address_refusals`, the PROXY protocol's four counters and the `udp_` fields.
//!
//! # Dying with the parent (environment)
//!
//! A server started with [`STOP_ON_STDIN_EOF`]`=1` shuts down, as on SIGTERM, when its stdin
//! reaches end-of-file: the supervisor holds the other end, and the kernel closes it when the
//! supervisor dies.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::StatsSummary;

/// The environment variable that asks a server to stop when its stdin reaches end-of-file, as on
/// SIGTERM. The supervisor (feature `supervisor`) sets it to `1` and keeps the write end of the server's stdin,
/// so the server follows its supervisor's death, however it dies (see the supervisor's docs).
pub const STOP_ON_STDIN_EOF: &str = "JOKE_SERVER_STOP_ON_STDIN_EOF";

/// The version of the statistics line this crate writes and reads.
pub const STATS_VERSION: u32 = 2;

/// The words before the address in the ready line.
const READY_WORDS: &str = "listening on ";

/// The message of the ready line for a server bound to `addr`: `listening on ADDR`.
pub fn ready_line(addr: SocketAddr) -> String {
    format!("{READY_WORDS}{addr}")
}

/// The address in a ready line, or `None` when `line` is not one.
///
/// The line may carry a `tracing` prefix and ANSI colour codes, as a server's stderr does:
/// `2026-01-01T00:00:00Z  INFO joke_server::entry: listening on 127.0.0.1:40123`.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let (_, after) = line.split_once(READY_WORDS)?;
    after.split_whitespace().next()?.parse().ok()
}

/// `text` without its ANSI escape sequences (the colours a log line may carry).
///
/// A control sequence is `ESC [`, parameters and intermediates, and one final byte in `@..=~`;
/// any other escape is `ESC` and one more character.
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains('\u{1b}') {
        return Cow::Borrowed(text);
    }
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            plain.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    Cow::Owned(plain)
}

/// Why a statistics line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Stdout held no line at all (the server died before printing its statistics).
    #[error("it printed no statistics on stdout")]
    NoStatistics,
    /// The line is not a JSON object of the expected shape.
    #[error("its statistics line is not the expected JSON ({source}): {line:?}")]
    BadJson {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// The object has no `version` field (a server older than the versioned format).
    #[error("its statistics line has no \"version\" field (expected {STATS_VERSION}): {line:?}")]
    NoVersion { line: String },
    /// The object is of another version than the one this reader knows.
    #[error("its statistics line is version {found}; this reader knows version {STATS_VERSION}")]
    WrongVersion { found: serde_json::Value },
}

/// The statistics line for `summary`: one JSON object, with `version` first.
pub fn stats_line(summary: &StatsSummary) -> String {
    #[derive(serde::Serialize)]
    struct Versioned<'a> {
        version: u32,
        #[serde(flatten)]
        summary: &'a StatsSummary,
    }
    serde_json::to_string(&Versioned {
        version: STATS_VERSION,
        summary,
    })
    .expect("a struct of numbers always serialises")
}

/// Reads one statistics line, checking its version.
pub fn parse_stats_line(line: &str) -> Result<StatsSummary, WireError> {
    let bad_json = |source| WireError::BadJson {
        line: line.to_owned(),
        source,
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(bad_json)?;
    match object.get("version") {
        None => {
            return Err(WireError::NoVersion {
                line: line.to_owned(),
            });
        }
        Some(version) if version.as_u64() != Some(u64::from(STATS_VERSION)) => {
            return Err(WireError::WrongVersion {
                found: version.clone(),
            });
        }
        Some(_) => {}
    }
    serde_json::from_value(serde_json::Value::Object(object)).map_err(bad_json)
}

/// The words before the object in a live statistics line.
const LIVE_WORDS: &str = "statistics now: ";

/// The message of a live statistics line: `statistics now: ` and [`stats_line`]'s object.
pub fn live_stats_line(summary: &StatsSummary) -> String {
    format!("{LIVE_WORDS}{}", stats_line(summary))
}

/// The statistics in a live statistics line (a `tracing` prefix and colours allowed), or
/// `None` when `line` is not one.
pub fn parse_live_stats_line(line: &str) -> Option<Result<StatsSummary, WireError>> {
    let line = strip_ansi(line);
    let (_, object) = line.split_once(LIVE_WORDS)?;
    Some(parse_stats_line(object.trim()))
}

/// Reads the statistics from a server's whole stdout: its last non-empty line.
pub fn parse_stats_output(stdout: &str) -> Result<StatsSummary, WireError> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .ok_or(WireError::NoStatistics)?;
    parse_stats_line(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_statistics_line_round_trips() {
        let summary = StatsSummary {
            served: 7,
            ..StatsSummary::default()
        };
        let logged = format!(
            "2026-01-01T00:00:00Z  INFO joke_server::shutdown: {}",
            live_stats_line(&summary)
        );
        assert_eq!(parse_live_stats_line(&logged).unwrap().unwrap(), summary);
        assert!(parse_live_stats_line("listening on 127.0.0.1:1").is_none());
    }

    #[test]
    fn the_ready_line_round_trips() {
        for addr in ["127.0.0.1:40123", "[::1]:8080"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(parse_ready_line(&ready_line(addr)), Some(addr));
        }
    }

    #[test]
    fn finds_the_address_in_plain_and_coloured_logs() {
        let plain =
            "2025-06-01T10:00:00.123Z  INFO joke_server::entry: listening on 127.0.0.1:40123";
        assert_eq!(
            parse_ready_line(plain),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        let coloured = "\u{1b}[2m2025-06-01\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mjoke_server::entry\u{1b}[0m\u{1b}[2m:\u{1b}[0m listening on [::1]:8080";
        assert_eq!(
            parse_ready_line(coloured),
            Some("[::1]:8080".parse().unwrap())
        );
        // Colours right against the address must not stick to it.
        let tight = "\u{1b}[32mlistening on 127.0.0.1:1\u{1b}[0m";
        assert_eq!(
            parse_ready_line(tight),
            Some("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(parse_ready_line("INFO act1-naive serving 358 jokes"), None);
        assert_eq!(parse_ready_line("listening on nowhere"), None);
        assert_eq!(parse_ready_line("listening on "), None);
    }

    #[test]
    fn strips_escape_sequences_only() {
        assert_eq!(strip_ansi("\u{1b}[1;31mred\u{1b}[0m plain"), "red plain");
        assert_eq!(strip_ansi("no escapes [here]"), "no escapes [here]");
        assert!(matches!(strip_ansi("plain"), Cow::Borrowed("plain")));
        // A lone escape at the end, and a two-character escape, leave nothing behind.
        assert_eq!(strip_ansi("a\u{1b}"), "a");
        assert_eq!(strip_ansi("a\u{1b}cb"), "ab");
    }

    fn some_summary() -> StatsSummary {
        StatsSummary {
            served: 7,
            read_failures: 1,
            write_failures: 2,
            write_timeouts: 3,
            joke_timeouts: 6,
            per_address_refusals: 8,
            accept_errors: 4,
            polls: 100,
            slow_polls: 5,
            slow_poll_threshold_us: 1000,
            longest_poll_us: 12_345,
            mean_poll_us: 2.5,
            runtime_flavor: "current-thread".into(),
            workers: 1,
            mean_scheduled_us: 40.5,
            mean_first_poll_delay_us: 80.25,
            heartbeat_ticks: 900,
            heartbeat_p50_us: 600,
            heartbeat_p99_us: 21_000,
            heartbeat_max_us: 24_000,
            worker_busy_ratio: 0.5,
            udp_received: 10_000,
            udp_bytes_in: 10_000,
            udp_replies: 11,
            udp_bytes_out: 1_100,
            udp_per_source_limited: 9_989,
            ..StatsSummary::default()
        }
    }

    #[test]
    fn the_statistics_line_round_trips_and_is_versioned() {
        let summary = some_summary();
        let line = stats_line(&summary);
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.starts_with(r#"{"version":2,"served":7,"#), "{line}");
        assert_eq!(parse_stats_line(&line).unwrap(), summary);
        let stdout = format!("\n{line}\n\n");
        assert_eq!(parse_stats_output(&stdout).unwrap(), summary);
    }

    #[test]
    fn every_documented_field_is_printed() {
        let line = stats_line(&some_summary());
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&line).unwrap();
        let table = include_str!("wire.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `"))
            .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_owned()))
            .collect::<Vec<_>>();
        let printed = object.keys().cloned().collect::<Vec<_>>();
        let mut sorted_table = table.clone();
        sorted_table.sort();
        let mut sorted_printed = printed;
        sorted_printed.sort();
        assert_eq!(
            sorted_table, sorted_printed,
            "the field table and the JSON differ"
        );
    }

    #[test]
    fn a_wrong_version_or_bad_json_is_a_clear_error() {
        let unversioned = serde_json::to_string(&some_summary()).unwrap();
        let error = parse_stats_line(&unversioned).unwrap_err();
        assert!(matches!(error, WireError::NoVersion { .. }), "{error}");
        assert!(
            error.to_string().contains("no \"version\" field"),
            "{error}"
        );

        let future = stats_line(&some_summary()).replace(r#""version":2"#, r#""version":3"#);
        let error = parse_stats_line(&future).unwrap_err();
        assert!(matches!(error, WireError::WrongVersion { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            "its statistics line is version 3; this reader knows version 2"
        );

        let error = parse_stats_line("not json").unwrap_err();
        assert!(matches!(error, WireError::BadJson { .. }), "{error}");
        assert!(error.to_string().contains("\"not json\""), "{error}");

        let error = parse_stats_line(r#"{"version":2,"served":"many"}"#).unwrap_err();
        assert!(matches!(error, WireError::BadJson { .. }), "{error}");

        assert!(matches!(
            parse_stats_output(" \n\n").unwrap_err(),
            WireError::NoStatistics
        ));
    }
}
