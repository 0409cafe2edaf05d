//! Tests against the real Debian `strfile` and the fortune files of `fortunes-min`.
//!
//! They run only with `--features system-tests` (CI installs `fortune-mod` and `fortunes-min`
//! first). With the feature on, a missing strfile or fortune file is a failure that says what
//! to install, never a silent skip.
#![cfg(feature = "system-tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{FIXTURES, fixture_dir, our_joke_count};
use joke_index::strfile::Strfile;
use joke_index::{Format, FormatChoice, Index};
use proptest::prelude::*;

const STRFILE: &str = "/usr/bin/strfile";
const FORTUNES_DIR: &str = "/usr/share/games/fortunes";
const FORTUNES_MIN: [&str; 3] = ["fortunes", "literature", "riddles"];

fn strfile_binary() -> &'static Path {
    let path = Path::new(STRFILE);
    assert!(
        path.is_file(),
        "{STRFILE} is missing: the system-tests feature needs Debian's strfile \
         (apt-get install fortune-mod)"
    );
    path
}

/// Runs the real `strfile FILE` (default options) and returns the `.dat` it wrote.
fn real_strfile_dat(text_file: &Path) -> Vec<u8> {
    let output = Command::new(strfile_binary())
        .arg(text_file)
        .output()
        .unwrap_or_else(|e| panic!("running {STRFILE} {}: {e}", text_file.display()));
    assert!(
        output.status.success(),
        "{STRFILE} {} failed: {}",
        text_file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut dat = text_file.as_os_str().to_owned();
    dat.push(".dat");
    std::fs::read(PathBuf::from(&dat)).unwrap_or_else(|e| {
        panic!(
            "reading what strfile wrote, {}: {e}",
            Path::new(&dat).display()
        )
    })
}

/// Copies `source` into `dir` (so strfile never writes next to the original) and returns the
/// copy's path.
fn copy_into(dir: &Path, source: &Path) -> PathBuf {
    let name = source.file_name().expect("a file name");
    let copy = dir.join(name);
    std::fs::copy(source, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", source.display()));
    copy
}

#[test]
fn real_strfile_agrees_with_the_golden_files_and_with_us() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in FIXTURES {
        let copy = copy_into(dir.path(), &fixture_dir().join(fixture.name));
        let theirs = real_strfile_dat(&copy);
        let ours = Strfile::from_text_file(&copy).unwrap().to_bytes();
        assert_eq!(
            ours, theirs,
            "{}: our .dat differs from strfile's",
            fixture.name
        );
        let golden = std::fs::read(fixture_dir().join(format!("{}.dat", fixture.name))).unwrap();
        assert_eq!(
            golden, theirs,
            "{}: the golden file is out of date",
            fixture.name
        );
        let numstr = Strfile::from_dat_bytes(&theirs).unwrap().header().numstr;
        assert_eq!(
            numstr, fixture.numstr,
            "{}: strfile's record count",
            fixture.name
        );
        assert_eq!(
            our_joke_count(&copy),
            fixture.jokes,
            "{}: {}",
            fixture.name,
            fixture.why
        );
    }
}

#[test]
fn fortunes_min_dat_files_are_byte_identical_and_counts_match() {
    let dir = tempfile::tempdir().unwrap();
    for name in FORTUNES_MIN {
        let source = Path::new(FORTUNES_DIR).join(name);
        assert!(
            source.is_file(),
            "{} is missing: the system-tests feature needs Debian's fortune files \
             (apt-get install fortunes-min)",
            source.display()
        );
        let copy = copy_into(dir.path(), &source);
        let theirs = real_strfile_dat(&copy);
        let ours = Strfile::from_text_file(&copy).unwrap();
        assert_eq!(
            ours.to_bytes(),
            theirs,
            "{name}: our .dat differs from strfile's"
        );

        // None of these files has a blank-only record, a CRLF line or a `%` after 255 bytes of
        // a line, so strfile's records and our jokes are the same ones (see `strfile` docs).
        let index = Index::build(&copy, FormatChoice::Auto).unwrap();
        assert_eq!(index.format(), Format::Fortune, "{name}: detected format");
        assert_eq!(
            index.len(),
            ours.len(),
            "{name}: our joke count vs strfile's numstr"
        );
        assert_eq!(our_joke_count(&copy), ours.header().numstr as usize);
        assert_eq!(u64::from(*ours.offsets().last().unwrap()), index.file_len());
    }
}

/// Bytes shaped like fortune files with every corner strfile has: delimiters with and without
/// newline or CR, long lines ending in `%` near multiples of 255 bytes, blank and empty
/// records, NUL bytes and non-UTF-8.
fn fortune_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[a-z ]{1,12}\n".prop_map(String::into_bytes),
        3 => Just(b"%\n".to_vec()),
        1 => Just(b"%\r\n".to_vec()),
        1 => Just(b"%".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b" \t\n".to_vec()),
        1 => Just(b"\0\xff\xe9".to_vec()),
        2 => (1usize..4, 0usize..3, prop_oneof![Just(b'%'), Just(b'x')], any::<bool>())
            .prop_map(|(k, nudge, last, newline)| {
                // 255*k bytes give or take one, then `%` or `x`, then maybe a newline.
                let mut line = vec![b'y'; 255 * k + nudge - 1];
                line.push(last);
                if newline {
                    line.push(b'\n');
                }
                line
            }),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_fortune_like_files_give_strfiles_bytes(text in fortune_like_bytes()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random");
        std::fs::write(&path, &text).unwrap();
        let theirs = real_strfile_dat(&path);
        let ours = Strfile::from_text_bytes(&text).expect("small input").to_bytes();
        prop_assert_eq!(ours, theirs);
    }
}

