'use strict';
// The session config: OstroJS's `config/session.js` keys, checked and filled in once. The only
// place that knows each key's type, range and default; the manager, the middleware and the
// adapters read the frozen result (`manager.config`).
const { sessionError } = require('./errors');
const { rejectUnknown } = require('./options');
const cookies = require('./cookies');

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONTROL = /[\u0000-\u001f\u007f;]/; // eslint-disable-line no-control-regex

function invalid(key, what, value) {
  let shown;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : (value === undefined ? 'undefined' : JSON.stringify(value));
  } catch {
    shown = typeof value;
  }
  if (shown === undefined) shown = typeof value;
  return sessionError('ERR_SESSION_INVALID_OPTION', `session config "${key}" ${what}, got ${shown}`);
}

// OstroJS's env() converts only 'true'/'false'/'null', so config files can hand over '1', '0'
// or '' (a variable set to nothing); those are read as a shell user means them.
const TRUE = new Set(['true', '1', 'on', 'yes']);
const FALSE = new Set(['false', '0', 'off', 'no']);
function bool(cfg, key, def) {
  const v = cfg[key];
  if (v === undefined || v === null || v === '') return def;
  if (v === true || v === false) return v;
  if (typeof v === 'string' && TRUE.has(v.trim().toLowerCase())) return true;
  if (typeof v === 'string' && FALSE.has(v.trim().toLowerCase())) return false;
  throw invalid(key, 'must be a boolean', v);
}

function str(cfg, key, def, { nullable = false, check = null, what = 'must be a non-empty string' } = {}) {
  const v = cfg[key];
  if (v === undefined || (v === null && !nullable)) return def;
  if (v === null) return null;
  if (typeof v !== 'string' || v === '' || (check && !check(v))) throw invalid(key, what, v);
  return v;
}

function lifetimeOf(cfg) {
  const v = cfg.lifetime;
  if (v === undefined || v === null) return 120;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw invalid('lifetime', 'must be a positive number of minutes (a numeric string is accepted)', v);
  return n;
}

// ----- session lifecycle (absolute timeout, id renewal) -----
/** A nullable positive number of minutes (a numeric string is accepted); null turns it off. */
function minutesOrNull(cfg, key) {
  const v = cfg[key];
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw invalid(key, 'must be a positive number of minutes, or null (off)', v);
  return n;
}

function graceOf(cfg) {
  const v = cfg.renew_grace_seconds;
  if (v === undefined || v === null || v === '') return 30;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 86400) throw invalid('renew_grace_seconds', 'must be a number of seconds from 0 to 86400', v);
  return n;
}

/**
 * `tombstone_seconds`: how long the tombstone a logout leaves (destroy, invalidate(),
 * regenerate(true), migrate(true), a revoke) keeps the old id refused, in whole seconds from 1
 * to the lifetime; null (the default) keeps it for the lifetime. Longer than the lifetime is
 * refused, not clamped: past the lifetime the session would have expired anyway (the drivers
 * check the same rule for their `tombstoneSeconds` option, see the core's handler::tombstone_ms).
 */
function tombstoneOf(cfg, lifetime) {
  const v = cfg.tombstone_seconds;
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  const why = tombstoneRange(n, lifetime);
  if (why !== null) throw invalid('tombstone_seconds', `${why}, or null (the lifetime)`, v);
  return n;
}

/**
 * The range of a tombstone time (the config key and the drivers' `tombstoneSeconds` option):
 * null when `n` is a whole number of seconds from 1 to the lifetime of `minutes`, else what it
 * must be.
 */
function tombstoneRange(n, minutes) {
  // The lifetime as the drivers hold it: whole milliseconds.
  const lifetimeMs = Math.round(minutes * 60000);
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n * 1000 <= lifetimeMs) return null;
  return `must be a whole number of seconds from 1 to the lifetime (${lifetimeMs / 1000} s)`;
}

