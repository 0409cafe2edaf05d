//! A file far larger than memory should need: the index holds byte offsets, and building it
//! streams the file through one fixed read buffer, so a 1 GiB file costs a few kilobytes of
//! index and one buffer, not a gigabyte.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};

use joke_index::{FormatChoice, Index};

const GIB: u64 = 1024 * 1024 * 1024;

/// The process's peak resident memory in KiB since the last reset (Linux's VmHWM).
fn peak_resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Resets the peak to the current resident size (writing 5 to clear_refs, Linux 4.0 and later).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
}

#[test]
fn a_1_gib_file_is_indexed_in_a_fixed_amount_of_memory() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("big.txt");
    // A short joke, then a middle "joke" of almost 1 GiB (a sparse hole reads as NUL bytes,
    // which are valid UTF-8), then a short last joke. The disk holds only the two ends.
    let mut file = File::create(&path).expect("creating the file");
    file.write_all(b"A short first joke.\n---\n")
        .expect("writing");
    let tail = b"\n---\nThe last joke, a gigabyte later.\n";
    file.set_len(GIB).expect("growing the file");
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("reopening");
    file.seek(SeekFrom::End(0)).expect("seeking to the end");
    file.write_all(tail).expect("writing the tail");
    drop(file);

    reset_peak();
    let before = peak_resident_kib();
    let index = Index::build(&path, FormatChoice::Auto).expect("indexing the big file");
    let grew = peak_resident_kib().saturating_sub(before);

    assert_eq!(index.len(), 3);
    assert_eq!(index.file_len(), GIB + tail.len() as u64);
    // One 64 KiB read buffer and an index of three spans; allow generously for the allocator,
    // but nowhere near the file's size.
    assert!(
        grew < 16 * 1024,
        "indexing a 1 GiB file grew the process by {grew} KiB"
    );
    // The last joke is one seek away, however far into the file it is.
    assert_eq!(
        index.read_joke_blocking(2).expect("reading the last joke"),
        "The last joke, a gigabyte later.\n"
    );
}
