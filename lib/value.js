'use strict';
// Checks values at the boundary: only JSON can be stored. Scalars cross to Rust directly;
// objects and arrays cross as one JSON text (cheaper than napi's per-property conversion).
const { sessionError } = require('./errors');
const native = require('./native');

// The engine's limit (crates/session-core payload::MAX_DEPTH), the one owner of the number. The
// walk below stops there, so a value nested 20,000 deep gives this coded error, not a bare
// RangeError from the walk or JSON.stringify; the engine then checks the exact depth, the key's
// dot segments included.
const MAX_DEPTH = native.maxPayloadDepth();

function tooDeep(path) {
  // putMany/flashMany walk their object as '(object)': name the key inside it.
  const key = path.startsWith('(object).') ? path.slice(9).split('.')[0] : path.split('.')[0];
  return sessionError('ERR_SESSION_VALUE', `cannot store the value at session key "${key}": it is nested more than ${MAX_DEPTH} levels deep, and a payload that deep would read back as corrupt; nothing was stored`);
}

function reject(path, what) {
  return sessionError('ERR_SESSION_VALUE', `cannot store ${what} at session key "${path}": session values must be JSON (plain objects, arrays, strings, finite numbers, booleans, null or Dates)`);
}

/** A key as a string; numbers are accepted and stringified. */
function keyOf(key) {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' && Number.isFinite(key)) return String(key);
  throw sessionError('ERR_SESSION_VALUE', `session keys must be strings, got ${key === null ? 'null' : typeof key}`);
}

/** Keys from `(k)`, `([k1, k2])` or `(k1, k2, ...)`. */
function keysOf(args) {
  const list = args.length === 1 && Array.isArray(args[0]) ? args[0] : args;
  const out = new Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = keyOf(list[i]);
  return out;
}

function checkString(path, s) {
  if (!s.isWellFormed()) throw reject(path, 'a string with unpaired surrogates');
}

// Walks a container: every value must be JSON, no cycles, no class instances.
function walk(path, v, ancestors) {
  switch (typeof v) {
    case 'string':
      checkString(path, v);
      return;
    case 'number':
      if (!Number.isFinite(v)) throw reject(path, String(v));
      return;
    case 'boolean':
      return;
    case 'object':
      break;
    case 'undefined':
      throw reject(path, 'undefined');
    case 'bigint':
      throw reject(path, 'a BigInt');
    default:
      throw reject(path, `a ${typeof v}`);
  }
  if (v === null) return;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw reject(path, 'an invalid Date');
    return;
  }
  if (ancestors.includes(v)) throw reject(path, 'a circular structure');
  if (ancestors.length >= MAX_DEPTH) throw tooDeep(path);
  if (Array.isArray(v)) {
    ancestors.push(v);
    for (let i = 0; i < v.length; i++) walk(`${path}.${i}`, v[i], ancestors);
    ancestors.pop();
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    const name = proto && proto.constructor && proto.constructor.name;
    throw reject(path, `an instance of ${name || 'a class'}`);
  }
  ancestors.push(v);
  for (const k in v) {
    checkString(path, k);
    walk(`${path}.${k}`, v[k], ancestors);
  }
  ancestors.pop();
}

/** True when `v` crosses as JSON text (a plain object or array, not a Date). */
function isContainer(v) {
  return v !== null && typeof v === 'object' && !(v instanceof Date);
}

/** A scalar ready for the addon; a Date becomes its ISO string. */
function scalar(path, v) {
  switch (typeof v) {
    case 'string':
      checkString(path, v);
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw reject(path, String(v));
      return v;
    case 'boolean':
      return v;
    default:
      if (v === null) return null;
      if (v instanceof Date) {
        walk(path, v, []);
        return v.toISOString();
      }
      walk(path, v, []);
      return v;
  }
}

/** JSON text of a container, after checking every value in it. */
function json(path, v) {
  walk(path, v, []);
  return JSON.stringify(v);
}

/** A value from the addon: scalars as they are, containers arrive as `[jsonText]`. */
function unwrap(v) {
  return Array.isArray(v) ? JSON.parse(v[0]) : v;
}

module.exports = { keyOf, keysOf, isContainer, scalar, json, unwrap };
