//! A user's sessions (issue 13): linking, listing by handle, ending one or all but the current,
//! on every driver that keeps an index, and the refusal of those that cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ostro_session_core::handle::session_handle;
use ostro_session_core::users::{self, ListOptions};
use ostro_session_core::{
    ArraySessionHandler, Session, SessionError, SessionHandler, SessionOptions, WriteMeta,
};
use serde_json::json;
use std::sync::Arc;

const KEY: &str = "app-key-one-0123456789abcdefghijkl";

fn meta(i: usize) -> WriteMeta {
    WriteMeta {
        ip: Some(format!("10.0.0.{i}")),
        user_agent: Some(format!("agent {i}")),
        user_id: None,
    }
}

fn opts(current: Option<&str>) -> ListOptions {
    ListOptions {
        key: KEY.into(),
        max_payload_bytes: 1 << 20,
        current: current.map(Into::into),
        ..ListOptions::default()
    }
}

/// A new session linked to `user` (or none), saved with request metadata `i`.
async fn login(h: &dyn SessionHandler, user: Option<&str>, i: usize) -> Session {
    let mut s = Session::new("n", None, SessionOptions::default()).unwrap();
    s.start(h).await.unwrap();
    s.put("i", json!(i)).unwrap();
    s.set_user(user).unwrap();
    s.save(h, &meta(i)).await.unwrap();
    s
}

async fn reload(h: &dyn SessionHandler, id: &str) -> Session {
    let mut s = Session::new("n", Some(id), SessionOptions::default()).unwrap();
    s.start(h).await.unwrap();
    s
}

/// The whole story on one driver: 3 sessions of user 7, one of user 8, one anonymous.
async fn scenario(h: Arc<dyn SessionHandler>) {
    let h = &*h;
    let mut ids = Vec::new();
    for (i, u) in [Some("7"), Some("7"), Some("7"), Some("8"), None]
        .into_iter()
        .enumerate()
    {
        ids.push(login(h, u, i).await.id().to_owned());
    }
    let list = users::sessions_of(h, "7", &opts(Some(&ids[1])))
        .await
        .unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let mut handles: Vec<&str> = list.iter().map(|s| s.handle.as_str()).collect();
    handles.sort_unstable();
    let mut want: Vec<String> = ids[..3].iter().map(|id| session_handle(KEY, id)).collect();
    want.sort_unstable();
    assert_eq!(handles, want);
    for s in &list {
        assert!(!ids.iter().any(|id| s.handle.contains(id.as_str())));
        assert_eq!(s.current, s.handle == session_handle(KEY, &ids[1]));
        let i = ids
            .iter()
            .position(|id| session_handle(KEY, id) == s.handle)
            .unwrap();
        assert_eq!(s.ip.as_deref(), Some(format!("10.0.0.{i}").as_str()));
        assert_eq!(s.user_agent.as_deref(), Some(format!("agent {i}").as_str()));
        assert!(s.created_at.is_some() && s.last_activity_ms > 0);
    }
    let eight = users::sessions_of(h, "8", &opts(None)).await.unwrap();
    assert_eq!(eight.len(), 1);
    assert!(users::sessions_of(h, "9", &opts(None))
        .await
        .unwrap()
        .is_empty());

    // A handle made under another app key is no handle here; nor is another user's.
    let foreign = session_handle("app-key-two-0123456789abcdefghijkl", &ids[0]);
    assert!(!users::destroy_session(h, "7", &foreign, &opts(None))
        .await
        .unwrap());
    assert!(
        !users::destroy_session(h, "7", &eight[0].handle, &opts(None))
            .await
            .unwrap()
    );
    assert_ne!(h.read(&ids[0]).await.unwrap(), "");
    assert_ne!(h.read(&ids[3]).await.unwrap(), "");

    // Ending one by its handle: the record is gone, the list shrinks.
    let h0 = session_handle(KEY, &ids[0]);
    assert!(users::destroy_session(h, "7", &h0, &opts(None))
        .await
        .unwrap());
    assert_eq!(h.read(&ids[0]).await.unwrap(), "");
    assert!(!users::destroy_session(h, "7", &h0, &opts(None))
        .await
        .unwrap());
    assert_eq!(
        users::sessions_of(h, "7", &opts(None)).await.unwrap().len(),
        2
    );

    // Moving a session to user 8 takes it off user 7's list.
    let mut s = reload(h, &ids[2]).await;
    assert_eq!(s.user(), Some("7"));
    s.set_user(Some("8")).unwrap();
    s.save(h, &meta(2)).await.unwrap();
    assert_eq!(
        users::sessions_of(h, "7", &opts(None)).await.unwrap().len(),
        1
    );
    assert_eq!(
        users::sessions_of(h, "8", &opts(None)).await.unwrap().len(),
        2
    );

    // "Log out other devices": two more of user 7, then all but the current one end.
    let a = login(h, Some("7"), 5).await.id().to_owned();
    let b = login(h, Some("7"), 6).await.id().to_owned();
    let ended = users::destroy_user_sessions(h, "7", Some(&ids[1]), &opts(None))
        .await
        .unwrap();
    let mut want = vec![session_handle(KEY, &a), session_handle(KEY, &b)];
    let mut got = ended;
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(
        got, want,
        "the handles of the sessions ended, never the ids"
    );
    let left = users::sessions_of(h, "7", &opts(Some(&ids[1])))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].current);
    assert_eq!(h.read(&a).await.unwrap(), "");
    assert_eq!(h.read(&b).await.unwrap(), "");
    assert_ne!(h.read(&ids[1]).await.unwrap(), "");
    // User 8's and the anonymous session are untouched.
    assert_ne!(h.read(&ids[3]).await.unwrap(), "");
    assert_ne!(h.read(&ids[4]).await.unwrap(), "");

    // Logout (invalidate) unlinks: the new id is anonymous, the old record gone.
    let mut s = reload(h, &ids[1]).await;
    s.invalidate(h).await.unwrap();
    s.save(h, &meta(1)).await.unwrap();
    assert!(users::sessions_of(h, "7", &opts(None))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.user(), None);
}

