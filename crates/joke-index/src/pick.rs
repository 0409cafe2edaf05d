//! Choosing one joke among several files, the way fortune(6) chooses a fortune.
//!
//! fortune-mod (`get_fort` and `pick_child` in `fortune.c`) picks a file, then a fortune in it:
//!
//! - by default a file's chance is its number of fortunes over the total: every fortune of
//!   every file is equally likely ([`Weighting::ByJokes`]);
//! - with `-e` every file is equally likely, whatever its size ([`Weighting::EqualFiles`]);
//! - with `-s` (or `-l`) it repeats the whole choice, file and fortune, until the fortune is at
//!   most (or more than) `-n` bytes long, 160 by default.
//!
//! [`Picker`] gives the distribution that loop ends with, without looping: only the jokes whose
//! length fits are candidates, and file *i* (with *n* jokes, *e* of them fitting) is chosen in
//! proportion to *e* by default, and to *e*/*n* with `-e`. A file with no fitting joke is never
//! chosen, and a choice never has to be repeated, however few jokes fit.

use std::ops::RangeInclusive;

use rand::Rng;

/// How a file's chance is set (fortune's default, and its `-e`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Weighting {
    /// Each file in proportion to its number of jokes: every joke equally likely (fortune's
    /// default).
    #[default]
    ByJokes,
    /// Every file equally likely, whatever its size (fortune's `-e`).
    EqualFiles,
}

/// fortune's `-n`: the longest a "short" fortune may be, in bytes.
pub const SHORT_LIMIT: usize = 160;

/// Which jokes may be served, by their served length in bytes: fortune's `-s` (at most
/// [`SHORT_LIMIT`]) and `-l` (more than it), or any range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthLimits {
    pub min: usize,
    pub max: usize,
}

impl Default for LengthLimits {
    fn default() -> Self {
        LengthLimits {
            min: 0,
            max: usize::MAX,
        }
    }
}

impl LengthLimits {
    /// Whether these limits let every joke through.
    pub fn is_unlimited(&self) -> bool {
        *self == LengthLimits::default()
    }

    /// Whether a joke of `len` bytes may be served.
    pub fn admits(&self, len: usize) -> bool {
        self.range().contains(&len)
    }

    fn range(&self) -> RangeInclusive<usize> {
        self.min..=self.max
    }
}

impl std::fmt::Display for LengthLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min, self.max) {
            (0, usize::MAX) => f.write_str("of any length"),
            (0, max) => write!(f, "at most {max} bytes long"),
            (min, usize::MAX) => write!(f, "at least {min} bytes long"),
            (min, max) => write!(f, "{min} to {max} bytes long"),
        }
    }
}

/// One file as the picker sees it: how many jokes it has, and which of them may be served
/// (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub jokes: usize,
    pub eligible: Option<Vec<usize>>,
}

impl Candidates {
    /// Every joke of a file of `jokes` jokes.
    pub fn all(jokes: usize) -> Self {
        Candidates {
            jokes,
            eligible: None,
        }
    }

    /// The jokes whose served length (`lengths[n]` for joke `n`) `limits` admits.
    pub fn fitting(lengths: impl IntoIterator<Item = usize>, limits: &LengthLimits) -> Self {
        if limits.is_unlimited() {
            return Candidates::all(lengths.into_iter().count());
        }
        let mut jokes = 0;
        let mut eligible = Vec::new();
        for (number, len) in lengths.into_iter().enumerate() {
            jokes += 1;
            if limits.admits(len) {
                eligible.push(number);
            }
        }
        Candidates {
            jokes,
            eligible: Some(eligible),
        }
    }

    /// How many of its jokes may be served.
    pub fn eligible_count(&self) -> usize {
        self.eligible.as_ref().map_or(self.jokes, Vec::len)
    }

    fn nth(&self, n: usize) -> usize {
        self.eligible.as_ref().map_or(n, |eligible| eligible[n])
    }
}

/// Picks a file and a joke in it, with fortune's chances (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Picker {
    files: Vec<Candidates>,
    /// Running totals of the files' weights: file `i` is chosen when a uniform draw in
    /// `0..total` falls in `cumulative[i - 1]..cumulative[i]`.
    cumulative: Vec<f64>,
}

impl Picker {
    /// A picker over `files`, or `None` when no joke of any file may be served.
    pub fn new(files: Vec<Candidates>, weighting: Weighting) -> Option<Picker> {
        let mut total = 0.0;
        let cumulative = files
            .iter()
            .map(|file| {
                total += weight(file, weighting);
                total
            })
            .collect();
        (total > 0.0).then_some(Picker { files, cumulative })
    }

    /// The chance of each file, in the order given (they add up to 1).
    pub fn shares(&self) -> Vec<f64> {
        let total = self.total();
        let mut previous = 0.0;
        self.cumulative
            .iter()
            .map(|&sum| {
                let share = (sum - previous) / total;
                previous = sum;
                share
            })
            .collect()
    }

    /// The files, as given.
    pub fn files(&self) -> &[Candidates] {
        &self.files
    }

