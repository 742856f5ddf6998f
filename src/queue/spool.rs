//! The spool on disk: durable writes, entry files and per-entry locks.
//!
//! Layout of a queue directory (mode 0700; every file 0600):
//!
//! ```text
//! DIR/tmp/NAME   files being written; each is flock'ed by its writer while in use
//! DIR/msg/ID     the message bytes, exactly as they go to the server
//! DIR/meta/ID    the envelope and the bookkeeping (JSON), and the DKIM options when postie
//!                signed the message; its presence makes ID live
//! ```
//!
//! Durability (design.md §6): a file is written under `tmp/`, fsynced, renamed into place
//! and its directory fsynced. An entry is committed in that order: `msg/ID` first, then
//! `meta/ID`, so a crash at any point leaves either no entry (an orphan `msg/ID` or a
//! `tmp/` file, both ignored by readers and swept later) or a whole one. Rewriting the
//! metadata (attempts, next try) is one more rename over `meta/ID`: old or new, never half.
//! Removing an entry deletes `meta/ID` first (the commit point), then `msg/ID`.
//!
//! Locks: the holder of an entry is whoever holds the flock on `msg/ID` — the writer who
//! is committing it (from staging to the metadata's rename), or the `queue run` delivering
//! it. `msg/ID` is never renamed after it is in place, so the lock always sits on the same
//! inode. A second runner that cannot take the lock skips the entry; one that takes it
//! reads `meta/ID` again (it may be gone, or rescheduled) before doing anything. The kernel
//! drops a dead process's locks, so an unlocked `tmp/` file or an unlocked `msg/ID` without
//! `meta/ID` belongs to nobody and is swept. std's `File::try_lock` (flock(2) on Unix,
//! stable since Rust 1.89) is the lock: advisory, per open file description.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One queued message's envelope and bookkeeping, as stored in `meta/ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Format version of this file.
    pub version: u32,
    pub id: String,
    /// Unix seconds when the message was first queued.
    pub created: i64,
    /// Delivery attempts made so far (the first, failed one included).
    pub attempts: u32,
    /// Unix seconds of the next attempt `queue run` may make.
    pub next_attempt: i64,
    /// Unix seconds of the last attempt.
    pub last_attempt: i64,
    /// Why the last attempt did not deliver (one line).
    pub last_error: String,
    /// The envelope sender (MAIL FROM); empty for the null sender.
    pub sender: String,
    /// The recipients still to deliver to.
    pub recipients: Vec<String>,
    /// Size of `msg/ID` in bytes.
    pub size: u64,
    /// Set when postie DKIM-signed the message before spooling it (its topmost
    /// DKIM-Signature is postie's own): the options it signed with, the key as an absolute
    /// path. A run that has to convert the message to 7-bit (a server without 8BITMIME)
    /// signs the converted message again with them. Absent in entries without a signature
    /// of postie's, and in those written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<crate::dkim::Options>,
}

pub const META_VERSION: u32 = 1;

/// Whether `id` can be an entry id: what [`new_id`] makes, nothing that could name
/// another path.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A new entry id: creation time, process id and a counter, in hex — unique on this
/// machine without a shared counter file; sorted roughly by age.
pub fn new_id(now: i64) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:09x}-{:x}-{:08x}{n:x}",
        now.max(0),
        std::process::id(),
        nanos
    )
}

/// Create `dir` (and parents) with mode 0700 when missing.
pub fn make_dir(dir: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| {
        Error::Io(format!(
            "cannot create the queue directory {}: {e}",
            dir.display()
        ))
        .into()
    })
}

/// fsync a directory, so that a rename or unlink in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io(format!("syncing {}: {e}", dir.display())).into())
}

/// A file under `tmp/`, created new (0600) and flock'ed by this process until dropped
/// (or renamed into place, which keeps the lock on the same inode).
pub struct TmpFile {
    pub file: File,
    pub path: PathBuf,
    /// Whether the file still sits at `path` (false once renamed or removed).
    live: bool,
}

