//! `FileSessionHandler`, the default driver: one file per session id in a private directory.
//!
//! Every write goes to an exclusively created temp file in the same directory and is renamed
//! over the session file, so a reader sees the old or the new payload, never a torn one. Files
//! are opened with `O_NOFOLLOW` and gc uses `lstat`, so a planted symlink is never followed.
//! All work runs in one `spawn_blocking` hop per operation: the JS thread never waits on disk.
//!
//! Hostile or odd directory contents cannot wedge the driver: session files are opened with
//! `O_NONBLOCK` (opening a FIFO for reading would otherwise block until a writer appears) and
//! only regular files count, so a FIFO, socket, device or directory at a session path reads as
//! no session. The size is checked with `fstat` before anything is read, so a huge file costs no
//! memory. Every operation has a deadline (`timeout_ms`) and fails with `ERR_SESSION_TIMEOUT`
//! past it, holding its in-flight slot until the blocked thread really returns.
//!
//! Compare-and-set (issue 12): [`SessionHandler::write_if_unchanged`] and `destroy` of an id
//! hold an exclusive `flock` on a lock file from the read through the compare, the temp write
//! and the rename, so they hold across threads and processes sharing the directory. The lock
//! cannot be taken on the session file itself: every write renames a new inode over the path,
//! and a lock on the old inode would exclude nobody. Lock files are a fixed set of stripes
//! (`.ostro-lock.<n>`, n = a hash of the id modulo [`LOCK_STRIPES`]) that are never removed, so
//! every process always locks the same inode and no lock file outlives its session. A destroy
//! leaves a tombstone, an empty session file, for the lifetime (or [`FileOptions::tombstone_secs`]:
//! its mtime is then set that much less than a lifetime before now): it reads as no session, a
//! touch of it answers `false`, a compare-and-set never matches it, and gc removes it once it is
//! older than the lifetime like any session file.
//!
//! A user's sessions (see [`crate::users`]) are indexed under `.ostro-users/<user>/<entry>`: one
//! directory per user (named by a hash of the user id) holding one small file per session
//! (named by a hash of the id, holding the id, IP address and user agent), written atomically
//! (temp file and rename) and only when it changes. gc removes entries whose session is gone.
//!
//! Opt-in blocking (see [`crate::blocking`]): the lock of a session is a file
//! `.ostro-block.<id>` holding the holder's token and the lock's expiry (ms since the epoch),
//! created, checked, replaced when expired, and removed by its holder only under the same
//! stripe `flock`, so it holds across processes; gc removes expired ones.
//!
//! The directory is checked before every operation (an `lstat`): recreated with mode 0700 when
//! it disappeared (tmp reapers, deploys), refused when another user owns it or it became group-
//! or world-writable.

use crate::clock::{self, SharedClock};
use crate::error::{Result, SessionError};
use crate::handler::{self, CasOutcome, SessionHandler, UserRecord, WriteMeta};
use crate::id;
use async_trait::async_trait;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// File operations of one handler running at once.
const MAX_IN_FLIGHT: usize = 8;

/// Temp files (`.<id>.<pid>.<rand>.tmp`) are ours: a write creates one and renames it within
/// milliseconds. One older than this is left by a crash (`kill -9` mid-write) and is removed on
/// first use and by every gc; a write still running after a minute has failed its caller long
/// ago (default deadline 30 s) and only loses its rename.
const TEMP_MAX_AGE_MS: i64 = 60_000;

/// A temp file whose writer pid is not running on this host is removed once it is this old:
/// the age covers a writer on another host sharing the directory (NFS), whose pid means
/// nothing here and whose write takes far less.
const TEMP_DEAD_WRITER_AGE_MS: i64 = 5_000;

/// Lock files per directory (see the module docs): enough that unrelated sessions rarely wait on
/// each other, few enough that the directory never fills with them.
pub const LOCK_STRIPES: u32 = 64;

