//! The factory of the redis driver (`lib/drivers/redis.js`).

use crate::errors::OrThrow;
use crate::handlers::{tombstone_secs, NativeHandler};
use crate::redis_uv::UvRedis;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use ostro_session_core::handlers::redis::{
    RedisCluster, RedisConnection, RedisOptions, RedisParts, RedisSentinel,
};
use ostro_session_core::{RedisSessionHandler, SessionError};
use std::sync::Arc;

/// A Redis address given field by field.
#[napi(object)]
pub struct RedisConnectionObject {
    /// Host name or IP address (default `127.0.0.1`).
    pub host: Option<String>,
    /// TCP port (default 6379).
    pub port: Option<f64>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Database number (default 0).
    pub db: Option<f64>,
    /// Connect over TLS with certificate verification.
    pub tls: Option<bool>,
    /// Redis Cluster node URLs (then `host`, `port` and `db` are not used).
    pub cluster: Option<Vec<String>>,
    /// A master found through Sentinel (then the other fields are not used).
    pub sentinel: Option<RedisSentinelObject>,
}

/// A master found through Sentinel.
#[napi(object)]
pub struct RedisSentinelObject {
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// Sentinel URLs.
    pub nodes: Vec<String>,
    /// ACL user name for the master.
    pub username: Option<String>,
    /// Password for the master.
    pub password: Option<String>,
    /// Database number on the master.
    pub db: Option<f64>,
    /// TLS to the master.
    pub tls: Option<bool>,
}

/// Options of `createRedisHandler`.
#[napi(object)]
#[derive(Default)]
pub struct RedisHandlerOptions {
    /// Key prefix (default `ostro_session:`).
    pub prefix: Option<String>,
    /// Lifetime in minutes (default 120).
    pub minutes: Option<f64>,
    /// Time allowed to connect, in ms (default 2000).
    pub connect_timeout_ms: Option<f64>,
    /// Time allowed for one operation, in ms (default 2000).
    pub command_timeout_ms: Option<f64>,
    /// PEM file of CA certificates to verify the server with.
    pub ca_file: Option<String>,
    /// Replicas that must acknowledge each write (`WAIT`); default 0.
    pub min_replicas: Option<f64>,
    /// The TTL of a tombstone, in seconds (1 to the lifetime; default: the lifetime).
    pub tombstone_seconds: Option<f64>,
}

/// A whole non-negative number from JS, at most `max`.
fn whole(name: &str, v: f64, max: f64) -> std::result::Result<u64, SessionError> {
    if v.is_finite() && v >= 0.0 && v <= max && v.fract() == 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(v as u64)
    } else {
        Err(SessionError::InvalidOption(format!(
            "{name} must be a whole number from 0 to {max}, got {v}"
        )))
    }
}

fn parts(o: RedisConnectionObject) -> std::result::Result<RedisConnection, SessionError> {
    if let Some(nodes) = o.cluster {
        return Ok(RedisConnection::Cluster(RedisCluster {
            nodes,
            username: o.username,
            password: o.password,
            tls: o.tls.unwrap_or(false),
        }));
    }
    if let Some(s) = o.sentinel {
        let db =
            s.db.map(|d| whole("sentinel db", d, 1e9))
                .transpose()?
                .map(|d| i64::try_from(d).unwrap_or(0));
        return Ok(RedisConnection::Sentinel(RedisSentinel {
            master_name: s.master_name,
            nodes: s.nodes,
            username: s.username,
            password: s.password,
            db,
            tls: s.tls.unwrap_or(false),
        }));
    }
    let port = o
        .port
        .map(|p| whole("redis port", p, 65535.0))
        .transpose()?
        .map(|p| u16::try_from(p).unwrap_or(0));
    let db =
        o.db.map(|d| whole("redis db", d, 1e9))
            .transpose()?
            .map(|d| i64::try_from(d).unwrap_or(0));
    Ok(RedisConnection::Parts(RedisParts {
        host: o.host,
        port,
        username: o.username,
        password: o.password,
        db,
        tls: o.tls.unwrap_or(false),
    }))
}

fn options_of(o: RedisHandlerOptions) -> std::result::Result<RedisOptions, SessionError> {
    let d = RedisOptions::default();
    Ok(RedisOptions {
        prefix: o.prefix.unwrap_or(d.prefix),
        minutes: o.minutes.unwrap_or(d.minutes),
        connect_timeout_ms: match o.connect_timeout_ms {
            Some(ms) => whole("connectTimeoutMs", ms.round(), 600_000.0)?,
            None => d.connect_timeout_ms,
        },
        command_timeout_ms: match o.command_timeout_ms {
            Some(ms) => whole("commandTimeoutMs", ms.round(), 600_000.0)?,
            None => d.command_timeout_ms,
        },
        ca_file: o.ca_file.map(Into::into),
        min_replicas: match o.min_replicas {
            Some(n) => u32::try_from(whole("minReplicas", n, 100.0)?).unwrap_or(0),
            None => d.min_replicas,
        },
        tombstone_secs: tombstone_secs(o.tombstone_seconds)?,
    })
}

/// A redis handler for a URL (`redis://`, `rediss://`, `redis+unix://`), an address object, a
/// cluster (`{ cluster: [urls] }`) or a sentinel-watched master (`{ sentinel }`). Nothing is
/// connected until the first operation.
#[napi]
pub fn create_redis_handler(
    env: Env,
    connection: Either<String, RedisConnectionObject>,
    options: Option<RedisHandlerOptions>,
) -> Result<NativeHandler> {
    let conn = match connection {
        Either::A(url) => Ok(RedisConnection::Url(url)),
        Either::B(o) => parts(o),
    };
    let h = conn
        .and_then(|c| Ok((c, options_of(options.unwrap_or_default())?)))
        .and_then(|(c, o)| RedisSessionHandler::new(&c, o))
        .or_throw(&env)?;
    // A single plain server is driven from this env's libuv loop (see `redis_uv`); TLS, a
    // cluster and a sentinel keep the core's own connection.
    if let Some(ep) = h.endpoint() {
        if let Some(uv) = UvRedis::new(&env, ep.clone()) {
            h.set_external(uv).or_throw(&env)?;
        }
    }
    Ok(NativeHandler::new(Arc::new(h), None))
}
