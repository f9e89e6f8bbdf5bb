//! The few file operations of this crate: an output directory, and files created with
//! their final permissions.
//!
//! Files that hold private keys are created with mode `0600` in the `open` call itself
//! (never widened and narrowed later), with `O_EXCL`, so an existing file or a planted
//! symbolic link at the path is never written through.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::error::{CertsError, Result};

/// Who may read a file being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Owner only (`0600`): private keys, PKCS#12 files, passwords.
    Private,
    /// Owner writes, everyone reads (`0644`): certificates.
    Public,
}

impl Access {
    #[cfg(unix)]
    fn mode(self) -> u32 {
        match self {
            Self::Private => 0o600,
            Self::Public => 0o644,
        }
    }
}

/// Makes sure `dir` can receive new files: creates it (owner-only, `0700`) when
/// missing; refuses a non-empty existing directory unless `force`.
pub(crate) fn prepare_dir(dir: &Path, force: bool) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(CertsError::NotADirectory {
            path: dir.to_owned(),
        }),
        Ok(_) => {
            let mut entries = fs::read_dir(dir).map_err(|e| CertsError::io(dir, e))?;
            if entries.next().is_some() && !force {
                return Err(CertsError::DirectoryNotEmpty {
                    path: dir.to_owned(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(|e| CertsError::io(dir, e))
        }
        Err(e) => Err(CertsError::io(dir, e)),
    }
}

/// Writes `contents` to a new file at `path` with the permissions of `access`.
///
/// With `replace`, an existing file at `path` is removed first (so it is recreated
/// with the right mode rather than keeping a wider one); without, an existing file is
/// [`CertsError::FileExists`].
pub(crate) fn write_new(path: &Path, contents: &[u8], access: Access, replace: bool) -> Result<()> {
    if replace {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CertsError::io(path, e)),
        }
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(access.mode());
    }
    #[cfg(not(unix))]
    let _ = access;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CertsError::FileExists {
                path: path.to_owned(),
            }
        } else {
            CertsError::io(path, e)
        }
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CertsError::io(path, e))
}

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| CertsError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let new_dir = tmp.path().join("a/b");
        prepare_dir(&new_dir, false).unwrap();
        prepare_dir(&new_dir, false).unwrap(); // empty: fine
        write_new(&new_dir.join("f"), b"x", Access::Public, false).unwrap();
        assert!(matches!(
            prepare_dir(&new_dir, false),
            Err(CertsError::DirectoryNotEmpty { .. })
        ));
        prepare_dir(&new_dir, true).unwrap();
        assert!(matches!(
            prepare_dir(&new_dir.join("f"), true),
            Err(CertsError::NotADirectory { .. })
        ));
    }

    #[test]
    fn new_files_are_not_overwritten_unless_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        write_new(&path, b"one", Access::Private, false).unwrap();
        assert!(matches!(
            write_new(&path, b"two", Access::Private, false),
            Err(CertsError::FileExists { .. })
        ));
        write_new(&path, b"three", Access::Private, true).unwrap();
        assert_eq!(read(&path).unwrap(), b"three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