#[tokio::test]
async fn array() {
    scenario(Arc::new(ArraySessionHandler::new(120.0, None).unwrap())).await;
}

#[cfg(feature = "file")]
#[tokio::test]
async fn file() {
    let dir = tempfile::tempdir().unwrap();
    let h = ostro_session_core::FileSessionHandler::new(dir.path().join("s"), 120.0, None).unwrap();
    scenario(Arc::new(h.clone())).await;
    // gc removes index entries whose session is gone.
    let idx = dir.path().join("s/.ostro-users");
    let entries = |p: &std::path::Path| -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|u| std::fs::read_dir(u.path()).map_or(0, |e| e.count()))
                    .sum()
            })
            .unwrap_or(0)
    };
    let before = entries(&idx);
    assert!(before >= 2, "user 8's entries exist: {before}");
    for s in users::sessions_of(&h, "8", &opts(None)).await.unwrap() {
        assert!(users::destroy_session(&h, "8", &s.handle, &opts(None))
            .await
            .unwrap());
    }
    let mut again = login(&h, Some("8"), 9).await;
    again.invalidate(&h).await.unwrap();
    assert!(
        entries(&idx) >= 1,
        "the destroyed session's entry is still there"
    );
    h.gc(7200).await.unwrap();
    assert_eq!(entries(&idx), 0);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite").to_string_lossy().into_owned();
    let h = ostro_session_core::SqliteSessionHandler::new(&path, "sessions", 120.0, 5000, None)
        .unwrap();
    scenario(Arc::new(h)).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis() {
    use ostro_session_core::handlers::redis::{RedisConnection, RedisOptions};
    let server = support::servers::RedisServer::start();
    let h = ostro_session_core::RedisSessionHandler::new(
        &RedisConnection::Url(server.url()),
        RedisOptions::default(),
    )
    .unwrap();
    scenario(Arc::new(h)).await;
}