    /// Chooses a file and a joke in it: `(file, joke number)`.
    pub fn pick(&self, rng: &mut impl Rng) -> (usize, usize) {
        let draw = rng.random_range(0.0..self.total());
        // The first file whose running total exceeds the draw; a file of weight 0 has the same
        // running total as the one before it and is never found.
        let file = self
            .cumulative
            .partition_point(|&sum| sum <= draw)
            .min(self.files.len() - 1);
        let candidates = &self.files[file];
        let n = rng.random_range(0..candidates.eligible_count());
        (file, candidates.nth(n))
    }

    /// [`pick`](Self::pick) with the thread's own random number generator.
    pub fn pick_random(&self) -> (usize, usize) {
        self.pick(&mut rand::rng())
    }

    fn total(&self) -> f64 {
        *self.cumulative.last().unwrap_or(&0.0)
    }
}

// ANCHOR: weight
/// A file's weight: what fortune's repeated choice works out to.
fn weight(file: &Candidates, weighting: Weighting) -> f64 {
    let eligible = file.eligible_count() as f64;
    match weighting {
        Weighting::ByJokes => eligible,
        Weighting::EqualFiles if file.jokes == 0 => 0.0,
        Weighting::EqualFiles => eligible / file.jokes as f64,
    }
}
// ANCHOR_END: weight

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// Picks `draws` times with a fixed seed and counts how often each file came up.
    fn counts(picker: &Picker, draws: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(17);
        let mut counts = vec![0; picker.files().len()];
        for _ in 0..draws {
            let (file, joke) = picker.pick(&mut rng);
            let candidates = &picker.files()[file];
            assert!(joke < candidates.jokes);
            if let Some(eligible) = &candidates.eligible {
                assert!(eligible.contains(&joke));
            }
            counts[file] += 1;
        }
        counts
    }

    /// Each file's observed share is within `tolerance` (absolute) of the expected one.
    fn assert_shares(counts: &[usize], expected: &[f64], tolerance: f64) {
        let draws: usize = counts.iter().sum();
        for (file, (&count, &want)) in counts.iter().zip(expected).enumerate() {
            let got = count as f64 / draws as f64;
            assert!(
                (got - want).abs() <= tolerance,
                "file {file}: share {got:.4}, expected {want:.4} (counts {counts:?})"
            );
        }
    }

    #[test]
    fn by_default_a_file_counts_as_many_times_as_it_has_jokes() {
        let picker = Picker::new(
            vec![
                Candidates::all(100),
                Candidates::all(300),
                Candidates::all(600),
            ],
            Weighting::ByJokes,
        )
        .unwrap();
        assert_eq!(picker.shares(), [0.1, 0.3, 0.6]);
        // 100,000 draws: the standard deviation of a share near 0.5 is about 0.0016, so 0.01
        // is six of them; the seed makes the run repeatable anyway.
        assert_shares(&counts(&picker, 100_000), &[0.1, 0.3, 0.6], 0.01);
    }

    #[test]
    fn with_equal_files_size_does_not_matter() {
        let picker = Picker::new(
            vec![
                Candidates::all(1),
                Candidates::all(10),
                Candidates::all(1000),
            ],
            Weighting::EqualFiles,
        )
        .unwrap();
        let third = 1.0 / 3.0;
        assert_shares(&counts(&picker, 100_000), &[third, third, third], 0.01);
    }

    #[test]
    fn only_fitting_jokes_are_picked_and_a_file_with_none_never_is() {
        let limits = LengthLimits { min: 0, max: 160 };
        let short_and_long = Candidates::fitting([10, 500, 20, 161, 160], &limits);
        assert_eq!(short_and_long.eligible, Some(vec![0, 2, 4]));
        let all_long = Candidates::fitting([200, 300], &limits);
        let all_short = Candidates::fitting([1, 2, 3, 4, 5, 6], &limits);
        let picker = Picker::new(
            vec![short_and_long.clone(), all_long.clone(), all_short.clone()],
            Weighting::ByJokes,
        )
        .unwrap();
        // Every fitting joke equally likely: 3 and 6 of 9.
        assert_shares(&counts(&picker, 60_000), &[1.0 / 3.0, 0.0, 2.0 / 3.0], 0.01);
        // With -e, fortune's loop keeps a file in proportion to its fitting fraction:
        // 3/5 and 6/6, so 0.375 and 0.625.
        let equal = Picker::new(
            vec![short_and_long, all_long, all_short],
            Weighting::EqualFiles,
        )
        .unwrap();
        assert_shares(&counts(&equal, 60_000), &[0.375, 0.0, 0.625], 0.01);
    }

    #[test]
    fn no_fitting_joke_anywhere_is_no_picker() {
        let limits = LengthLimits {
            min: 1000,
            max: usize::MAX,
        };
        assert!(
            Picker::new(
                vec![Candidates::fitting([1, 2], &limits)],
                Weighting::ByJokes
            )
            .is_none()
        );
        assert!(Picker::new(vec![], Weighting::EqualFiles).is_none());
    }

    #[test]
    fn limits_say_what_they_admit() {
        assert_eq!(LengthLimits::default().to_string(), "of any length");
        let short = LengthLimits { min: 0, max: 160 };
        assert!(short.admits(160) && !short.admits(161));
        assert_eq!(short.to_string(), "at most 160 bytes long");
        let long = LengthLimits {
            min: 161,
            max: usize::MAX,
        };
        assert_eq!(long.to_string(), "at least 161 bytes long");
    }
}
