//! A directory of jokes files, laid out as fortune(6) lays out its own: which of its entries
//! are jokes files, and which are not (and why).
//!
//! fortune's `/usr/share/games/fortunes` holds, for each collection, the text file (`riddles`),
//! strfile's index of it (the same name with `.dat` added) and, on Debian, a symbolic link to
//! the same text (the name with `.u8` added), which serving would count twice. Offensive collections sit in a folder
//! `off/` below, ROT13-encoded, with the `.dat` saying so. The rules here follow fortune's own
//! (`is_fortfile` in fortune-mod's `fortune.c`), with two differences said where they apply.

use std::io;
use std::path::{Path, PathBuf};

use crate::strfile::{FLAG_ROTATED, Strfile};
use crate::{FormatChoice, Index};

/// The extensions fortune never takes for a fortune file (its `suflist`: strfile's `.dat`,
/// fortune's `.pos` and the sources of old fortune programs), plus Debian's `.u8` links.
pub const SKIPPED_EXTENSIONS: &[&str] = &[
    "dat", "pos", "c", "h", "p", "i", "f", "pas", "ftn", "sml", "u8",
];

/// The folder, below a fortunes directory, of the offensive collections.
pub const OFFENSIVE_FOLDER: &str = "off";

/// One file of a directory that is a candidate jokes file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Its path (the directory joined with its name).
    pub path: PathBuf,
    /// Whether a strfile `.dat` sits beside it.
    pub has_dat: bool,
    /// Whether its `.dat` says the jokes are ROT13-encoded ([`FLAG_ROTATED`]).
    pub rot13: bool,
    /// Whether it comes from the [`OFFENSIVE_FOLDER`].
    pub offensive: bool,
}

/// An entry of the directory that is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What [`list_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The candidate jokes files, sorted by path (so every run lists them in one order).
    pub files: Vec<ListedFile>,
    /// The entries left out, sorted by path.
    pub skipped: Vec<Skipped>,
}

/// Lists the jokes files of `dir`, and of its `off/` folder when `offensive` is true.
///
/// An entry is left out (and named in [`Listing::skipped`] with the reason) when its name
/// starts with `.`, when its extension is one of [`SKIPPED_EXTENSIONS`], when it is not a
/// regular file (a folder other than `off/`, a socket; a symbolic link counts as what it
/// points to), or when its `.dat` cannot be read. Folders are not searched further, except
/// `off/`. Unlike fortune, a file without a `.dat` is a candidate too (this project reads the
/// text itself); whether it holds jokes is for the caller to decide once it has indexed it.
/// Fails only when `dir` itself cannot be read.
pub fn list_dir(dir: &Path, offensive: bool) -> io::Result<Listing> {
    let mut listing = Listing::default();
    list_into(dir, false, &mut listing)?;
    let off = dir.join(OFFENSIVE_FOLDER);
    if off.is_dir() {
        if offensive {
            if let Err(error) = list_into(&off, true, &mut listing) {
                listing.skipped.push(Skipped {
                    path: off,
                    reason: format!("cannot be read: {error}"),
                });
            }
        } else {
            listing.skipped.push(Skipped {
                path: off,
                reason: "offensive fortunes, served only with --offensive".into(),
            });
        }
    }
    listing.files.sort_by(|a, b| a.path.cmp(&b.path));
    listing.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

fn list_into(dir: &Path, offensive: bool, listing: &mut Listing) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let skip = |listing: &mut Listing, reason: &str| {
            listing.skipped.push(Skipped {
                path: path.clone(),
                reason: reason.into(),
            })
        };
        if name.starts_with('.') {
            // Hidden files (an editor's swap file, `.git`) are nobody's jokes; not even named.
            continue;
        }
        let extension = name.rsplit_once('.').map(|(_, extension)| extension);
        if let Some(extension) = extension.filter(|e| SKIPPED_EXTENSIONS.contains(e)) {
            // strfile's indexes and Debian's `.u8` links are expected beside every file: they
            // are not worth a line of the start-up report each.
            if extension != "dat" && extension != "u8" {
                skip(listing, &format!("a .{extension} file, not a jokes file"));
            }
            continue;
        }
        if !offensive && name == OFFENSIVE_FOLDER {
            continue;
        }
        // `metadata` follows symbolic links: a link to a jokes file is served as that file.
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(metadata) if metadata.is_dir() => {
                skip(listing, "a folder (only off/ is looked into)");
                continue;
            }
            Ok(_) => {
                skip(listing, "not a regular file");
                continue;
            }
            Err(error) => {
                skip(listing, &format!("cannot be read: {error}"));
                continue;
            }
        }
        let dat = dat_path(&path);
        let (has_dat, rot13) = if dat.exists() {
            match Strfile::read_dat(&dat) {
                Ok(strfile) => (true, strfile.header().flags & FLAG_ROTATED != 0),
                Err(error) => {
                    skip(listing, &format!("its .dat is unusable: {error}"));
                    continue;
                }
            }
        } else {
            (false, false)
        };
        listing.files.push(ListedFile {
            path,
            has_dat,
            rot13,
            offensive,
        });
    }
    Ok(())
}