// Two requests load one session; one links the user, the other changes data: the save that
// comes second replays onto the first's record and the link survives.
#[tokio::test]
async fn a_link_survives_a_concurrent_save() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let id = login(&h, None, 0).await.id().to_owned();
    let mut a = reload(&h, &id).await;
    let mut b = reload(&h, &id).await;
    a.set_user(Some("7")).unwrap();
    a.save(&h, &meta(0)).await.unwrap();
    b.put("cart", json!(["x"])).unwrap();
    b.save(&h, &meta(0)).await.unwrap();
    let s = reload(&h, &id).await;
    assert_eq!(s.user(), Some("7"));
    assert_eq!(s.get("cart"), Some(&json!(["x"])));
    assert_eq!(
        users::sessions_of(&h, "7", &opts(None))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn user_attribute_links_at_save() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let o = SessionOptions {
        user_attribute: Some("auth.id".into()),
        ..SessionOptions::default()
    };
    let mut s = Session::new("n", None, o.clone()).unwrap();
    s.start(&h).await.unwrap();
    s.put("auth", json!({"id": 42})).unwrap();
    s.save(&h, &meta(0)).await.unwrap();
    assert_eq!(s.user(), Some("42"));
    assert_eq!(
        users::sessions_of(&h, "42", &opts(None))
            .await
            .unwrap()
            .len(),
        1
    );
    // The link is not app data: all() does not show it, put() refuses it.
    assert!(!s.all().contains_key("_user"));
    assert!(matches!(
        s.put("_user", json!("9")),
        Err(SessionError::Value(_))
    ));
    let mut s = Session::new("n", Some(s.id()), o).unwrap();
    s.start(&h).await.unwrap();
    s.forget("auth");
    s.save(&h, &meta(0)).await.unwrap();
    assert_eq!(s.user(), None);
    assert!(users::sessions_of(&h, "42", &opts(None))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn bad_input_is_refused() {
    let h = ArraySessionHandler::new(120.0, None).unwrap();
    let mut s = Session::new("n", None, SessionOptions::default()).unwrap();
    assert!(matches!(s.set_user(Some("")), Err(SessionError::Value(_))));
    assert!(matches!(
        s.set_user(Some(&"x".repeat(256))),
        Err(SessionError::Value(_))
    ));
    assert!(matches!(
        users::sessions_of(&h, "", &opts(None)).await,
        Err(SessionError::Value(_))
    ));
    assert!(matches!(
        users::destroy_session(&h, "7", "not-a-handle", &opts(None)).await,
        Err(SessionError::InvalidOption(_))
    ));
}

#[cfg(feature = "memcached")]
#[tokio::test]
async fn memcached_and_cookie_cannot_enumerate() {
    use ostro_session_core::handlers::memcached::MemcachedOptions;
    // No server is needed: the refusal comes before any I/O.
    let m = ostro_session_core::MemcachedSessionHandler::new(
        &["127.0.0.1:1".to_owned()],
        MemcachedOptions::default(),
    )
    .unwrap();
    let e = users::sessions_of(&m, "7", &opts(None)).await.unwrap_err();
    assert_eq!(e.code(), "ERR_SESSION_UNSUPPORTED");
    assert!(
        e.to_string().contains("the memcached session driver"),
        "{e}"
    );
    let e = users::destroy_user_sessions(&m, "7", None, &opts(None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ERR_SESSION_UNSUPPORTED");
}

/// The database driver on the machine's servers, in a table of its own, dropped afterwards
/// with the server's command-line client (also when the test panics).
#[cfg(any(feature = "postgres", feature = "mysql"))]
struct DbTable {
    url: String,
    name: String,
    drop_cmd: Vec<String>,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl DbTable {
    fn new(postgres: bool) -> Self {
        let name = format!(
            "ostro_users_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let (url, drop_cmd) = if postgres {
            let url = std::env::var("OSTRO_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let cmd = vec![
                "psql".into(),
                url.clone(),
                "-X".into(),
                "-q".into(),
                "-c".into(),
                format!("DROP TABLE IF EXISTS \"{name}\""),
            ];
            (url, cmd)
        } else {
            let url = std::env::var("OSTRO_TEST_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
            let cmd = [
                "mariadb",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-D",
                "test",
                "-e",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .chain([format!("DROP TABLE IF EXISTS `{name}`")])
            .collect();
            (url, cmd)
        };
        Self {
            url,
            name,
            drop_cmd,
        }
    }

    fn handler(&self) -> ostro_session_core::DatabaseSessionHandler {
        use ostro_session_core::handlers::database::DatabaseOptions;
        ostro_session_core::DatabaseSessionHandler::new(
            &self.url,
            DatabaseOptions {
                table: self.name.clone(),
                ..DatabaseOptions::default()
            },
            None,
        )
        .unwrap()
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Drop for DbTable {
    fn drop(&mut self) {
        let out = std::process::Command::new(&self.drop_cmd[0])
            .args(&self.drop_cmd[1..])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) && !std::thread::panicking() {
            panic!("could not drop the test table {}: {out:?}", self.name);
        }
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres() {
    let t = DbTable::new(true);
    scenario(Arc::new(t.handler())).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql() {
    let t = DbTable::new(false);
    scenario(Arc::new(t.handler())).await;
}
