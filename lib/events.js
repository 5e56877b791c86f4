'use strict';
// Session lifecycle events on node:diagnostics_channel, the convention undici, fastify and the
// OpenTelemetry instrumentations use. Channels `ostro:session:<event>` carry
// `{ driver, handle, reason }`: `handle` is a keyed hash of the id (the core's session_handle),
// never the id, and no message carries session data. Load and save also get tracing channels
// (`ostro:session:load`, `ostro:session:save`).
//
// Publishing costs one `hasSubscribers` check per channel when nobody listens: the engine's
// events of a load are taken (and handles computed) only when someone does.
const dc = require('node:diagnostics_channel');
const native = require('./native');

const EVENTS = Object.freeze(['created', 'loaded', 'regenerated', 'renewed', 'destroyed', 'expired', 'save_dropped', 'error']);
const channels = Object.freeze(Object.fromEntries(EVENTS.map((n) => [n, dc.channel(`ostro:session:${n}`)])));
const tracing = Object.freeze({
  load: dc.tracingChannel('ostro:session:load'),
  save: dc.tracingChannel('ostro:session:save'),
});

// Which manager published a message (for manager.on()): a non-enumerable property holding the
// manager's opaque token, so messages serialize and compare as { driver, handle, reason }.
const kSource = Symbol('ostro.session.source');

function message(observer, handle, reason) {
  const m = { driver: observer.driver, handle, reason: reason === undefined ? null : reason };
  Object.defineProperty(m, kSource, { value: observer.source });
  return m;
}

/** The token of the manager that published `m` (see manager.on()). */
function sourceOf(m) {
  return m !== null && typeof m === 'object' ? m[kSource] : undefined;
}

/** Whether any lifecycle channel has a subscriber. */
function listening() {
  for (const n of EVENTS) if (channels[n].hasSubscribers) return true;
  return false;
}

/**
 * Publishes `name` for session `id` (hashed with `observer.key()`) with `reason`, if anyone listens.
 * @param {{ driver: string, key: () => string }} observer
 */
function publish(observer, name, id, reason) {
  const ch = channels[name];
  if (!ch.hasSubscribers) return;
  ch.publish(message(observer, handleOf(observer, id), reason));
}

/** Publishes `name` for the session shown as `handle` (already keyed), if anyone listens. */
function publishHandle(observer, name, handle, reason) {
  const ch = channels[name];
  if (ch.hasSubscribers) ch.publish(message(observer, handle, reason));
}

/** The handle of `id` under the observer's app key, or null when it has none (yet). */
function handleOf(observer, id) {
  let key;
  try {
    key = observer.key();
  } catch {
    return null; // no app key yet (OstroJS before key:generate): never the id instead
  }
  return typeof id === 'string' ? native.sessionHandleOf(key, id) : null;
}

/** Publishes the engine's events of the load that just ran on native session `s`. */
function afterLoad(observer, s) {
  if (!listening()) return;
  let key;
  try {
    key = observer.key();
  } catch {
    return;
  }
  for (const e of s.takeEvents(key)) {
    const ch = channels[e.name];
    if (ch.hasSubscribers) ch.publish(message(observer, e.handle, e.reason ?? null));
  }
}

module.exports = { EVENTS, channels, tracing, listening, publish, publishHandle, afterLoad, handleOf, sourceOf };
