//! Every act in the list of acts (`acts::ACTS`) has its chapter in the book: the file exists
//! under `docs/src/`, and the table of contents links to it. A new act cannot land without one.

use std::path::Path;

#[test]
fn every_act_has_a_chapter_in_the_table_of_contents() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).expect("reading SUMMARY.md");
    let mut missing = Vec::new();
    for act in acts::ACTS {
        if !src.join(act.chapter).is_file() {
            missing.push(format!(
                "{}: docs/src/{} does not exist",
                act.name, act.chapter
            ));
        }
        if !summary.contains(&format!("]({})", act.chapter)) {
            missing.push(format!(
                "{}: SUMMARY.md does not link {}",
                act.name, act.chapter
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
