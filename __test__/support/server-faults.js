'use strict';
// Fault checks shared by redis.test.js and memcached.test.js: the same outage contract for both
// drivers (ERR_SESSION_UNAVAILABLE within the timeout + 0.5 s, recovery without a restart).
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const SLACK_MS = 500;

/** A distinct valid id. */
function sid(tag, n) {
  const s = `${tag}${n}`.replace(/[^A-Za-z0-9]/g, '');
  return s.padStart(40, 'A');
}

function assertUnavailable(e) {
  assert.ok(!(e instanceof TypeError), 'an outage is not a TypeError');
  assert.ok(e instanceof Error);
  assert.equal(e.code, 'ERR_SESSION_UNAVAILABLE', e.message);
  return true;
}

/** Resolves with [error or null, ms] for `promise`. */
async function timed(promise) {
  const t = Date.now();
  try {
    await promise;
    return [null, Date.now() - t];
  } catch (e) {
    return [e, Date.now() - t];
  }
}

/** Freeze, start reads (so they are in flight), kill: they all reject as unavailable. */
async function killInFlight(h, server, timeoutMs) {
  await h.write(sid('inflight', 0), '{}');
  await server.freeze();
  const pending = Array.from({ length: 20 }, (_, i) => timed(h.read(sid('inflight', i))));
  await new Promise((r) => setTimeout(r, 100));
  await server.kill();
  for (const [e, ms] of await Promise.all(pending)) {
    assert.ok(e, 'a read answered by a killed server');
    assertUnavailable(e);
    assert.ok(ms <= timeoutMs + SLACK_MS, `took ${ms} ms`);
  }
  const [e, ms] = await timed(h.write(sid('inflight', 1), '{}'));
  assert.ok(e && assertUnavailable(e) && ms <= timeoutMs + SLACK_MS, `down: ${e && e.code} after ${ms} ms`);
}

/**
 * Frozen: rejects within the timeout + 0.5 s; thawed: the next operations succeed. An
 * operation that timed out has an unknown outcome: the server may still apply it on resuming.
 */
async function freezeThaw(h, server, timeoutMs) {
  const id = sid('freeze', 1);
  await h.write(id, '"before"');
  await server.freeze();
  try {
    const results = await Promise.all([timed(h.read(id)), timed(h.write(id, '"during"')), timed(h.touch(id))]);
    for (const [e, ms] of results) {
      assert.ok(e, 'a frozen server answered');
      assertUnavailable(e);
      assert.ok(ms >= timeoutMs - 50, `gave up early: ${ms} ms`);
      assert.ok(ms <= timeoutMs + SLACK_MS, `took ${ms} ms`);
    }
  } finally {
    server.thaw();
  }
  // A write that timed out may still be applied once the server resumes (memcached: after a
  // newer write on another connection), so the outcome for `id` is any of the three values;
  // a fresh id shows that reads and writes work again.
  assert.ok(['"before"', '"during"'].includes(await h.read(id)));
  const next = sid('freeze', 2);
  await h.write(next, '"after"');
  assert.equal(await h.read(next), '"after"');
}

/** Killed then restarted on the same port: the same handler works again. */
async function restart(h, server) {
  const id = sid('restart', 1);
  await h.write(id, '"one"');
  await server.kill();
  await assert.rejects(h.read(id), assertUnavailable);
  await server.restart();
  assert.equal(await h.read(id), '', 'no persistence: the data went with the old process');
  await h.write(id, '"two"');
  assert.equal(await h.read(id), '"two"');
}

/** Runs the exit child against `live`; resolves when it exited 0 by itself. */
function exitsByItself(kind, live, dead, ms = 15_000) {
  const child = spawn(process.execPath, [path.join(__dirname, 'server-driver-exit.js'), kind, live, dead], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL');
      reject(new Error(`the child did not exit within ${ms} ms (stdout ${JSON.stringify(out)})`));
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && out === 'ok\n') resolve();
      else reject(new Error(`child exited ${code}: ${out} ${err}`));
    });
  });
}

module.exports = { sid, assertUnavailable, timed, killInFlight, freezeThaw, restart, exitsByItself, SLACK_MS };