function lifecycleOf(c) {
  const out = {
    absolute_lifetime: minutesOrNull(c, 'absolute_lifetime'),
    renew_after: minutesOrNull(c, 'renew_after'),
    renew_grace_seconds: graceOf(c),
  };
  if (out.renew_after !== null && out.renew_after * 60 < out.renew_grace_seconds) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `session config "renew_grace_seconds" (${out.renew_grace_seconds}) is longer than "renew_after" (${out.renew_after} minutes): an old id would still forward after the next renewal`);
  }
  return out;
}

/** Most replicas `minReplicas` may ask for (WAIT numreplicas): more is a typo. */
const MAX_MIN_REPLICAS = 100;

/**
 * `minReplicas` (redis): replicas that must acknowledge each save and destroy (`WAIT`) before
 * it resolves; 0 (the default) resolves on the master's word. Other drivers refuse a non-zero
 * value rather than ignore a durability wish.
 */
function minReplicasOf(cfg, driver) {
  const v = cfg.minReplicas;
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_MIN_REPLICAS) {
    throw invalid('minReplicas', `must be a whole number of replicas from 0 to ${MAX_MIN_REPLICAS}`, v);
  }
  if (n > 0 && driver !== 'redis' && driver !== 'cache' && !driver.startsWith('cache.')) {
    throw invalid('minReplicas', `applies to the redis driver only (replicas acknowledging each save with WAIT), and the driver is [${driver}]`, v);
  }
  return n;
}

function lotteryOf(cfg) {
  const v = cfg.lottery;
  if (v === undefined || v === null) return [2, 100];
  const ok = Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(Number(x)) && Number(x) >= 0 && String(x).trim() !== '') && Number(v[1]) > 0;
  if (!ok) throw invalid('lottery', 'must be [chances, outOf] with non-negative integers and outOf > 0', v);
  return [Number(v[0]), Number(v[1])];
}

function sameSiteOf(cfg) {
  const v = cfg.same_site;
  if (v === undefined) return 'lax';
  if (v === null || v === false) return null;
  if (typeof v === 'string' && ['lax', 'strict', 'none'].includes(v.toLowerCase())) return v.toLowerCase();
  throw invalid('same_site', "must be 'lax', 'strict', 'none' or null", v);
}

function secureOf(cfg) {
  const v = cfg.secure;
  if (v === 'auto') return 'auto';
  try {
    return bool(cfg, 'secure', false);
  } catch {
    throw invalid('secure', "must be a boolean or 'auto'", v);
  }
}

function keysOf(cfg) {
  const key = cfg.key;
  if (key !== undefined && key !== null && typeof key !== 'string') throw invalid('key', 'must be a string (the app key)', '(not a string)');
  let prev = cfg.previous_keys;
  if (prev === undefined || prev === null || prev === '') prev = [];
  // APP_PREVIOUS_KEYS arrives from env() as one comma-separated string.
  if (typeof prev === 'string') prev = prev.split(',').map((k) => k.trim()).filter((k) => k !== '');
  if (!Array.isArray(prev) || prev.some((k) => typeof k !== 'string' || k === '')) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'session config "previous_keys" must be a list of non-empty strings (or one comma-separated string)');
  }
  return { key: typeof key === 'string' ? key : '', previousKeys: prev.slice() };
}

function connectionOf(cfg) {
  const v = cfg.connection;
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' && v !== '') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '')) return v.slice();
  if (typeof v === 'object' && !Array.isArray(v)) return { ...v };
  throw invalid('connection', 'must be null, a URL or path string, a list of "host:port" strings or a connection object', typeof v === 'object' ? '(invalid list)' : v);
}

