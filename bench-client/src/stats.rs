//! The arithmetic of a load run: from one outcome per connection to the numbers we print.
//!
//! Latencies go into an [`hdrhistogram`] in nanoseconds with three significant digits: the
//! percentiles it reports are then within 0.1% of the true ones, whatever the spread, in a fixed
//! amount of memory. Beside it we keep the exact minimum, maximum and sum, because a reader who
//! sees "fastest 0.041 ms" should see the fastest connection, not the lower edge of its bucket.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::{ConnOutcome, ErrorKind, Round};

/// The largest latency the histograms hold: an hour, far beyond any `--timeout`. Longer values
/// are clamped to it rather than lost.
const HIGHEST_TRACKABLE_NS: u64 = 3_600 * 1_000_000_000;

/// Significant decimal digits kept by the histograms (3 = within 0.1%).
const SIGNIFICANT_DIGITS: u8 = 3;

/// Number of bars in the latency histogram of the text output (and of the JSON).
pub(crate) const HISTOGRAM_BUCKETS: usize = 10;

/// One kind of duration, over many connections: exact extremes and mean, percentiles from an
/// HDR histogram.
#[derive(Debug, Clone)]
pub(crate) struct DurationTally {
    histogram: Histogram<u64>,
    min_ns: u64,
    max_ns: u64,
    sum_ns: u128,
}

impl Default for DurationTally {
    fn default() -> Self {
        DurationTally {
            histogram: Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_NS, SIGNIFICANT_DIGITS)
                .expect("the bounds are constants that hdrhistogram accepts"),
            min_ns: u64::MAX,
            max_ns: 0,
            sum_ns: 0,
        }
    }
}

impl DurationTally {
    /// Adds one duration.
    pub(crate) fn record(&mut self, duration: Duration) {
        // A zero would be below the histogram's lowest value (1 ns), and a duration past an
        // hour above its highest: both are clamped, never dropped.
        let ns = u64::try_from(duration.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, HIGHEST_TRACKABLE_NS);
        self.histogram.saturating_record(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += u128::from(ns);
    }

    /// How many durations were added.
    pub(crate) fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The summary in milliseconds, or `None` when nothing was recorded.
    pub(crate) fn percentiles(&self) -> Option<Percentiles> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        // The histogram answers with the highest value of the bucket a quantile falls in, which
        // can be a hair above the true maximum (or below the minimum): a p99 printed above the
        // max would look like a bug, so the answer is kept within the exact extremes.
        let at = |quantile: f64| {
            let ns = self.histogram.value_at_quantile(quantile);
            ns_to_ms(ns.clamp(self.min_ns, self.max_ns))
        };
        Some(Percentiles {
            min: ns_to_ms(self.min_ns),
            mean: self.sum_ns as f64 / count as f64 / 1e6,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p99_9: at(0.999),
            max: ns_to_ms(self.max_ns),
        })
    }

    /// Splits the range from the fastest to the slowest duration into `buckets` equal slices
    /// and counts the durations in each, as oha's histogram does. Each bucket is named by its
    /// upper edge; the last one ends at the maximum, so every duration lands in a bucket.
    pub(crate) fn linear_buckets(&self, buckets: usize) -> Vec<Bucket> {
        if self.count() == 0 || buckets == 0 {
            return Vec::new();
        }
        let (low, high) = (self.min_ns as f64, self.max_ns as f64);
        let width = (high - low) / buckets as f64;
        let mut counts = vec![0u64; buckets];
        for value in self.histogram.iter_recorded() {
            // The histogram reports a value as its bucket's highest equivalent, which may be a
            // hair past our exact maximum: clamp it into the range before slotting it.
            let ns = (value.value_iterated_to() as f64).clamp(low, high);
            let slot = if width > 0.0 {
                (((ns - low) / width) as usize).min(buckets - 1)
            } else {
                buckets - 1
            };
            counts[slot] += value.count_at_value();
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| Bucket {
                upper_ms: (low + width * (i + 1) as f64) / 1e6,
                count,
            })
            .collect()
    }
}

fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Percentiles of one kind of duration, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) min: f64,
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p99_9: f64,
    pub(crate) max: f64,
}

/// One bar of a latency histogram: how many connections took at most `upper_ms` (and more than
/// the previous bar's bound).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Bucket {
    pub(crate) upper_ms: f64,
    pub(crate) count: u64,
}

/// The median of some values: the middle one, or the mean of the two middle ones. `None` for
/// no values. NaNs are not expected (they are durations) and sort last.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Failed connections by kind. Every kind is always present (zero or not), so the JSON keys
/// never change from one run to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorCounts {
    pub(crate) refused: u64,
    pub(crate) reset: u64,
    pub(crate) timeout: u64,
    pub(crate) invalid: u64,
    pub(crate) other: u64,
}

impl ErrorCounts {
    /// Adds one failure of `kind`.
    pub(crate) fn add(&mut self, kind: ErrorKind) {
        *self.slot(kind) += 1;
    }