/// Block files (see the module docs) are named this prefix and the id.
const BLOCK_PREFIX: &str = ".ostro-block.";

/// The largest deadline accepted for one operation (10 minutes).
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// Options of a [`FileSessionHandler`].
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Deadline of one operation, in ms (default 30 000, as the Store's `timeoutMs`).
    pub timeout_ms: u64,
    /// fsync the session file before the rename and the directory after it (and after a
    /// destroy), so a power loss cannot lose or tear an acknowledged write.
    pub durable: bool,
    /// Largest session file read, in bytes; a larger file reads as no session without being
    /// read (default 4 MiB: the Store's 1 MiB default payload, sealed, fits with room).
    pub max_file_bytes: u64,
    /// How long a tombstone lives, in seconds, from 1 to the lifetime (`None`, the default: the
    /// lifetime). See [`handler::tombstone_ms`].
    pub tombstone_secs: Option<u64>,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            durable: false,
            max_file_bytes: 4 * 1024 * 1024,
            tombstone_secs: None,
        }
    }
}

struct Inner {
    dir: PathBuf,
    lifetime_ms: i64,
    // How much earlier than the destroy a tombstone's mtime is set (see
    // `handler::tombstone_backdate_ms`): 0 keeps it for the lifetime.
    tombstone_backdate_ms: i64,
    clock: SharedClock,
    // With the system clock the OS stamps mtimes itself; a test clock needs explicit stamps.
    stamp_mtime: bool,
    // Whether orphaned temp files were swept since the directory was (re)found.
    swept: AtomicBool,
    // Creates and renames in one directory serialise on its lock: past a few blocking threads,
    // more in flight only adds contention (a cap of 8 measured 10-35 % more cycles/s at 64).
    in_flight: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    durable: bool,
    max_file_bytes: u64,
}

/// Sessions as files named by their id.
#[derive(Clone)]
pub struct FileSessionHandler(Arc<Inner>);

impl FileSessionHandler {
    /// A handler storing sessions in `dir`, which is created (mode 0700) on first use.
    /// Sessions live `minutes` after their last write or touch.
    pub fn new(dir: impl Into<PathBuf>, minutes: f64, clock: Option<SharedClock>) -> Result<Self> {
        Self::with_options(dir, minutes, clock, FileOptions::default())
    }

    /// [`FileSessionHandler::new`] with [`FileOptions`].
    ///
    /// # Errors
    /// [`SessionError::InvalidOption`] for an empty path, a bad lifetime, a deadline outside
    /// 1..=[`MAX_TIMEOUT_MS`] or a tombstone time outside 1 s..=the lifetime.
    pub fn with_options(
        dir: impl Into<PathBuf>,
        minutes: f64,
        clock: Option<SharedClock>,
        opts: FileOptions,
    ) -> Result<Self> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(SessionError::InvalidOption(
                "the session file path must be a non-empty string".into(),
            ));
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&opts.timeout_ms) {
            return Err(SessionError::InvalidOption(format!(
                "timeoutMs must be a number of milliseconds from 1 to {MAX_TIMEOUT_MS}, got {}",
                opts.timeout_ms
            )));
        }
        let lifetime_ms = clock::lifetime_ms(minutes)?;
        Ok(Self(Arc::new(Inner {
            dir,
            lifetime_ms,
            tombstone_backdate_ms: handler::tombstone_backdate_ms(
                lifetime_ms,
                opts.tombstone_secs,
            )?,
            stamp_mtime: clock.is_some(),
            clock: clock.unwrap_or_else(clock::system),
            swept: AtomicBool::new(false),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            timeout: Duration::from_millis(opts.timeout_ms),
            durable: opts.durable,
            max_file_bytes: opts.max_file_bytes,
        })))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if !self.0.swept.swap(true, Ordering::AcqRel) {
            // Off the operation's path: a directory of a million sessions takes a while to list.
            let inner = Arc::clone(&self.0);
            drop(tokio::task::spawn_blocking(move || inner.sweep_temps()));
        }
        let inner = Arc::clone(&self.0);
        let work = async move {
            // The permit moves into the blocking task: a thread stuck past the deadline keeps
            // its slot, so stuck operations cannot pile up threads beyond the cap.
            let permit = Arc::clone(&inner.in_flight)
                .acquire_owned()
                .await
                .map_err(|e| SessionError::Io(format!("session file task failed: {e}")))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                inner.ensure_dir()?;
                f(&inner)
            })
            .await
            .map_err(|e| SessionError::Io(format!("session file task failed: {e}")))?
        };
        match tokio::time::timeout(self.0.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(SessionError::Timeout(format!(
                "session file {op} did not complete within {} ms (directory {})",
                self.0.timeout.as_millis(),
                self.0.dir.display()
            ))),
        }
    }
}

