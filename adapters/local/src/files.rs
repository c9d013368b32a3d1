//! Stored mail in a folder: `mailroom dev`'s stand-in for the S3 bucket.
//!
//! An object key (`inbound/<message id>`) is a path under the root folder; the bucket name of a
//! [`MailLocation`] is ignored, since one folder stands in for the bucket. Keys that would leave the root
//! are refused.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use mailroom::ports::{FetchError, MailLocation, MailStore, StoreError};

/// Tells temporary files of one process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Raw messages kept as files under one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMailStore {
    root: PathBuf,
}

impl LocalMailStore {
    /// Uses `root` as the bucket; it is created by the first [`put`](Self::put).
    pub fn new(root: impl Into<PathBuf>) -> LocalMailStore {
        LocalMailStore { root: root.into() }
    }

    /// The folder that stands in for the bucket.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`, refused (`InvalidInput`) when the key is empty, absolute or climbs out with
    /// `..`, so no key reaches outside the root.
    pub fn path(&self, key: &str) -> io::Result<PathBuf> {
        let refuse = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("object key `{key}` {why}"),
            )
        };
        let mut path = self.root.clone();
        let mut named = false;
        for component in Path::new(key).components() {
            match component {
                Component::Normal(part) => {
                    path.push(part);
                    named = true;
                }
                Component::CurDir => {}
                Component::ParentDir => return Err(refuse("climbs out of the store with `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse("is an absolute path"));
                }
            }
        }
        if !named {
            return Err(refuse("names no file"));
        }
        Ok(path)
    }

    /// Stores `bytes` under `key`, creating folders as needed. The bytes go to a temporary file in the same
    /// folder that is then renamed, so a reader never sees half a message.
    pub fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key)?;
        let folder = path.parent().unwrap_or(&self.root);
        super::private::create_dir_all(folder)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A leading dot and a `.tmp` ending keep folder watchers and listings off the half-written file.
        let temp = folder.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            super::private::write(&temp, bytes)?;
            std::fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// Removes the object of `key`; false when there was none.
    pub fn delete(&self, key: &str) -> io::Result<bool> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl MailStore for LocalMailStore {
    async fn fetch(&self, location: &MailLocation) -> Result<Bytes, FetchError> {
        let path = self
            .path(&location.key)
            .map_err(|error| StoreError::permanent(format!("cannot read stored mail: {error}")))?;
        let where_ = path.display().to_string();
        // Local files are small and fast: a blocking read does not hold the runtime up noticeably.
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(FetchError::NotFound(where_))
            }
            // A folder where the message should be will still be one on the next attempt.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::IsADirectory | io::ErrorKind::InvalidInput
                ) =>
            {
                Err(StoreError {
                    what: format!("cannot read {where_}: {error}"),
                    retryable: false,
                    source: Some(Box::new(error)),
                }
                .into())
            }
            Err(error) => {
                Err(StoreError::retryable(format!("cannot read {where_}: {error}"), error).into())
            }
        }
    }
}

impl mailroom::ports::ObjectStore for LocalMailStore {
    async fn object_size(&self, location: &MailLocation) -> Result<Option<u64>, StoreError> {
        let path = self
            .path(&location.key)
            .map_err(|e| StoreError::permanent(format!("cannot look up {}: {e}", location.key)))?;
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreError::retryable(
                format!("cannot look up {}", location.key),
                error,
            )),
        }
    }

    async fn put_object(
        &self,
        location: &MailLocation,
        bytes: Bytes,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        self.put(&location.key, &bytes)
            .map_err(|e| StoreError::retryable(format!("cannot store {}", location.key), e))
    }
}

impl mailroom::ports::ObjectEraser for LocalMailStore {
    async fn object_keys(&self, _bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Keys are paths under the root: walk the folder the prefix points into and keep what matches.
        let folder_key = match prefix.rfind('/') {
            Some(slash) => &prefix[..slash],
            None => "",
        };
        let folder = if folder_key.is_empty() {
            self.root.clone()
        } else {
            self.path(folder_key)
                .map_err(|e| StoreError::permanent(format!("cannot list {prefix}: {e}")))?
        };
        let mut keys = Vec::new();
        let mut folders = vec![(folder, folder_key.to_owned())];
        while let Some((folder, key)) = folders.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(StoreError::retryable(
                        format!("cannot list {prefix}"),
                        error,
                    ));
                }
            };
            for entry in entries {
                let entry =
                    entry.map_err(|e| StoreError::retryable(format!("cannot list {prefix}"), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    // Half-written files (see `put`).
                    continue;
                }
                let child = if key.is_empty() {
                    name
                } else {
                    format!("{key}/{name}")
                };
                if entry.path().is_dir() {
                    folders.push((entry.path(), child));
                } else if child.starts_with(prefix) {
                    keys.push(child);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete_object(&self, location: &MailLocation) -> Result<(), StoreError> {
        self.delete(&location.key)
            .map(|_| ())
            .map_err(|e| StoreError::retryable(format!("cannot delete {}", location.key), e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary one, removed when dropped.
    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(name: &str) -> TempRoot {
            let path = std::env::temp_dir().join(format!(
                "mailroom-files-{name}-{}-{}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            TempRoot(path)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn location(key: &str) -> MailLocation {
        MailLocation {
            bucket: "ignored-bucket".into(),
            key: key.into(),
        }
    }

    #[tokio::test]
    async fn put_then_fetch_then_delete() {
        let temp = TempRoot::new("roundtrip");
        let store = LocalMailStore::new(&temp.0);
        store
            .put("inbound/abc123", b"From: a@b.example\r\n\r\nhi")
            .unwrap();
        store.put("inbound/abc123", b"replaced").unwrap();
        let bytes = store.fetch(&location("inbound/abc123")).await.unwrap();
        assert_eq!(&bytes[..], b"replaced");
        assert_eq!(
            store.path("inbound/abc123").unwrap(),
            temp.0.join("inbound").join("abc123")
        );
        // No temporary file is left beside the message.
        let names: Vec<_> = std::fs::read_dir(temp.0.join("inbound"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("abc123")]);

        assert!(store.delete("inbound/abc123").unwrap());
        assert!(!store.delete("inbound/abc123").unwrap());
        match store.fetch(&location("inbound/abc123")).await {
            Err(FetchError::NotFound(what)) => assert!(what.ends_with("abc123"), "{what}"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_root() {
        let temp = TempRoot::new("escape");
        let store = LocalMailStore::new(temp.0.join("bucket"));
        std::fs::create_dir_all(&temp.0).unwrap();
        std::fs::write(temp.0.join("secret"), b"outside").unwrap();
        for key in ["../secret", "inbound/../../secret", "/etc/passwd", "", "."] {
            assert_eq!(
                store.path(key).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{key}"
            );
            match store.fetch(&location(key)).await {
                Err(FetchError::Store(error)) => assert!(!error.retryable, "{key}"),
                other => panic!("expected a permanent error for {key}, got {other:?}"),
            }
            assert!(store.put(key, b"x").is_err(), "{key}");
        }
        assert_eq!(std::fs::read(temp.0.join("secret")).unwrap(), b"outside");
        assert!(store.path("./inbound/x").is_ok());
    }

    #[tokio::test]
    async fn a_folder_is_not_a_message() {
        let temp = TempRoot::new("folder");
        let store = LocalMailStore::new(&temp.0);
        store.put("inbound/m1", b"x").unwrap();
        match store.fetch(&location("inbound")).await {
            Err(FetchError::Store(error)) => assert!(!error.retryable),
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }
}