    /// How many failures of `kind`.
    pub(crate) fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::Refused => self.refused,
            ErrorKind::Reset => self.reset,
            ErrorKind::Timeout => self.timeout,
            ErrorKind::Invalid => self.invalid,
            ErrorKind::Other => self.other,
        }
    }

    /// All failures.
    pub(crate) fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|&kind| self.get(kind)).sum()
    }

    fn slot(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Refused => &mut self.refused,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Invalid => &mut self.invalid,
            ErrorKind::Other => &mut self.other,
        }
    }
}

/// Everything gathered over the rounds of one load run (or of one act in `compare`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Connect to end-of-stream, for connections that succeeded.
    pub(crate) latency: DurationTally,
    /// Start to established connection, for connections that succeeded.
    pub(crate) connect: DurationTally,
    /// Start to the first byte of the joke, for connections that succeeded.
    pub(crate) first_byte: DurationTally,
    pub(crate) errors: ErrorCounts,
    /// The first message seen for each kind of error, to show what went wrong.
    pub(crate) error_examples: BTreeMap<ErrorKind, String>,
    /// Wall time of each round, from the release of its connections to the end of the last.
    pub(crate) walls: Vec<Duration>,
    pub(crate) connections: u64,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
}

impl Tally {
    /// Adds one round's outcomes.
    pub(crate) fn add_round(&mut self, round: &Round) {
        self.walls.push(round.wall);
        for outcome in &round.outcomes {
            self.add(outcome);
        }
    }

    /// Adds one connection's outcome.
    pub(crate) fn add(&mut self, outcome: &ConnOutcome) {
        self.connections += 1;
        self.bytes_received += outcome.bytes_received;
        self.bytes_sent += outcome.bytes_sent;
        match &outcome.result {
            Ok(timings) => {
                self.latency.record(timings.total);
                self.connect.record(timings.connect);
                self.first_byte.record(timings.first_byte);
            }
            Err(failure) => {
                self.errors.add(failure.kind);
                self.error_examples
                    .entry(failure.kind)
                    .or_insert_with(|| failure.detail.clone());
            }
        }
    }

    /// The numbers to print.
    pub(crate) fn report(&self) -> LoadReport {
        let succeeded = self.latency.count();
        let round_ms: Vec<f64> = self.walls.iter().map(|w| w.as_secs_f64() * 1e3).collect();
        let total_ms: f64 = round_ms.iter().sum();
        LoadReport {
            connections: self.connections,
            succeeded,
            failed: self.errors.total(),
            success_rate: if self.connections == 0 {
                0.0
            } else {
                succeeded as f64 / self.connections as f64
            },
            errors: self.errors,
            error_examples: self
                .error_examples
                .iter()
                .map(|(kind, detail)| (kind.name().to_owned(), detail.clone()))
                .collect(),
            wall_ms: WallTimes {
                median: median(&round_ms).unwrap_or(0.0),
                min: round_ms.iter().copied().reduce(f64::min).unwrap_or(0.0),
                max: round_ms.iter().copied().reduce(f64::max).unwrap_or(0.0),
                rounds: round_ms,
            },
            total_ms,
            connections_per_sec: if total_ms > 0.0 {
                succeeded as f64 / (total_ms / 1e3)
            } else {
                0.0
            },
            bytes_received: self.bytes_received,
            bytes_sent: self.bytes_sent,
            latency_ms: self.latency.percentiles(),
            connect_ms: self.connect.percentiles(),
            first_byte_ms: self.first_byte.percentiles(),
            latency_histogram: self.latency.linear_buckets(HISTOGRAM_BUCKETS),
        }
    }
}

/// Wall time per round, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WallTimes {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) rounds: Vec<f64>,
}

/// The result of a load run, as printed (text) and serialised (JSON). The keys are documented
/// in `bench-client/README.md`; change them only together with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LoadReport {
    pub(crate) connections: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) success_rate: f64,
    pub(crate) errors: ErrorCounts,
    pub(crate) error_examples: BTreeMap<String, String>,
    pub(crate) wall_ms: WallTimes,
    pub(crate) total_ms: f64,
    pub(crate) connections_per_sec: f64,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) latency_ms: Option<Percentiles>,
    pub(crate) connect_ms: Option<Percentiles>,
    pub(crate) first_byte_ms: Option<Percentiles>,
    pub(crate) latency_histogram: Vec<Bucket>,
}

impl LoadReport {
    /// True when every connection succeeded (and there was at least one).
    pub(crate) fn all_succeeded(&self) -> bool {
        self.connections > 0 && self.failed == 0 && self.succeeded == self.connections
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Failure, Timings};

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn tally_of(values_ms: impl IntoIterator<Item = u64>) -> DurationTally {
        let mut tally = DurationTally::default();
        for value in values_ms {
            tally.record(ms(value));
        }
        tally
    }