// Every key the manager reads: OstroJS's config/session.js (the skeleton's keys, `signed`
// included), plus the app key and previous keys, and this package's own additions.
const CONFIG_KEYS = new Set([
  'driver', 'lifetime', 'expire_on_close', 'encrypt', 'encrypt_migrate', 'files', 'connection',
  'table', 'store', 'prefix', 'lottery', 'cookie', 'path', 'domain', 'secure', 'http_only',
  'same_site', 'resave', 'saveUninitialized', 'signed', 'previous_url', 'trust_proxy', 'csrf',
  'key', 'previous_keys',
  // A user's sessions (issue 13).
  'user_attribute',
  // session lifecycle
  'absolute_lifetime', 'renew_after', 'renew_grace_seconds',
  // How long a logout's tombstone refuses late saves (null: the lifetime).
  'tombstone_seconds',
  // Scaling out (issue 14): replicas that acknowledge each redis save.
  'minReplicas',
]);

/**
 * Checks and fills in a config. An unknown key is refused: a mistyped one (`lifeTime`,
 * `conection`) would otherwise fall back to a default nobody chose.
 */
function normalize(config) {
  if (config === undefined || config === null) config = {};
  if (typeof config !== 'object' || Array.isArray(config)) throw sessionError('ERR_SESSION_INVALID_OPTION', 'SessionManager takes a config object');
  const c = config;
  rejectUnknown(c, CONFIG_KEYS, 'session config');
  if (c.signed !== undefined && c.signed !== true && c.signed !== 'true') {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'session config "signed" cannot be turned off: the session cookie is always signed, because an unsigned id would let a client choose any id (session fixation) and 1.x cookies are signed too. Remove the "signed" key.');
  }
  const csrf = c.csrf === undefined || c.csrf === null ? null : c.csrf;
  if (csrf !== null && csrf !== 'ostro' && csrf !== 'laravel') throw invalid('csrf', "must be 'ostro', 'laravel' or null", csrf);
  const out = {
    driver: str(c, 'driver', 'file'),
    lifetime: lifetimeOf(c),
    expire_on_close: bool(c, 'expire_on_close', false),
    encrypt: bool(c, 'encrypt', false),
    encrypt_migrate: bool(c, 'encrypt_migrate', false),
    files: str(c, 'files', 'storage/framework/sessions'),
    connection: connectionOf(c),
    table: str(c, 'table', 'sessions', { check: (v) => IDENTIFIER.test(v) && v.length <= 64, what: 'must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)' }),
    store: str(c, 'store', null, { nullable: true }),
    prefix: str(c, 'prefix', null, { nullable: true }),
    lottery: lotteryOf(c),
    cookie: str(c, 'cookie', 'ostro_session', { check: cookies.isToken, what: "must be a cookie name: printable ASCII without ';', '=' or ',', no space at either end" }),
    path: str(c, 'path', '/', { check: (v) => v.startsWith('/') && !CONTROL.test(v), what: "must be a path starting with '/' without ';' or control characters" }),
    domain: str(c, 'domain', null, { nullable: true, check: (v) => !CONTROL.test(v) && !/\s/.test(v), what: "must be a domain without ';', spaces or control characters" }),
    secure: secureOf(c),
    http_only: bool(c, 'http_only', true),
    same_site: sameSiteOf(c),
    resave: bool(c, 'resave', false),
    saveUninitialized: bool(c, 'saveUninitialized', true),
    signed: true,
    previous_url: bool(c, 'previous_url', true),
    trust_proxy: bool(c, 'trust_proxy', false),
    csrf,
    ...keysOf(c),
    // The attribute (a dot path such as 'auth.id') that links a session to a user at each save.
    user_attribute: str(c, 'user_attribute', null, { nullable: true }),
    ...lifecycleOf(c),
  };
  out.tombstone_seconds = tombstoneOf(c, out.lifetime);
  out.minReplicas = minReplicasOf(c, out.driver);
  if (out.same_site === 'none' && out.secure !== true) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', 'session config "same_site" is \'none\' but "secure" is not true: browsers drop SameSite=None cookies without the Secure attribute, so every request would start a new session. Set secure: true (HTTPS) or use same_site \'lax\'.');
  }
  return Object.freeze(out);
}

module.exports = { normalize, invalid, tombstoneRange, CONFIG_KEYS, MAX_MIN_REPLICAS };
