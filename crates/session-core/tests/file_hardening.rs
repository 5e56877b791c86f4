#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The file driver against hostile and odd directory contents (issue 10, defect 5 and the file
//! resilience gaps): FIFOs, sockets, directories and huge files at session paths, a directory
//! that disappears or changes hands, crash-orphaned temp files, invalid UTF-8 and `durable`.

use ostro_session_core::handlers::file::FileOptions;
use ostro_session_core::{
    FileSessionHandler, Session, SessionError, SessionHandler, SessionOptions, WriteMeta,
};
use serde_json::json;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

fn sid(n: u32) -> String {
    format!("{n:0>40}")
        .chars()
        .map(|c| if c == '0' { 'F' } else { c })
        .collect()
}

fn dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("sessions");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    (t, d)
}

fn handler(d: &Path) -> FileSessionHandler {
    FileSessionHandler::new(d, 120.0, None).unwrap()
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_fifos_read_as_no_session_and_do_not_take_the_slots() {
    let (_t, d) = dir();
    let h = handler(&d);
    for n in 1..=9 {
        mkfifo(&d.join(sid(n)));
    }
    // More FIFOs than in-flight slots (8): with a blocking open, the ninth read and every
    // later operation would wait forever.
    let reads: Vec<_> = (1..=9)
        .map(|n| {
            let h = h.clone();
            tokio::spawn(async move { h.read(&sid(n)).await })
        })
        .collect();
    for r in reads {
        // A bound only so that the old blocking open fails the test instead of hanging it.
        let r = tokio::time::timeout(Duration::from_secs(30), r).await;
        assert_eq!(r.expect("a FIFO read blocked").unwrap().unwrap(), "");
    }
    assert!(
        !h.touch(&sid(1)).await.unwrap(),
        "a FIFO is no record to touch"
    );
    h.write(&sid(20), "{\"a\":1}", &WriteMeta::default())
        .await
        .unwrap();
    assert_eq!(h.read(&sid(20)).await.unwrap(), "{\"a\":1}");
}

#[tokio::test]
async fn a_socket_or_a_directory_at_a_session_path_reads_as_no_session() {
    let (_t, d) = dir();
    let h = handler(&d);
    let _sock = std::os::unix::net::UnixListener::bind(d.join(sid(1))).unwrap();
    fs::create_dir(d.join(sid(2))).unwrap();
    for n in [1, 2] {
        assert_eq!(h.read(&sid(n)).await.unwrap(), "");
        assert!(!h.touch(&sid(n)).await.unwrap());
    }
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_not_read() {
    let (_t, d) = dir();
    let h = handler(&d);
    // 100 MiB, sparse: the old driver allocated and read all of it before the engine refused it.
    let f = fs::File::create(d.join(sid(1))).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    drop(f);
    assert_eq!(h.read(&sid(1)).await.unwrap(), "");

    // The limit is exact: at it the file is read, one byte over it is not.
    let small = FileSessionHandler::with_options(
        &d,
        120.0,
        None,
        FileOptions {
            max_file_bytes: 16,
            ..FileOptions::default()
        },
    )
    .unwrap();
    fs::write(d.join(sid(2)), "{\"a\":\"12345678\"}").unwrap(); // 16 bytes
    fs::write(d.join(sid(3)), "{\"a\":\"123456789\"}").unwrap(); // 17 bytes
    assert_eq!(small.read(&sid(2)).await.unwrap(), "{\"a\":\"12345678\"}");
    assert_eq!(small.read(&sid(3)).await.unwrap(), "");
}

#[tokio::test]
async fn the_directory_is_recreated_when_it_disappears() {
    let (_t, d) = dir();
    let h = handler(&d);
    h.write(&sid(1), "{}", &WriteMeta::default()).await.unwrap();
    fs::remove_dir_all(&d).unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "");
    h.write(&sid(1), "{\"b\":2}", &WriteMeta::default())
        .await
        .unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "{\"b\":2}");
    assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
}