fn ms_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn mtime_ms(meta: &fs::Metadata) -> i64 {
    meta.mtime().saturating_mul(1000) + meta.mtime_nsec() / 1_000_000
}

fn time_of(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// A temp file of ours: `.<id>.<pid>.<12 alnum>.tmp`, or `.<id>.<12 alnum>.tmp` as written
/// before the pid was added. `Some(pid)` for the first form, `Some(None)` for the second.
fn temp_writer(name: &str) -> Option<Option<i32>> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (head, rand) = rest.rsplit_once('.')?;
    if rand.len() != 12 || !rand.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if id::is_legacy_id(head) {
        return Some(None);
    }
    let (id_part, pid) = head.rsplit_once('.')?;
    let pid = pid.parse::<i32>().ok().filter(|p| *p > 0)?;
    id::is_legacy_id(id_part).then_some(Some(pid))
}

/// Whether `pid` names no running process on this host.
fn pid_is_dead(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// What a session path holds, as a compare-and-set sees it.
enum Stored {
    /// No live record: missing, expired, unreadable as a session (not a regular file, too large).
    Missing,
    /// A live tombstone: the session was destroyed less than a lifetime ago.
    Tombstone,
    /// A live record.
    Data(String),
}

/// FNV-1a: a hash every process computes alike (std's hasher is randomly seeded per process).
fn stripe_of(id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % LOCK_STRIPES
}

/// An exclusive `flock` held until dropped (closing the descriptor releases it).
struct Locked(#[allow(dead_code)] File);

/// Whether an I/O error means "no session here": missing, a symlink (`ELOOP`), or a unix
/// socket (`ENXIO` when opened).
fn is_no_session(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO))
}