/// Debian's fortunes directory (`fortunes-min` in CI; the full `fortunes` where installed),
/// read by our directory rules: every text file is served, nothing else, and each file's count
/// of jokes is the count in its strfile `.dat`.
#[test]
fn debian_fortunes_directory_loads_with_the_counts_of_its_dat_files() {
    use joke_index::dir::{dat_path, index_listed, list_dir};
    let listing = list_dir(Path::new(FORTUNES_DIR), false)
        .unwrap_or_else(|e| panic!("{FORTUNES_DIR}: {e} (apt-get install fortunes-min)"));
    assert!(
        listing.files.len() >= FORTUNES_MIN.len(),
        "{:?}",
        listing.files
    );
    for name in FORTUNES_MIN {
        assert!(
            listing
                .files
                .iter()
                .any(|f| f.path == Path::new(FORTUNES_DIR).join(name)),
            "{name} is not listed"
        );
    }
    for file in &listing.files {
        assert!(file.has_dat, "{}", file.path.display());
        let index = index_listed(file, FormatChoice::Auto).unwrap_or_else(|e| panic!("{e}"));
        let dat = Strfile::read_dat(dat_path(&file.path)).unwrap();
        assert_eq!(
            index.len(),
            dat.len(),
            "{}: our count against its .dat's",
            file.path.display()
        );
    }
    // Debian's `.u8` links and the `.dat`s are never candidates.
    assert!(listing.files.iter().all(|f| f.path.extension().is_none()));
}

/// fortune's own chances (`fortune -f` prints them, in hundredths of a percent), against our
/// picker's, for its default rule and for `-e`, over the same directory.
#[test]
fn our_shares_are_fortunes_own() {
    use joke_index::dir::{index_listed, list_dir};
    use joke_index::pick::{Candidates, Picker, Weighting};
    const FORTUNE: &str = "/usr/games/fortune";
    assert!(
        Path::new(FORTUNE).is_file(),
        "{FORTUNE} is missing (apt-get install fortune-mod)"
    );
    let listing = list_dir(Path::new(FORTUNES_DIR), false).unwrap();
    let files: Vec<Index> = listing
        .files
        .iter()
        .map(|f| index_listed(f, FormatChoice::Auto).unwrap())
        .collect();
    for (flag, weighting) in [
        (None, Weighting::ByJokes),
        (Some("-e"), Weighting::EqualFiles),
    ] {
        let output = Command::new(FORTUNE)
            .args(flag)
            .args(["-f", FORTUNES_DIR])
            .output()
            .unwrap();
        // `fortune -f` writes its list on stderr: `100.00% DIR`, then `  0.84% riddles`...
        let listed = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        let theirs: Vec<(String, f64)> = listed
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (percent, name) = line.trim().split_once("% ")?;
                Some((name.to_string(), percent.parse().ok()?))
            })
            .collect();
        assert_eq!(theirs.len(), files.len(), "{listed}");
        let picker = Picker::new(
            files
                .iter()
                .map(|index| Candidates::all(index.len()))
                .collect(),
            weighting,
        )
        .unwrap();
        for (index, share) in files.iter().zip(picker.shares()) {
            let name = index.path().file_name().unwrap().to_string_lossy();
            let (_, percent) = theirs
                .iter()
                .find(|(theirs, _)| *theirs == name)
                .unwrap_or_else(|| panic!("fortune -f does not list {name}: {listed}"));
            assert!(
                (100.0 * share - percent).abs() <= 0.006,
                "{name} ({flag:?}): ours {:.4}%, fortune's {percent}%",
                100.0 * share
            );
        }
    }
}