    /// hdrhistogram with 3 significant digits promises 0.1%.
    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= expected * 0.001 + 1e-9,
            "{actual} is not within 0.1% of {expected}"
        );
    }

    #[test]
    fn percentiles_of_one_to_a_thousand() {
        let p = tally_of(1..=1000).percentiles().unwrap();
        assert_eq!(p.min, 1.0);
        assert_eq!(p.max, 1000.0);
        assert_close(p.mean, 500.5);
        assert_close(p.p50, 500.0);
        assert_close(p.p90, 900.0);
        assert_close(p.p99, 990.0);
        assert_close(p.p99_9, 999.0);
    }

    #[test]
    fn a_single_outlier_shows_in_the_tail_only() {
        let p = tally_of(std::iter::repeat_n(2, 999).chain([5000]))
            .percentiles()
            .unwrap();
        assert_close(p.p50, 2.0);
        assert_close(p.p99, 2.0);
        assert_close(p.p99_9, 2.0);
        assert_eq!(p.max, 5000.0);
        assert_close(p.mean, (2.0 * 999.0 + 5000.0) / 1000.0);
    }

    #[test]
    fn extremes_are_exact_not_bucket_edges() {
        // 1.2345 ms is not representable with 3 significant digits; min and max must still be
        // the value itself.
        let mut tally = DurationTally::default();
        tally.record(Duration::from_nanos(1_234_567));
        let p = tally.percentiles().unwrap();
        assert_eq!(p.min, 1.234567);
        assert_eq!(p.max, 1.234567);
        // And no percentile strays outside them, though the histogram's bucket does.
        assert_eq!(p.p50, 1.234567);
        assert_eq!(p.p99_9, 1.234567);
    }

    #[test]
    fn percentiles_never_pass_the_maximum() {
        let mut tally = DurationTally::default();
        for ns in [1_000_001, 2_000_001, 3_000_001, 9_876_543] {
            tally.record(Duration::from_nanos(ns));
        }
        let p = tally.percentiles().unwrap();
        assert!(p.min <= p.p50 && p.p50 <= p.p90 && p.p90 <= p.p99, "{p:?}");
        assert!(p.p99 <= p.p99_9 && p.p99_9 <= p.max, "{p:?}");
    }

    #[test]
    fn nothing_recorded_means_no_percentiles() {
        assert_eq!(DurationTally::default().percentiles(), None);
        assert!(DurationTally::default().linear_buckets(10).is_empty());
    }

    #[test]
    fn zero_and_huge_durations_are_clamped_not_lost() {
        let mut tally = DurationTally::default();
        tally.record(Duration::ZERO);
        tally.record(Duration::from_secs(10 * 3600));
        assert_eq!(tally.count(), 2);
        let p = tally.percentiles().unwrap();
        assert_eq!(p.min, 1e-6);
        assert_eq!(p.max, 3_600_000.0);
    }

    #[test]
    fn buckets_cover_every_value_and_end_at_the_maximum() {
        let tally = tally_of(1..=100);
        let buckets = tally.linear_buckets(10);
        assert_eq!(buckets.len(), 10);
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 100);
        assert_close(buckets.last().unwrap().upper_ms, 100.0);
        // Evenly spread values fill the buckets evenly (give or take the edges).
        for bucket in &buckets {
            assert!((9..=12).contains(&bucket.count), "{buckets:?}");
        }
    }

    #[test]
    fn equal_values_fill_one_bucket() {
        let buckets = tally_of([7, 7, 7]).linear_buckets(4);
        let counts: Vec<u64> = buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [0, 0, 0, 3]);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn report_counts_successes_failures_and_rounds() {
        let ok = |total| ConnOutcome {
            result: Ok(Timings {
                connect: ms(1),
                first_byte: ms(2),
                total: ms(total),
            }),
            bytes_received: 10,
            bytes_sent: 3,
        };
        let failed = |kind, detail: &str| ConnOutcome {
            result: Err(Failure {
                kind,
                detail: detail.into(),
            }),
            bytes_received: 0,
            bytes_sent: 0,
        };
        let mut tally = Tally::default();
        tally.add_round(&Round {
            wall: ms(100),
            outcomes: vec![ok(10), ok(30), failed(ErrorKind::Timeout, "first")],
        });
        tally.add_round(&Round {
            wall: ms(300),
            outcomes: vec![ok(20), failed(ErrorKind::Timeout, "second")],
        });
        let report = tally.report();
        assert_eq!(report.connections, 5);
        assert_eq!(report.succeeded, 3);
        assert_eq!(report.failed, 2);
        assert!(!report.all_succeeded());
        assert_close(report.success_rate, 0.6);
        assert_eq!(report.errors.timeout, 2);
        assert_eq!(report.errors.total(), 2);
        assert_eq!(report.error_examples["timeout"], "first");
        assert_eq!(report.wall_ms.rounds, [100.0, 300.0]);
        assert_eq!(report.wall_ms.median, 200.0);
        assert_eq!(report.total_ms, 400.0);
        // Three successes in 0.4 s.
        assert_close(report.connections_per_sec, 7.5);
        assert_eq!(report.bytes_received, 30);
        assert_eq!(report.bytes_sent, 9);
        let latency = report.latency_ms.unwrap();
        assert_eq!((latency.min, latency.max), (10.0, 30.0));
        assert_close(latency.mean, 20.0);
    }
}