impl Inner {
    /// Checks the directory before every operation: recreates it (mode 0700) when it
    /// disappeared, and refuses it when it is not a directory, another user owns it, or group or
    /// others can write to it (they could plant or swap session files). After (re)finding it,
    /// lets the next operation sweep crash-orphaned temp files again.
    fn ensure_dir(&self) -> Result<()> {
        let dir = self.dir.display();
        let dir_err =
            |e: io::Error| SessionError::Io(format!("session directory {dir} cannot be used: {e}"));
        match fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => {
                // SAFETY: geteuid has no preconditions and cannot fail.
                let me = unsafe { libc::geteuid() };
                if m.uid() != me {
                    return Err(SessionError::Io(format!(
                        "session directory {dir} is owned by uid {}, not by this process's user \
                         (uid {me}); sessions must live in a directory only this user controls",
                        m.uid()
                    )));
                }
                if m.permissions().mode() & 0o022 != 0 {
                    return Err(SessionError::Io(format!(
                        "session directory {dir} is writable by group or others (mode {:o}); \
                         run chmod 700 on it, sessions must not be readable or plantable by other users",
                        m.permissions().mode() & 0o777
                    )));
                }
            }
            Ok(_) => {
                return Err(SessionError::Io(format!(
                    "session directory {dir} cannot be used: the path exists and is not a directory"
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(dir_err)?;
                // A recreated directory: anything found in it later is swept again.
                self.swept.store(false, Ordering::Release);
            }
            Err(e) => return Err(dir_err(e)),
        }
        Ok(())
    }

    /// Removes temp files a crashed writer left: older than [`TEMP_MAX_AGE_MS`], or written by
    /// a pid that no longer runs here and older than [`TEMP_DEAD_WRITER_AGE_MS`]. Best effort.
    fn sweep_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        // Real time, not the session clock: a temp file's age is about crashes, not lifetimes.
        let now = ms_of(SystemTime::now());
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(writer) = name.to_str().and_then(temp_writer) else {
                continue;
            };
            if self.temp_is_orphaned(&entry.path(), writer, now) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn temp_is_orphaned(&self, path: &Path, writer: Option<i32>, now: i64) -> bool {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        if !meta.file_type().is_file() {
            return false;
        }
        let age = now - mtime_ms(&meta);
        age > TEMP_MAX_AGE_MS || (age > TEMP_DEAD_WRITER_AGE_MS && writer.is_some_and(pid_is_dead))
    }

    /// An I/O error naming the directory (an `EACCES` is then actionable: which directory).
    fn io_err(&self, op: &str, id: &str, e: io::Error) -> SessionError {
        SessionError::io(
            op,
            id,
            format!("{e} (session directory {})", self.dir.display()),
        )
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn expired(&self, mtime_ms: i64, now: i64) -> bool {
        now - mtime_ms > self.lifetime_ms
    }

    /// Opens a session file for reading without following a symlink and without blocking: a
    /// FIFO opens at once (and is then refused by the regular-file check).
    fn open_session(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
    }

    fn read(&self, id: &str) -> Result<String> {
        Ok(match self.stored(id, "read")? {
            Stored::Data(s) => s,
            Stored::Missing | Stored::Tombstone => String::new(),
        })
    }

    /// Takes the lock of `id`'s stripe, waiting for it (the operation's deadline bounds the wait).
    fn lock(&self, id: &str, op: &str) -> Result<Locked> {
        let path = self.dir.join(format!(".ostro-lock.{}", stripe_of(id)));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| self.io_err(op, id, e))?;
        loop {
            // SAFETY: the descriptor is open and owned by `f` for the whole call.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(Locked(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(self.io_err(op, id, e));
            }
        }
    }

    fn stored(&self, id: &str, op: &str) -> Result<Stored> {
        let f = match Self::open_session(&self.path(id)) {
            Ok(f) => f,
            Err(e) if is_no_session(&e) => return Ok(Stored::Missing),
            Err(e) => return Err(self.io_err(op, id, e)),
        };
        let meta = f.metadata().map_err(|e| self.io_err(op, id, e))?;
        // fstat before any read: only a regular file within the size limit is read at all.
        if !meta.is_file() || meta.len() > self.max_file_bytes {
            return Ok(Stored::Missing);
        }
        let mtime = meta.modified().map(ms_of).unwrap_or(0);
        if self.expired(mtime, self.clock.now_ms()) {
            return Ok(Stored::Missing);
        }
        if meta.len() == 0 {
            return Ok(Stored::Tombstone);
        }
        let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // Bounded again in case the file grows between the fstat and the read.
        f.take(self.max_file_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| self.io_err(op, id, e))?;
        if buf.len() as u64 > self.max_file_bytes {
            return Ok(Stored::Missing);
        }
        if buf.is_empty() {
            // Emptied between the fstat and the read: a tombstone written by a plain write.
            return Ok(Stored::Tombstone);
        }
        // Invalid UTF-8 (a disk error, an edit by hand) is decoded lossily: bad bytes inside a
        // string value become U+FFFD and the rest of the session, id included, is kept. Only
        // damage to the JSON structure itself makes the payload corrupt (an empty session).
        Ok(Stored::Data(match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// Read, compare, temp write and rename under the id's lock.
    fn write_if_unchanged(&self, id: &str, data: &str, previous: &str) -> Result<CasOutcome> {
        let _lock = self.lock(id, "write")?;
        let current = match self.stored(id, "write")? {
            Stored::Tombstone => return Ok(CasOutcome::Conflict(String::new())),
            Stored::Missing => String::new(),
            Stored::Data(s) => s,
        };
        if current != previous {
            return Ok(CasOutcome::Conflict(current));
        }
        self.write(id, data)?;
        Ok(CasOutcome::Written)
    }

    fn write(&self, id: &str, data: &str) -> Result<()> {
        self.write_at(id, data, 0)
    }

    /// Writes `data` with an mtime `backdate_ms` before now (0: now, stamped by the OS unless a
    /// test clock runs).
    fn write_at(&self, id: &str, data: &str, backdate_ms: i64) -> Result<()> {
        let rand = id::random_alnum(12)?;
        // The pid lets a later process tell a crashed writer's temp file from a live one.
        let tmp = self
            .dir
            .join(format!(".{id}.{}.{rand}.tmp", std::process::id()));
        let result = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(data.as_bytes())?;
            if self.durable {
                f.sync_all()?;
            }
            fs::rename(&tmp, self.path(id))?;
            // A test clock's time is stamped after the rename, through the still-open file: on
            // the temp file a fake, long-past mtime made an in-flight write look orphaned to
            // the temp sweep, which removed it under the rename (ENOENT).
            if self.stamp_mtime || backdate_ms != 0 {
                f.set_modified(time_of(self.clock.now_ms() - backdate_ms))?;
            }
            drop(f);
            if self.durable {
                // The rename itself is durable only once the directory is synced.
                self.sync_dir()?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Leave the previous payload intact and no temp file behind.
            let _ = fs::remove_file(&tmp);
            return Err(self.io_err("write", id, e));
        }
        Ok(())
    }

    fn touch(&self, id: &str) -> Result<bool> {
        let f = match Self::open_session(&self.path(id)) {
            Ok(f) => f,
            Err(e) if is_no_session(&e) => return Ok(false),
            Err(e) => return Err(self.io_err("touch", id, e)),
        };
        let meta = f.metadata().map_err(|e| self.io_err("touch", id, e))?;
        let now = self.clock.now_ms();
        // An empty file is a tombstone: a touch never revives it.
        if !meta.is_file()
            || meta.len() == 0
            || self.expired(meta.modified().map(ms_of).unwrap_or(0), now)
        {
            return Ok(false);
        }
        f.set_modified(time_of(now))
            .map_err(|e| self.io_err("touch", id, e))?;
        Ok(true)
    }

    /// Replaces a record by a tombstone (an empty file, see the module docs) under the id's
    /// lock, so a compare-and-set that read the record cannot rename its write over it. An id
    /// with no file gets no tombstone: nothing was there to bring back.
    fn destroy(&self, id: &str) -> Result<()> {
        let _lock = self.lock(id, "destroy")?;
        match fs::symlink_metadata(self.path(id)) {
            Ok(m) if m.file_type().is_file() => self.write_at(id, "", self.tombstone_backdate_ms),
            Ok(_) => match fs::remove_file(self.path(id)) {
                // Not a regular file (a planted symlink or FIFO): it never held a session.
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.io_err("destroy", id, e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err("destroy", id, e)),
        }
    }

    fn block_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{BLOCK_PREFIX}{id}"))
    }

    /// The token and expiry in the block file of `id`, if there is a readable one.
    fn block_of(&self, id: &str) -> Option<(String, i64)> {
        let mut text = String::new();
        Self::open_session(&self.block_path(id))
            .ok()?
            .take(256)
            .read_to_string(&mut text)
            .ok()?;
        let (token, until) = text.trim().split_once(' ')?;
        Some((token.to_owned(), until.parse().ok()?))
    }

    fn lock_session(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        let _stripe = self.lock(id, "lock")?;
        let now = self.clock.now_ms();
        if self.block_of(id).is_some_and(|(_, until)| until > now) {
            return Ok(None);
        }
        let token = crate::blocking::new_token()?;
        let until = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let path = self.block_path(id);
        let written = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)?;
            f.write_all(format!("{token} {until}").as_bytes())
        })();
        written.map_err(|e| self.io_err("lock", id, e))?;
        Ok(Some(token))
    }

    fn unlock_session(&self, id: &str, token: &str) -> Result<()> {
        let _stripe = self.lock(id, "unlock")?;
        if self.block_of(id).is_some_and(|(t, _)| t == token) {
            match fs::remove_file(self.block_path(id)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_err("unlock", id, e)),
            }
        }
        Ok(())
    }