/// Indexes a listed file, decoding ROT13 when its `.dat` says so, or says why it is not served.
///
/// Beyond [`Index::build`]'s own refusals (not UTF-8, no joke, unreadable), a file without a
/// `.dat` that holds a single joke is taken for what it most likely is, a README or a licence
/// with no separator in it, and left out: a jokes file has separators, or strfile's index.
pub fn index_listed(file: &ListedFile, format: FormatChoice) -> Result<Index, String> {
    let index = Index::build(&file.path, format).map_err(|error| error.to_string())?;
    if !file.has_dat && index.len() == 1 {
        return Err(format!(
            "{}: one joke, no separator and no .dat: not taken for a jokes file",
            file.path.display()
        ));
    }
    Ok(index.decoding_rot13(file.rot13))
}

/// The `.dat` beside a fortune file: its name with `.dat` added, as strfile names it.
pub fn dat_path(path: &Path) -> PathBuf {
    let mut dat = path.as_os_str().to_owned();
    dat.push(".dat");
    PathBuf::from(dat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strfile::write_dat_for;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn fortunes_layout_lists_the_text_files_and_says_what_it_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("riddles"), "a\n%\nb\n%\n");
        write_dat_for(d.join("riddles"), d.join("riddles.dat")).unwrap();
        std::os::unix::fs::symlink("riddles", d.join("riddles.u8")).unwrap();
        write(&d.join("plain.txt"), "one\n---\ntwo\n");
        write(&d.join("notes.c"), "int main;\n");
        write(&d.join(".hidden"), "x\n%\ny\n");
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::create_dir(d.join("off")).unwrap();
        write(&d.join("off/rude"), "n\n%\no\n%\n");

        let listing = list_dir(d, false).unwrap();
        let names: Vec<_> = listing.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(names, [d.join("plain.txt"), d.join("riddles")]);
        assert!(listing.files[1].has_dat && !listing.files[0].has_dat);
        let skipped: Vec<_> = listing.skipped.iter().map(|s| s.path.clone()).collect();
        assert_eq!(skipped, [d.join("notes.c"), d.join("off"), d.join("sub")]);
        assert!(listing.skipped[1].reason.contains("--offensive"));

        let with_off = list_dir(d, true).unwrap();
        let rude = with_off.files.iter().find(|f| f.offensive).unwrap();
        assert_eq!(rude.path, d.join("off/rude"));
    }

    #[test]
    fn the_rotated_flag_of_the_dat_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("off")).unwrap();
        write(&d.join("off/rude"), "n\n%\no\n%\n");
        let mut dat = write_dat_for(d.join("off/rude"), d.join("off/rude.dat"))
            .unwrap()
            .to_bytes();
        dat[19] |= FLAG_ROTATED as u8;
        std::fs::write(d.join("off/rude.dat"), dat).unwrap();
        let listing = list_dir(d, true).unwrap();
        assert!(listing.files[0].rot13 && listing.files[0].offensive);
    }

    #[test]
    fn a_broken_dat_skips_its_file_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("riddles"), "a\n%\nb\n");
        write(&dir.path().join("riddles.dat"), "short");
        let listing = list_dir(dir.path(), false).unwrap();
        assert!(listing.files.is_empty());
        assert!(
            listing.skipped[0].reason.contains("its .dat is unusable"),
            "{:?}",
            listing.skipped
        );
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_dir(&dir.path().join("nope"), false).is_err());
    }
}
