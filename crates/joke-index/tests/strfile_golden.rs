//! Our `.dat` writer against golden files that Debian's real strfile wrote (see
//! `tests/fixtures/strfile/README.md`), so the format is checked on any machine.

mod common;

use common::{FIXTURES, fixture_dir, our_joke_count};
use joke_index::strfile::{HEADER_LEN, Strfile};

#[test]
fn every_fixture_has_a_golden_file() {
    for fixture in FIXTURES {
        let dir = fixture_dir();
        assert!(
            dir.join(fixture.name).is_file(),
            "missing fixture {}",
            fixture.name
        );
        assert!(
            dir.join(format!("{}.dat", fixture.name)).is_file(),
            "missing {}.dat",
            fixture.name
        );
    }
}

#[test]
fn our_dat_is_byte_identical_to_strfiles() {
    for fixture in FIXTURES {
        let text_path = fixture_dir().join(fixture.name);
        let golden = std::fs::read(fixture_dir().join(format!("{}.dat", fixture.name)))
            .expect("read the golden .dat");
        let ours = Strfile::from_text_file(&text_path).expect("index the fixture");
        assert_eq!(
            ours.to_bytes(),
            golden,
            "{}: .dat bytes differ",
            fixture.name
        );

        // The in-memory builder agrees with the streaming one.
        let text = std::fs::read(&text_path).unwrap();
        assert_eq!(
            Strfile::from_text_bytes(&text),
            Ok(ours.clone()),
            "{}",
            fixture.name
        );

        // And the reader gives back what was written.
        let dat_path = fixture_dir().join(format!("{}.dat", fixture.name));
        assert_eq!(
            Strfile::read_dat(&dat_path).expect("read the golden .dat"),
            ours
        );
        assert_eq!(golden.len(), HEADER_LEN + 4 * ours.offsets().len());
    }
}

#[test]
fn strfile_record_count_against_our_joke_count() {
    for fixture in FIXTURES {
        let path = fixture_dir().join(fixture.name);
        let strfile = Strfile::from_text_file(&path).unwrap();
        assert_eq!(strfile.header().numstr, fixture.numstr, "{}", fixture.name);
        assert_eq!(
            our_joke_count(&path),
            fixture.jokes,
            "{}: {}",
            fixture.name,
            fixture.why
        );
        if fixture.numstr as usize != fixture.jokes {
            assert!(
                !fixture.why.is_empty(),
                "{}: explain the difference",
                fixture.name
            );
        }
    }
}

#[test]
fn writing_through_the_file_api_gives_the_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in FIXTURES {
        let out = dir.path().join(format!("{}.dat", fixture.name));
        joke_index::strfile::write_dat_for(fixture_dir().join(fixture.name), &out).unwrap();
        let golden = std::fs::read(fixture_dir().join(format!("{}.dat", fixture.name))).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), golden, "{}", fixture.name);
    }
}
