//! The book's checks.
//!
//! This package exists only for its test, `tests/includes.rs`, which walks the book in `src/`
//! (and every other Markdown page and Rust comment of the repository) and fails when something
//! points at what is not there: an include whose file or anchor is gone, a chapter missing from
//! `SUMMARY.md` (or listed but missing), an image or link to nothing, a figure that no generated
//! file under `src/figures/` defines, a README or comment naming a file nobody committed.
//!
//! mdBook itself only prints a warning when an include fails and renders the page anyway, so
//! without this test a renamed function would silently leave a hole in the book. It needs no
//! mdBook: `cargo test -p book-check`.
