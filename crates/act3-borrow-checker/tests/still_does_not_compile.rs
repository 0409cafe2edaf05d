//! The broken version of Act III keeps failing, and for the right reason.
//!
//! The `compile_fail,E0507` doctest in `src/lib.rs` fails as long as the code does not
//! compile, but stable rustdoc ignores the error code (it checks codes on nightly only), so
//! the doctest alone would keep passing if the code started failing for some other reason.
//! This test compiles `broken/does_not_compile.rs` for real, as a program of its own in a
//! scratch crate with the workspace's versions of tokio and futures, and checks rustc's
//! error code and message.
//!
//! It also keeps `compile-error.txt`, the message the book shows. After a toolchain update,
//! regenerate it with:
//!
//! ```text
//! ACT3_REGENERATE=1 cargo test -p act3-borrow-checker --test still_does_not_compile
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The error the lesson is about.
const EXPECTED: &str =
    "error[E0507]: cannot move out of `socket`, a captured variable in an `FnMut` closure";

const SCRATCH_MANIFEST: &str = r#"[package]
name = "does-not-compile"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
futures = "0.3.31"
tokio = { version = "1.48", features = ["net", "io-util"] }

[workspace]
"#;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the broken file in a scratch crate (kept under the target folder, so the
/// dependencies are compiled once) and returns what rustc printed.
fn compile_broken_file() -> String {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("act3-does-not-compile");
    std::fs::create_dir_all(scratch.join("src")).unwrap();
    std::fs::write(scratch.join("Cargo.toml"), SCRATCH_MANIFEST).unwrap();
    std::fs::copy(
        crate_dir().join("broken/does_not_compile.rs"),
        scratch.join("src/main.rs"),
    )
    .unwrap();
    std::fs::copy(
        crate_dir().join("../../Cargo.lock"),
        scratch.join("Cargo.lock"),
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--offline", "--quiet", "--color", "never"])
        .current_dir(&scratch)
        .env("CARGO_TARGET_DIR", scratch.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("running cargo");
    assert!(
        !output.status.success(),
        "broken/does_not_compile.rs compiled: Act III has lost its lesson"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// rustc's message with this machine's paths made generic, as `compile-error.txt` keeps it.
fn as_recorded(stderr: &str) -> String {
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let registry = format!("{}/registry/src/", cargo_home.display());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .expect("running rustc");
    let mut text = format!(
        "$ rustc --version\n{}\n",
        String::from_utf8_lossy(&rustc.stdout)
    );
    for line in stderr.lines() {
        if line.starts_with("error: could not compile") {
            continue;
        }
        let mut line = line.replace(
            "src/main.rs",
            "crates/act3-borrow-checker/broken/does_not_compile.rs",
        );
        // `<registry>/index.crates.io-<hash>/futures-util-…` becomes `~/.cargo/registry/src/…/futures-util-…`.
        if let Some(start) = line.find(&registry) {
            let after = start + registry.len();
            if let Some(slash) = line[after..].find('/') {
                line.replace_range(start..after + slash + 1, "~/.cargo/registry/src/…/");
            }
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[test]
fn the_broken_version_fails_with_e0507_and_the_book_shows_that_error() {
    let stderr = compile_broken_file();
    assert!(stderr.contains(EXPECTED), "rustc now says:\n{stderr}");
    let recorded_path = crate_dir().join("compile-error.txt");
    if std::env::var_os("ACT3_REGENERATE").is_some() {
        std::fs::write(&recorded_path, as_recorded(&stderr)).unwrap();
    }
    let recorded = std::fs::read_to_string(&recorded_path).unwrap();
    assert!(
        recorded.contains(EXPECTED),
        "compile-error.txt is out of date; regenerate it (see this file's header)"
    );
}