impl TmpFile {
    /// Create and lock a new file in `tmp`. The sweeper deletes only unlocked files; a
    /// file it deleted between our create and our lock is noticed (the path no longer
    /// names our inode) and another name is tried.
    pub fn create(tmp: &Path, stem: &str) -> Result<TmpFile> {
        let mut last = None;
        for n in 0..16u32 {
            let path = tmp.join(format!("{stem}.{n}"));
            let mut opts = OpenOptions::new();
            opts.read(true).write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let file = match opts.open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    last = Some(e);
                    continue;
                }
                Err(e) => {
                    return Err(Error::Io(format!("cannot create {}: {e}", path.display())).into())
                }
            };
            if file.try_lock().is_err() || !same_file(&file, &path) {
                last = Some(io::Error::other("swept while being created"));
                continue;
            }
            return Ok(TmpFile {
                file,
                path,
                live: true,
            });
        }
        Err(Error::Io(format!(
            "cannot create a file in {}: {}",
            tmp.display(),
            last.map_or_else(String::new, |e| e.to_string())
        ))
        .into())
    }

    /// fsync the file, rename it to `dest` and fsync `dest`'s directory. The lock stays
    /// with `self.file`.
    pub fn persist(&mut self, dest: &Path) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::Io(format!("syncing {}: {e}", self.path.display())))?;
        fs::rename(&self.path, dest).map_err(|e| {
            Error::Io(format!(
                "renaming {} to {}: {e}",
                self.path.display(),
                dest.display()
            ))
        })?;
        self.live = false;
        if let Some(dir) = dest.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.live {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` still names the file open as `file`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Write `bytes` to `dest` durably: a locked temporary file in `tmp`, fsync, rename over
/// `dest`, fsync the directory.
pub fn write_durably(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let stem = dest
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let mut t = TmpFile::create(tmp, &format!("{stem}.meta"))?;
    t.file
        .write_all(bytes)
        .map_err(|e| Error::Io(format!("writing {}: {e}", t.path.display())))?;
    t.persist(dest)
}

/// Read and parse `meta/ID`; `Ok(None)` when it does not exist (no such entry, or it was
/// just delivered and removed).
pub fn read_meta(path: &Path) -> Result<Option<Meta>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("reading {}: {e}", path.display())).into()),
    };
    let meta: Meta = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Io(format!("{} is damaged: {e}", path.display())))?;
    Ok(Some(meta))
}

/// Open `msg/ID` and take its lock without waiting. `Ok(None)`: someone else holds it,
/// or the file is gone (the entry was just removed).
pub fn lock_message(path: &Path) -> Result<Option<File>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("opening {}: {e}", path.display())).into()),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::Io(format!("locking {}: {e}", path.display())).into())
        }
    }
}

/// Remove what crashed writers and runners left: unlocked files in `tmp/`, and unlocked
/// `msg/ID` files without `meta/ID`. Best effort; returns how many files went.
pub fn sweep(dir: &Path) -> usize {
    let mut removed = 0;
    if let Ok(list) = fs::read_dir(dir.join("tmp")) {
        for entry in list.flatten() {
            let path = entry.path();
            if let Ok(f) = File::open(&path) {
                if f.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
    }
    if let Ok(list) = fs::read_dir(dir.join("msg")) {
        for entry in list.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_id(&name) || dir.join("meta").join(&name).exists() {
                continue;
            }
            let path = entry.path();
            if let Ok(Some(_lock)) = lock_message(&path) {
                // Checked again under the lock: a writer commits meta while holding it.
                if !dir.join("meta").join(&name).exists() && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_safe() {
        let a = new_id(1_767_225_600);
        let b = new_id(1_767_225_600);
        assert_ne!(a, b);
        assert!(valid_id(&a) && valid_id(&b), "{a} {b}");
        for bad in ["", "../x", "a/b", "a.b", "x y", &"a".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn tmp_files_are_locked_and_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let t = TmpFile::create(dir.path(), "x").unwrap();
        let path = t.path.clone();
        // Locked: the sweeper leaves it alone.
        let other = File::open(&path).unwrap();
        assert!(other.try_lock().is_err());
        drop(t);
        assert!(!path.exists());

        let mut t = TmpFile::create(dir.path(), "y").unwrap();
        t.file.write_all(b"hello").unwrap();
        let dest = dir.path().join("dest");
        t.persist(&dest).unwrap();
        // Still locked after the rename (same inode), and kept after the drop.
        assert!(File::open(&dest).unwrap().try_lock().is_err());
        drop(t);
        assert_eq!(fs::read(&dest).unwrap(), b"hello");
    }

    #[test]
    fn sweep_takes_only_unlocked_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["tmp", "msg", "meta"] {
            make_dir(&dir.path().join(d)).unwrap();
        }
        let busy = TmpFile::create(&dir.path().join("tmp"), "busy").unwrap();
        fs::write(dir.path().join("tmp/dead.0"), b"x").unwrap();
        fs::write(dir.path().join("msg/orphan"), b"x").unwrap();
        fs::write(dir.path().join("msg/live"), b"x").unwrap();
        fs::write(dir.path().join("meta/live"), b"{}").unwrap();
        assert_eq!(sweep(dir.path()), 2);
        assert!(busy.path.exists());
        assert!(dir.path().join("msg/live").exists());
        assert!(!dir.path().join("msg/orphan").exists());
    }
}
