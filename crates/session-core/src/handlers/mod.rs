//! The built-in drivers, one file each, all implementing [`crate::SessionHandler`].

pub mod array;
pub mod cookie;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod database;
#[cfg(feature = "file")]
pub mod file;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
pub mod redis_cluster;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use array::ArraySessionHandler;
pub use cookie::{CookieCodec, CookieSessionHandler};
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use database::DatabaseSessionHandler;
#[cfg(feature = "file")]
pub use file::FileSessionHandler;
#[cfg(feature = "memcached")]
pub use memcached::MemcachedSessionHandler;
#[cfg(feature = "redis")]
pub use redis::RedisSessionHandler;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteSessionHandler;
