//! The session engine of `@ostro/session`: Laravel-style session attributes (dot paths, flash
//! data, CSRF tokens, id protection), a payload format compatible with `@ostro/session` 1.x, and
//! storage drivers behind one [`SessionHandler`] trait. No Node is involved: the napi binding
//! lives in another crate.
//!
//! ```
//! use ostro_session_core::{ArraySessionHandler, Session, SessionOptions, WriteMeta};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let handler = ArraySessionHandler::new(120.0, None).unwrap();
//! let mut s = Session::new("ostro_session", None, SessionOptions::default()).unwrap();
//! s.start(&handler).await.unwrap();
//! s.put("user.name", serde_json::json!("Ada")).unwrap();
//! s.save(&handler, &WriteMeta::default()).await.unwrap();
//!
//! let mut again = Session::new("ostro_session", Some(s.id()), SessionOptions::default()).unwrap();
//! again.start(&handler).await.unwrap();
//! assert_eq!(again.get("user.name"), Some(&serde_json::json!("Ada")));
//! # });
//! ```
#![warn(missing_docs)]

pub mod attributes;
pub mod blocking;
pub mod clock;
pub mod cookie_header;
pub mod crypto;
pub mod error;
pub mod handle;
pub mod handler;
pub mod handlers;
pub mod id;
pub mod lazy;
pub mod lifecycle;
pub mod load;
pub mod ops;
pub mod payload;
pub mod session;
pub mod set_cookie;
pub mod token;
pub mod users;

pub use error::{Result, SessionError};
pub use handle::session_handle;
pub use handler::{CasOutcome, SessionHandler, UserRecord, WriteMeta};
pub use handlers::ArraySessionHandler;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use handlers::DatabaseSessionHandler;
#[cfg(feature = "file")]
pub use handlers::FileSessionHandler;
#[cfg(feature = "memcached")]
pub use handlers::MemcachedSessionHandler;
#[cfg(feature = "redis")]
pub use handlers::RedisSessionHandler;
#[cfg(feature = "sqlite")]
pub use handlers::SqliteSessionHandler;
pub use session::{AfterConflict, AfterTouch, SaveAction, SaveOutcome, Session, SessionOptions};
