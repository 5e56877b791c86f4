'use strict';
// `node assistant session:list {user}`, `session:revoke {user} {handle?}` and `session:prune`
// in a real OstroJS app (the fixture of support/ostro-app.js, @ostro/framework from npm, this
// package as @ostro/session): sessions are linked over HTTP by a route calling
// session.setUser(), then listed and ended from the command line, and the browsers see it.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ensureInstall, makeApp, newAppKey, startApp, assistant, Browser } = require('./support/ostro-app');
const { SessionManager } = require('..');

const HANDLE = /\b[0-9a-f]{32}\b/g;

describe('OstroJS assistant commands for a user\'s sessions', { timeout: 30 * 60 * 1000 }, () => {
  const key = newAppKey();
  let dir;
  let app;
  let manager;
  const browsers = {};

  before(async () => {
    const install = await ensureInstall();
    dir = makeApp(install);
    app = await startApp(dir, { APP_KEY: key });
    // The test's own view of the same sessions: the file driver on the app's directory.
    manager = new SessionManager({ driver: 'file', files: path.join(dir, 'storage', 'framework', 'sessions'), key });
    for (const [name, user] of [['a', '7'], ['b', '7'], ['c', '7'], ['d', '8']]) {
      const b = new Browser(app.base, { 'user-agent': `device ${name}` });
      assert.deepEqual((await b.get(`/link?user=${user}`)).json, { user });
      browsers[name] = b;
    }
  }, { timeout: 20 * 60 * 1000 });

  after(async () => {
    if (app) await app.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (args) => assistant(dir, args, { APP_KEY: key });
  const idOf = async (b) => (await b.get('/whoami')).json.id;

  it('session:list prints each live session of the user by handle, never the id', async () => {
    const { stdout } = await run(['session:list', '7']);
    assert.match(stdout, /3 live sessions for user 7/);
    const handles = stdout.match(HANDLE).sort();
    const expected = (await manager.sessionsOf(7)).map((s) => s.handle).sort();
    assert.deepEqual(handles, expected);
    for (const name of ['a', 'b', 'c']) assert.match(stdout, new RegExp(`127\\.0\\.0\\.1\\s+device ${name}`));
    assert.doesNotMatch(stdout, /device d/);
    for (const name of ['a', 'b', 'c', 'd']) assert.ok(!stdout.includes(await idOf(browsers[name])), 'no session id printed');
    assert.match((await run(['session:list', '9'])).stdout, /No live sessions for user 9/);
  });

  it('session:revoke {user} {handle} ends that one session; its browser starts over', async () => {
    const aId = await idOf(browsers.a);
    const [entry] = (await manager.sessionsOf(7)).filter((s) => s.userAgent === 'device a');
    const { stdout } = await run(['session:revoke', '7', entry.handle]);
    assert.match(stdout, new RegExp(`Ended session ${entry.handle} of user 7`));
    assert.notEqual(await idOf(browsers.a), aId, 'the revoked cookie no longer carries a session');
    assert.equal((await manager.sessionsOf(7)).length, 2);
    // A handle nobody has fails with a message and a failing exit code.
    await assert.rejects(run(['session:revoke', '7', entry.handle]), (err) => /no live session with handle/.test(err.message) && err.code === 1);
  });

  it('session:revoke {user} ends all of that user\'s sessions and no other', async () => {
    const { stdout } = await run(['session:revoke', '7']);
    assert.match(stdout, /Ended 2 sessions of user 7/);
    assert.match((await run(['session:list', '7'])).stdout, /No live sessions for user 7/);
    assert.match((await run(['session:list', '8'])).stdout, /1 live session for user 8/);
  });

  it('session:prune runs gc now and prints how many records went', async () => {
    const sessions = path.join(dir, 'storage', 'framework', 'sessions');
    const stale = path.join(sessions, 'P'.repeat(40));
    fs.writeFileSync(stale, '{"_token":"x"}', { mode: 0o600 });
    const dayAgo = new Date(Date.now() - 24 * 3600 * 1000);
    fs.utimesSync(stale, dayAgo, dayAgo);
    const { stdout } = await run(['session:prune']);
    assert.match(stdout, /Pruned [1-9]\d* expired session records?\./);
    assert.equal(fs.existsSync(stale), false);
    assert.match((await run(['session:list', '8'])).stdout, /1 live session for user 8/, 'live sessions stay');
  });
});

describe('OstroJS database driver over the query builder: session:list and session:revoke', { timeout: 30 * 60 * 1000 }, () => {
  const key = newAppKey();
  const env = { APP_KEY: key, SESSION_DRIVER: 'database', SESSION_QUERY_BUILDER: 'true' };
  let dir;
  let app;

  before(async () => {
    const install = await ensureInstall();
    dir = makeApp(install);
    assert.match((await assistant(dir, ['session:table'], env)).stdout, /Migration created successfully!/);
    await assistant(dir, ['migrate'], env);
    app = await startApp(dir, env);
  }, { timeout: 20 * 60 * 1000 });

  after(async () => {
    if (app) await app.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the sessions the query-builder driver linked, and ends them', async () => {
    const browsers = [];
    for (const [name, user] of [['x', 'ada'], ['y', 'ada'], ['z', 'bob']]) {
      const b = new Browser(app.base, { 'user-agent': `device ${name}` });
      assert.deepEqual((await b.get(`/link?user=${user}`)).json, { user });
      browsers.push(b);
    }
    const list = (await assistant(dir, ['session:list', 'ada'], env)).stdout;
    assert.match(list, /2 live sessions for user ada/);
    assert.match(list, /device x/);
    assert.match(list, /device y/);
    const [handle] = list.match(HANDLE);
    assert.match((await assistant(dir, ['session:revoke', 'ada', handle], env)).stdout, /Ended session/);
    assert.match((await assistant(dir, ['session:list', 'ada'], env)).stdout, /1 live session for user ada/);
    assert.match((await assistant(dir, ['session:revoke', 'ada'], env)).stdout, /Ended 1 session of user ada/);
    assert.match((await assistant(dir, ['session:list', 'bob'], env)).stdout, /1 live session for user bob/);
  });
});
