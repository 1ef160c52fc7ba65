//! Private file modes (docs/protocol.md#files): what HashPass keeps on disk holds invite
//! codes or client addresses (the audit log, the blacklist, the webhook outbox, the logs), so on
//! Unix its files are readable and writable by their owner alone ([`FILE_MODE`], 0600) and the
//! directories it owns enterable by their owner alone ([`DIR_MODE`], 0700), whatever the umask.
//! Files and owned directories left with looser modes (by an older version, or by hand) are
//! tightened when HashPass opens them. Elsewhere than Unix these functions only create and open.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of every file HashPass writes: owner read and write.
pub const FILE_MODE: u32 = 0o600;

/// The mode of every directory HashPass creates or owns: owner only.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents, each new one with [`DIR_MODE`]. A directory that
/// exists already keeps its mode: it may be the operator's (the data directory defaults to the
/// working directory); see [`create_owned_dir`] for one HashPass owns.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// [`create_dir`], then `dir` itself tightened to [`DIR_MODE`]: for a directory HashPass owns
/// (the webhook outbox, the log directory).
pub fn create_owned_dir(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    tighten(dir, DIR_MODE)
}

/// Opens `path` for appending, creating it with [`FILE_MODE`] (an existing file is tightened).
pub fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    tighten_open(&file)?;
    Ok(file)
}

/// Creates `path`, which must not exist yet, for writing, with [`FILE_MODE`].
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    // The umask can only take bits away; this makes the mode exact all the same.
    tighten_open(&file)?;
    Ok(file)
}

/// Tightens the file at `path` to [`FILE_MODE`] if it exists and anyone else may access it.
pub fn tighten_file(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => tighten(path, FILE_MODE),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tightens every regular file directly in `dir` whose name `matches` to [`FILE_MODE`].
pub fn tighten_files_in(dir: &Path, matches: impl Fn(&str) -> bool) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() && matches(&entry.file_name().to_string_lossy()) {
            tighten(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

/// The permission bits of `path` (Unix; `None` elsewhere).
pub fn mode_of(path: &Path) -> io::Result<Option<u32>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    return Ok(Some(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
    ));
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

/// Sets `path`'s mode to `mode` if it grants anything `mode` does not.
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & !mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// [`tighten`] for a file already open.
fn tighten_open(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = file.metadata()?.permissions().mode() & 0o777;
        if current & !FILE_MODE != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "hashpass-private-{}",
            hex::encode(crate::util::random_bytes::<6>())
        ))
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn new_files_and_directories_are_private_and_loose_ones_are_tightened() {
        let root = temp_dir();
        let owned = root.join("a/b");
        create_owned_dir(&owned).unwrap();
        assert_eq!(mode_of(&root).unwrap(), Some(DIR_MODE));
        assert_eq!(mode_of(&owned).unwrap(), Some(DIR_MODE));
        set_mode(&owned, 0o755);
        create_owned_dir(&owned).unwrap();
        assert_eq!(mode_of(&owned).unwrap(), Some(DIR_MODE));
        // The operator's directory keeps its mode.
        set_mode(&root, 0o755);
        create_dir(&root).unwrap();
        assert_eq!(mode_of(&root).unwrap(), Some(0o755));

        let appended = root.join("log.jsonl");
        drop(open_append(&appended).unwrap());
        assert_eq!(mode_of(&appended).unwrap(), Some(FILE_MODE));
        set_mode(&appended, 0o644);
        drop(open_append(&appended).unwrap());
        assert_eq!(mode_of(&appended).unwrap(), Some(FILE_MODE));

        let fresh = root.join("new");
        drop(create_new(&fresh).unwrap());
        assert_eq!(mode_of(&fresh).unwrap(), Some(FILE_MODE));
        assert!(
            create_new(&fresh).is_err(),
            "an existing file is not reused"
        );

        let (mine, other) = (root.join("hashpass.log.x"), root.join("notes.txt"));
        std::fs::write(&mine, "x").unwrap();
        std::fs::write(&other, "x").unwrap();
        set_mode(&mine, 0o644);
        set_mode(&other, 0o644);
        tighten_files_in(&root, |name| name.starts_with("hashpass.log")).unwrap();
        assert_eq!(mode_of(&mine).unwrap(), Some(FILE_MODE));
        assert_eq!(mode_of(&other).unwrap(), Some(0o644));
        set_mode(&other, 0o640);
        tighten_file(&other).unwrap();
        assert_eq!(mode_of(&other).unwrap(), Some(FILE_MODE));
        tighten_file(&root.join("missing")).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