    /// Removes the block file of `id` when its lock has expired (gc), under the stripe lock so
    /// that a lock taken meanwhile is kept.
    fn remove_expired_block(&self, id: &str) {
        let Ok(_stripe) = self.lock(id, "gc") else {
            return;
        };
        let now = self.clock.now_ms();
        match self.block_of(id) {
            Some((_, until)) if until > now => {}
            _ => {
                let _ = fs::remove_file(self.block_path(id));
            }
        }
    }

    fn gc(&self, secs: u64) -> Result<u64> {
        let now = self.clock.now_ms();
        let max_ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let entries = fs::read_dir(&self.dir).map_err(|e| {
            SessionError::Io(format!(
                "session gc failed to list the directory {}: {e}",
                self.dir.display()
            ))
        })?;
        let mut removed = 0u64;
        // read_dir streams entries, so memory stays flat however many files there are.
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(writer) = temp_writer(name) {
                if self.temp_is_orphaned(&entry.path(), writer, ms_of(SystemTime::now())) {
                    let _ = fs::remove_file(entry.path());
                }
                continue;
            }
            if let Some(id) = name.strip_prefix(BLOCK_PREFIX) {
                if id::is_legacy_id(id) {
                    self.remove_expired_block(id);
                }
                continue;
            }
            if !id::is_legacy_id(name) {
                continue;
            }
            // lstat: a symlink is never followed, and never counts as a session file.
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if !meta.file_type().is_file() {
                continue;
            }
            if now - mtime_ms(&meta) > max_ms && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        self.gc_user_index();
        Ok(removed)
    }

