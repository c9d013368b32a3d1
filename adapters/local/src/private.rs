//! Files only their owner may read. Everything `mailroom dev` keeps (the store with every route's secret,
//! the stored mail, forwards, keys) is created this way: folders 0700 and files 0600 from the moment they
//! exist, never widened and narrowed afterwards, so no other user of the machine can read them in between.
//! On systems without Unix permissions the files are created as usual.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Permissions of every folder created.
pub const DIR_MODE: u32 = 0o700;

/// Permissions of every file created.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, each 0700. Folders that exist already are left as they are.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Creates (or truncates) `path` for writing; a new file is 0600.
pub fn create(path: &Path) -> io::Result<File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Writes `contents` to `path` (created 0600 when new, truncated otherwise).
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path` empty and 0600 unless it exists, so that what opens it next (SQLite, which gives its
/// `-wal` and `-shm` files the database's permissions) finds it private.
pub fn touch(path: &Path) -> io::Result<()> {
    options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
}

/// Whether others than the owner may enter or read `path` (Unix permissions beyond 0700 / 0600).
pub fn is_shared(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
#[cfg(unix)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn folders_and_files_are_created_private() {
        let root = std::env::temp_dir().join(format!("mailroom-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let nested = root.join("a/b");
        create_dir_all(&nested).unwrap();
        for dir in [&root, &root.join("a"), &nested] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        write(&nested.join("f"), b"x").unwrap();
        touch(&nested.join("g")).unwrap();
        for file in ["f", "g"] {
            let mode = std::fs::metadata(nested.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        assert!(!is_shared(&nested));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