#[tokio::test]
async fn a_directory_opened_up_or_given_away_after_start_is_refused_naming_it() {
    let (_t, d) = dir();
    let h = handler(&d);
    h.write(&sid(1), "{}", &WriteMeta::default()).await.unwrap();

    fs::set_permissions(&d, fs::Permissions::from_mode(0o770)).unwrap();
    let e = h.read(&sid(1)).await.unwrap_err();
    assert!(matches!(e, SessionError::Io(_)), "{e:?}");
    assert!(e.to_string().contains(&d.display().to_string()), "{e}");
    assert!(e.to_string().contains("writable by group or others"), "{e}");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "{}");

    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let other = if me == 65534 { 65533 } else { 65534 };
    std::os::unix::fs::chown(&d, Some(other), None).unwrap();
    let e = h
        .write(&sid(2), "{}", &WriteMeta::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&d.display().to_string()), "{e}");
    assert!(
        e.to_string().contains(&format!("owned by uid {other}")),
        "{e}"
    );
    assert!(
        !d.join(sid(2)).exists(),
        "nothing written into a foreign directory"
    );
    std::os::unix::fs::chown(&d, Some(me), None).unwrap();
}

fn age(p: &Path, secs: u64) {
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

/// Waits (bounded) for `cond`: the sweep runs off the operation's path.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn crash_orphaned_temp_files_are_removed_on_first_use() {
    let (_t, d) = dir();
    // A pid that ran and is gone.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let me = std::process::id();
    let id = sid(1);
    let old_format = d.join(format!(".{id}.abcdefABCD12.tmp"));
    let dead_writer = d.join(format!(".{id}.{dead_pid}.abcdefABCD12.tmp"));
    let dead_but_fresh = d.join(format!(".{id}.{dead_pid}.zzzzzzZZZZ12.tmp"));
    let live_writer = d.join(format!(".{id}.{me}.abcdefABCD12.tmp"));
    let live_but_stale = d.join(format!(".{id}.{me}.zzzzzzZZZZ12.tmp"));
    let not_ours = d.join(".gitkeep.tmp");
    for p in [
        &old_format,
        &dead_writer,
        &dead_but_fresh,
        &live_writer,
        &live_but_stale,
        &not_ours,
    ] {
        fs::write(p, "x").unwrap();
    }
    age(&old_format, 120);
    age(&dead_writer, 10);
    age(&live_writer, 10);
    age(&live_but_stale, 120);
    age(&not_ours, 100_000);

    let h = handler(&d);
    assert_eq!(h.read(&id).await.unwrap(), "");
    eventually("orphans removed", || {
        !old_format.exists() && !dead_writer.exists() && !live_but_stale.exists()
    })
    .await;
    assert!(
        dead_but_fresh.exists(),
        "a temp file seconds old may still be written"
    );
    assert!(live_writer.exists(), "a running writer's temp file is kept");
    assert!(not_ours.exists(), "only our own temp names are touched");
}

#[tokio::test]
async fn invalid_utf8_inside_a_string_keeps_the_session_and_its_id() {
    let (_t, d) = dir();
    let h = handler(&d);
    let id = sid(7);
    let mut raw = b"{\"_token\":\"t\",\"user\":\"alice\",\"note\":\"caf".to_vec();
    raw.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    raw.extend_from_slice(b"\"}");
    fs::write(d.join(&id), raw).unwrap();

    let mut s = Session::new("s", Some(&id), SessionOptions::default()).unwrap();
    s.start(&h).await.unwrap();
    assert_eq!(s.id(), id);
    assert!(s.record_exists(), "the record is still there: no new id");
    assert_eq!(s.get("user"), Some(&json!("alice")));
    assert_eq!(s.get("note"), Some(&json!("caf\u{FFFD}(\u{FFFD}")));
}

#[tokio::test]
async fn durable_writes_and_destroys_work_and_timeouts_are_checked() {
    let (_t, d) = dir();
    let h = FileSessionHandler::with_options(
        &d,
        120.0,
        None,
        FileOptions {
            durable: true,
            ..FileOptions::default()
        },
    )
    .unwrap();
    h.write(&sid(1), "{\"d\":1}", &WriteMeta::default())
        .await
        .unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "{\"d\":1}");
    h.destroy(&sid(1)).await.unwrap();
    assert_eq!(h.read(&sid(1)).await.unwrap(), "");
    for bad in [0, 600_001] {
        let e = FileSessionHandler::with_options(
            &d,
            120.0,
            None,
            FileOptions {
                timeout_ms: bad,
                ..FileOptions::default()
            },
        )
        .err()
        .unwrap();
        assert!(matches!(e, SessionError::InvalidOption(_)), "{e:?}");
    }
}