    // ----- the user index (see the module docs) --------------------------------------------

    fn users_dir(&self) -> PathBuf {
        self.dir.join(USERS_DIR)
    }

    fn user_dir(&self, user: &str) -> PathBuf {
        self.users_dir().join(hashed(b"user\0", user))
    }

    /// Records `id` in the index of the user a write names, atomically, when the entry changed.
    fn index_user(&self, id: &str, meta: &WriteMeta) -> Result<()> {
        let Some(user) = meta.user_id.as_deref() else {
            return Ok(());
        };
        let err = |e: io::Error| self.io_err("write", id, e);
        let dir = self.user_dir(user);
        let entry = dir.join(hashed(b"id\0", id));
        let old = read_entry(&entry);
        // A write without client details (no request in sight) keeps the entry's.
        if old.is_some() && meta.ip.is_none() && meta.user_agent.is_none() {
            return Ok(());
        }
        let text = serde_json::json!([id, meta.ip, meta.user_agent]).to_string();
        if old.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(err)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            id::random_alnum(12)?
        ));
        let result = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            fs::rename(&tmp, &entry)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        Ok(())
    }

    /// The entries of `user`'s index with their sessions' payloads (`""` when gone).
    fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let entries = match fs::read_dir(self.user_dir(user)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(SessionError::Io(format!(
                    "listing a user's sessions failed: {e} (session directory {})",
                    self.dir.display()
                )))
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some((id, ip, user_agent)) = read_entry(&entry.path()).and_then(|t| {
                serde_json::from_str::<(String, Option<String>, Option<String>)>(&t).ok()
            }) else {
                continue;
            };
            if id::check_storage_id(&id).is_err() {
                continue;
            }
            let payload = match self.stored(&id, "read")? {
                Stored::Data(p) => p,
                Stored::Missing | Stored::Tombstone => String::new(),
            };
            let at = fs::symlink_metadata(self.path(&id))
                .map(|m| mtime_ms(&m))
                .unwrap_or(0);
            out.push(UserRecord {
                id,
                payload,
                last_activity_ms: at,
                ip,
                user_agent,
            });
        }
        Ok(out)
    }

    /// Removes the entries of `ids` from `user`'s index, and the user's directory once empty.
    fn unlink_user(&self, user: &str, ids: &[String]) {
        let dir = self.user_dir(user);
        for id in ids {
            let _ = fs::remove_file(dir.join(hashed(b"id\0", id)));
        }
        // Fails while entries remain, as it should.
        let _ = fs::remove_dir(&dir);
    }

    /// Removes index entries whose session is gone, and crash-orphaned temp files. Best effort.
    fn gc_user_index(&self) {
        let Ok(users) = fs::read_dir(self.users_dir()) else {
            return;
        };
        let now = ms_of(SystemTime::now());
        for user in users.flatten() {
            let Ok(entries) = fs::read_dir(user.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name();
                if name.to_str().is_some_and(|n| n.starts_with('.')) {
                    let old = fs::symlink_metadata(&path)
                        .is_ok_and(|m| now - mtime_ms(&m) > TEMP_MAX_AGE_MS);
                    if old {
                        let _ = fs::remove_file(&path);
                    }
                    continue;
                }
                let live = read_entry(&path)
                    .and_then(|t| {
                        serde_json::from_str::<(String, Option<String>, Option<String>)>(&t).ok()
                    })
                    .filter(|(id, _, _)| id::check_storage_id(id).is_ok())
                    .is_some_and(|(id, _, _)| {
                        matches!(self.stored(&id, "gc"), Ok(Stored::Data(_)))
                    });
                if !live {
                    let _ = fs::remove_file(&path);
                }
            }
            let _ = fs::remove_dir(user.path());
        }
    }
}

