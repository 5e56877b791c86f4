//! `FileSessionHandler`, the default driver: one file per session id in a private directory.
//!
//! Every write goes to an exclusively created temp file in the same directory and is renamed
//! over the session file, so a reader sees the old or the new payload, never a torn one. Files
//! are opened with `O_NOFOLLOW` and gc uses `lstat`, so a planted symlink is never followed.
//! All work runs in one `spawn_blocking` hop per operation: the JS thread never waits on disk.

use crate::clock::{self, SharedClock};
use crate::error::{Result, SessionError};
use crate::handler::{SessionHandler, WriteMeta};
use crate::id;
use async_trait::async_trait;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// File operations of one handler running at once.
const MAX_IN_FLIGHT: usize = 8;

/// Orphaned temp files (from a crash mid-write) older than this are removed by gc.
const TEMP_MAX_AGE_MS: i64 = 3_600_000;

struct Inner {
    dir: PathBuf,
    lifetime_ms: i64,
    clock: SharedClock,
    // With the system clock the OS stamps mtimes itself; a test clock needs explicit stamps.
    stamp_mtime: bool,
    ready: AtomicBool,
    // Creates and renames in one directory serialise on its lock: past a few blocking threads,
    // more in flight only adds contention (a cap of 8 measured 10-35 % more cycles/s at 64).
    in_flight: tokio::sync::Semaphore,
}

/// Sessions as files named by their id.
#[derive(Clone)]
pub struct FileSessionHandler(Arc<Inner>);

impl FileSessionHandler {
    /// A handler storing sessions in `dir`, which is created (mode 0700) on first use.
    /// Sessions live `minutes` after their last write or touch.
    pub fn new(dir: impl Into<PathBuf>, minutes: f64, clock: Option<SharedClock>) -> Result<Self> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(SessionError::InvalidOption(
                "the session file path must be a non-empty string".into(),
            ));
        }
        Ok(Self(Arc::new(Inner {
            dir,
            lifetime_ms: clock::lifetime_ms(minutes)?,
            stamp_mtime: clock.is_some(),
            clock: clock.unwrap_or_else(clock::system),
            ready: AtomicBool::new(false),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        })))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .0
            .in_flight
            .acquire()
            .await
            .map_err(|e| SessionError::Io(format!("session file task failed: {e}")))?;
        let inner = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            inner.ensure_dir()?;
            f(&inner)
        })
        .await
        .map_err(|e| SessionError::Io(format!("session file task failed: {e}")))?
    }
}

