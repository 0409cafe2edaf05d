//! The book's checks.
//!
//! This package exists only for its test, `tests/includes.rs`, which walks the book in
//! `src/` and fails when a chapter pulls in code that is not there any more: a missing file,
//! an anchor without its `ANCHOR:`/`ANCHOR_END:` pair, a chapter missing from `SUMMARY.md` (or
//! listed but missing), an image or a relative link to nothing.
//!
//! mdBook itself only prints a warning when an include fails and renders the page anyway, so
//! without this test a renamed function would silently leave a hole in the book. It needs no
//! mdBook: `cargo test -p book-check`.