/// The directory of the user index, inside the session directory.
const USERS_DIR: &str = ".ostro-users";

/// A file name for `value`: 32 hex digits of SHA-256 (user ids may hold any character).
fn hashed(label: &[u8], value: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let digest = Sha256::new()
        .chain_update(label)
        .chain_update(value.as_bytes())
        .finalize();
    let mut out = String::with_capacity(32);
    for b in digest.iter().take(16) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A small index entry's text, without following a symlink; `None` when unreadable.
fn read_entry(path: &Path) -> Option<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > 4096 {
        return None;
    }
    let mut text = String::new();
    f.take(4096).read_to_string(&mut text).ok()?;
    Some(text)
}

#[async_trait]
impl SessionHandler for FileSessionHandler {
    async fn read(&self, id: &str) -> Result<String> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run("read", move |i| i.read(&id)).await
    }
    async fn write(&self, id: &str, data: &str, meta: &WriteMeta) -> Result<()> {
        id::check_storage_id(id)?;
        let (id, data, meta) = (id.to_owned(), data.to_owned(), meta.clone());
        self.run("write", move |i| {
            i.write(&id, &data)?;
            i.index_user(&id, &meta)
        })
        .await
    }
    async fn destroy(&self, id: &str) -> Result<()> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run("destroy", move |i| i.destroy(&id)).await
    }
    async fn gc(&self, max_lifetime_secs: u64) -> Result<u64> {
        self.run("gc", move |i| i.gc(max_lifetime_secs)).await
    }
    async fn touch(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run("touch", move |i| i.touch(&id)).await
    }
    async fn is_tombstone(&self, id: &str) -> Result<bool> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run("read", move |i| {
            Ok(matches!(i.stored(&id, "read")?, Stored::Tombstone))
        })
        .await
    }
    async fn user_sessions(&self, user: &str) -> Result<Vec<UserRecord>> {
        let user = user.to_owned();
        self.run("user sessions", move |i| i.user_sessions(&user))
            .await
    }
    async fn unlink_user(&self, user: &str, ids: &[String]) -> Result<()> {
        let (user, ids) = (user.to_owned(), ids.to_vec());
        self.run("user sessions", move |i| {
            i.unlink_user(&user, &ids);
            Ok(())
        })
        .await
    }
    async fn write_if_unchanged(
        &self,
        id: &str,
        data: &str,
        previous: &str,
        meta: &WriteMeta,
    ) -> Result<CasOutcome> {
        id::check_storage_id(id)?;
        let (id, data, previous, meta) = (
            id.to_owned(),
            data.to_owned(),
            previous.to_owned(),
            meta.clone(),
        );
        self.run("write", move |i| {
            let outcome = i.write_if_unchanged(&id, &data, &previous)?;
            if outcome == CasOutcome::Written {
                i.index_user(&id, &meta)?;
            }
            Ok(outcome)
        })
        .await
    }
    fn supports_cas(&self) -> bool {
        true
    }
    async fn lock(&self, id: &str, ttl_ms: u64) -> Result<Option<String>> {
        id::check_storage_id(id)?;
        let id = id.to_owned();
        self.run("lock", move |i| i.lock_session(&id, ttl_ms)).await
    }
    async fn unlock(&self, id: &str, token: &str) -> Result<()> {
        id::check_storage_id(id)?;
        let (id, token) = (id.to_owned(), token.to_owned());
        self.run("unlock", move |i| i.unlock_session(&id, &token))
            .await
    }
    fn supports_lock(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_past_its_deadline_times_out_and_keeps_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let h = FileSessionHandler::with_options(
            dir.path().join("s"),
            120.0,
            None,
            FileOptions {
                timeout_ms: 20,
                ..FileOptions::default()
            },
        )
        .unwrap();
        // Operations blocked (as on a hung disk) until released; no sleeps, no timing margin.
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(std::sync::Mutex::new(blocked));
        async fn stuck(
            h: &FileSessionHandler,
            blocked: &Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
        ) -> Result<String> {
            let blocked = Arc::clone(blocked);
            h.run("read", move |_| {
                let _ = blocked.lock().map(|rx| rx.recv());
                Ok(String::new())
            })
            .await
        }
        for _ in 0..MAX_IN_FLIGHT {
            let r = stuck(&h, &blocked).await;
            assert!(
                matches!(&r, Err(SessionError::Timeout(m)) if m.contains("session file read did not complete within 20 ms")),
                "{r:?}"
            );
        }
        // Every slot is still held by a blocked thread: the next operation times out too,
        // rather than adding threads.
        assert!(matches!(
            h.read(&"a".repeat(40)).await,
            Err(SessionError::Timeout(_))
        ));
        for _ in 0..MAX_IN_FLIGHT {
            release.send(()).unwrap();
        }
        // The released threads return their slots as they finish.
        let mut r = h.read(&"a".repeat(40)).await;
        for _ in 0..1000 {
            if !matches!(r, Err(SessionError::Timeout(_))) {
                break;
            }
            r = h.read(&"a".repeat(40)).await;
        }
        assert_eq!(r.unwrap(), "");
    }

    #[test]
    fn temp_names() {
        let id = "a".repeat(40);
        let is_temp_name = |n: &str| temp_writer(n).is_some();
        assert!(is_temp_name(&format!(".{id}.abcdefABCD12.tmp")));
        assert_eq!(
            temp_writer(&format!(".{id}.4242.abcdefABCD12.tmp")),
            Some(Some(4242))
        );
        assert_eq!(temp_writer(&format!(".{id}.x.abcdefABCD12.tmp")), None);
        assert_eq!(temp_writer(&format!(".{id}.0.abcdefABCD12.tmp")), None);
        assert!(!is_temp_name(&format!(".{id}.abc.tmp")));
        assert!(!is_temp_name(".gitignore"));
        assert!(!is_temp_name(&id));
    }
}