fn ms_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn time_of(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

fn is_temp_name(name: &str) -> bool {
    // `.<id>.<12 alnum>.tmp`
    name.strip_prefix('.')
        .and_then(|r| r.strip_suffix(".tmp"))
        .and_then(|r| r.rsplit_once('.'))
        .is_some_and(|(id_part, rand)| {
            id::is_legacy_id(id_part)
                && rand.len() == 12
                && rand.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

impl Inner {
    fn ensure_dir(&self) -> Result<()> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let dir_err =
            |e: io::Error| SessionError::Io(format!("session directory cannot be used: {e}"));
        match fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => {
                if m.permissions().mode() & 0o022 != 0 {
                    return Err(SessionError::Io(format!(
                        "session directory is writable by group or others (mode {:o}); \
                         run chmod 700 on it, sessions must not be readable or plantable by other users",
                        m.permissions().mode() & 0o777
                    )));
                }
            }
            Ok(_) => {
                return Err(SessionError::Io(
                    "session directory cannot be used: the path exists and is not a directory"
                        .into(),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(dir_err)?;
            }
            Err(e) => return Err(dir_err(e)),
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn expired(&self, mtime_ms: i64, now: i64) -> bool {
        now - mtime_ms > self.lifetime_ms
    }

    fn open_nofollow(path: &Path, write: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    }

    fn read(&self, id: &str) -> Result<String> {
        let mut f = match Self::open_nofollow(&self.path(id), false) {
            Ok(f) => f,
            // Missing, or a symlink (ELOOP): nothing to read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(String::new()),
            Err(e) => return Err(SessionError::io("read", id, e)),
        };
        let meta = f.metadata().map_err(|e| SessionError::io("read", id, e))?;
        if !meta.is_file() {
            return Ok(String::new());
        }
        let mtime = meta.modified().map(ms_of).unwrap_or(0);
        if self.expired(mtime, self.clock.now_ms()) {
            return Ok(String::new());
        }
        let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        f.read_to_end(&mut buf)
            .map_err(|e| SessionError::io("read", id, e))?;
        // A payload that is not UTF-8 is corrupt: the engine treats it as empty.
        Ok(String::from_utf8(buf).unwrap_or_default())
    }

    fn write(&self, id: &str, data: &str) -> Result<()> {
        let rand = id::random_alnum(12)?;
        let tmp = self.dir.join(format!(".{id}.{rand}.tmp"));
        let result = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(data.as_bytes())?;
            if self.stamp_mtime {
                f.set_modified(time_of(self.clock.now_ms()))?;
            }
            drop(f);
            fs::rename(&tmp, self.path(id))
        })();
        if let Err(e) = result {
            // Leave the previous payload intact and no temp file behind.
            let _ = fs::remove_file(&tmp);
            return Err(SessionError::io("write", id, e));
        }
        Ok(())
    }

    fn touch(&self, id: &str) -> Result<bool> {
        let f = match Self::open_nofollow(&self.path(id), false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
            Err(e) => return Err(SessionError::io("touch", id, e)),
        };
        let meta = f.metadata().map_err(|e| SessionError::io("touch", id, e))?;
        let now = self.clock.now_ms();
        if !meta.is_file() || self.expired(meta.modified().map(ms_of).unwrap_or(0), now) {
            return Ok(false);
        }
        f.set_modified(time_of(now))
            .map_err(|e| SessionError::io("touch", id, e))?;
        Ok(true)
    }

    fn destroy(&self, id: &str) -> Result<()> {
        match fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SessionError::io("destroy", id, e)),
        }
    }

    fn gc(&self, secs: u64) -> Result<u64> {
        let now = self.clock.now_ms();
        let max_ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let entries = fs::read_dir(&self.dir).map_err(|e| {
            SessionError::Io(format!("session gc failed to list the directory: {e}"))
        })?;
        let mut removed = 0u64;
        // read_dir streams entries, so memory stays flat however many files there are.
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let is_session = id::is_legacy_id(name);
            let limit = if is_session {
                max_ms
            } else if is_temp_name(name) {
                TEMP_MAX_AGE_MS
            } else {
                continue;
            };
            // lstat: a symlink is never followed, and never counts as a session file.
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if !meta.file_type().is_file() {
                continue;
            }
            let mtime = meta.mtime().saturating_mul(1000) + meta.mtime_nsec() / 1_000_000;
            if now - mtime > limit && fs::remove_file(entry.path()).is_ok() && is_session {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl SessionHandler for FileSessionHandler {
    async fn read(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |i| i.read(&id)).await
    }
    async fn write(&self, id: &str, data: &str, _meta: &WriteMeta) -> Result<()> {
        id::check_storage_id(id)?;
        let (id, data) = (id.to_owned(), data.to_owned());
        self.run(move |i| i.write(&id, &data)).await
    }
    async fn destroy(&self, id: &str) -> Result<()> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |i| i.destroy(&id)).await
    }
    async fn gc(&self, max_lifetime_secs: u64) -> Result<u64> {
        self.run(move |i| i.gc(max_lifetime_secs)).await
    }
    async fn touch(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run(move |i| i.touch(&id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        let id = "a".repeat(40);
        assert!(is_temp_name(&format!(".{id}.abcdefABCD12.tmp")));
        assert!(!is_temp_name(&format!(".{id}.abc.tmp")));
        assert!(!is_temp_name(".gitignore"));
        assert!(!is_temp_name(&id));
    }
}
