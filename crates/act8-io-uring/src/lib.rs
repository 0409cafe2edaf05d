//! # Act VIII: io_uring
//!
//! The question every reader asks after Act VII: Tokio's files go to the blocking pool because
//! Linux has no readiness for files, but Linux has had io_uring since 5.1, a way to *submit*
//! file operations and be told when they complete. Isn't that the real answer now?
//!
//! This act reads each joke through Tokio's own io_uring support (Tokio 1.54: the `io-uring`
//! feature, which only exists in a build with `--cfg tokio_unstable`). In that version the
//! open (`OpenOptions::open`) and `File`'s `AsyncRead` go through the ring, while
//! `File::start_seek` and `File::metadata` still go to the blocking pool. A straight port of Act
//! VII would still make two or three pool trips per joke, so this act does what needs no trip:
//! - the open goes through the ring (an `OPENAT` operation);
//! - the check that the file is still the indexed one is an `fstat(2)` on the open descriptor,
//!   done right here on the worker: it reads the inode the kernel already holds in memory, no
//!   disk I/O (on a FUSE filesystem with no attribute caching, such as `slowfs`, it is one quick
//!   round trip to the FUSE server, which answers at once);
//! - the move to the joke's offset is a plain `lseek(2)` on the std handle, between
//!   [`File::try_into_std`](tokio::fs::File::try_into_std) and
//!   [`File::from_std`](tokio::fs::File::from_std): it only sets a number in the kernel's file
//!   object;
//! - the joke's bytes, and only those, come through the ring (a `READ` at the current position,
//!   which is how Tokio's `File` reads).
//!
//! Tokio falls back to the blocking pool *silently* when the kernel refuses io_uring, and this
//! act would then be Act VII in disguise. So it proves its ring: at start-up it makes a first
//! ring operation (the ring is created lazily) and checks that the process now holds an
//! io_uring file descriptor (`anon_inode:[io_uring]` in `/proc/self/fd`), refusing to start
//! (exit 2, with the reason in one line) when it does not; and at shutdown it logs how many
//! tasks the blocking pool ran while it served, per joke.
//!
//! Build and run it (its own target folder, so the rest of the workspace is not rebuilt with
//! the flag):
//!
//! ```text
//! RUSTFLAGS='--cfg tokio_unstable' cargo run --release --target-dir target/io-uring -p act8-io-uring
//! ```
//!
//! In an ordinary build the act is compiled without the flag, and its binary says exactly that
//! command and exits with 2.

#[cfg(tokio_unstable)]
mod ring;

#[cfg(tokio_unstable)]
pub use ring::{IoUring, read_joke};

/// The one command that builds and runs this act properly.
pub const BUILD_COMMAND: &str = "RUSTFLAGS='--cfg tokio_unstable' cargo run --release --target-dir target/io-uring -p act8-io-uring";

/// Where [`BUILD_COMMAND`] puts the act's release binary, relative to the workspace.
pub const BUILT_BINARY: &str = "target/io-uring/release/act8-io-uring";

/// What the act's binary says, on one line, in a build without `--cfg tokio_unstable`.
pub fn not_in_this_build() -> String {
    format!(
        "act8-io-uring: error: this build has no io_uring (Tokio's io-uring support needs --cfg tokio_unstable); build and run it with: {BUILD_COMMAND}"
    )
}
