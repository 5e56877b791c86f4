'use strict';
// Issue 10, defects 1 and 2 without a server: a Store refuses every property write (no data
// shared between sessions through its methods, none silently lost) and every callback passed to
// a method that would never call it.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Store } = require('../lib/store');
const { SessionManager, HttpStore } = require('../lib/manager');
const { ArraySessionHandler } = require('../lib/handlers');

const KEY = 'base64:' + Buffer.alloc(32, 7).toString('base64');

function newStore() {
  return new SessionManager({ driver: 'array', key: KEY }).createStore();
}

// `new Function` bodies are sloppy-mode code, as connect-flash is: failed writes there are
// silent unless something throws.
const sloppy = (body) => new Function('store', body); // eslint-disable-line no-new-func
const strict = (body) => new Function('store', `'use strict'; ${body}`); // eslint-disable-line no-new-func

function assertPropertyError(fn, name) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, `a TypeError, got ${err && err.constructor && err.constructor.name}`);
    assert.equal(err.code, 'ERR_SESSION_PROPERTY');
    assert.match(err.message, new RegExp(`'${name}'`));
    assert.match(err.message, /put\(/);
    assert.match(err.message, /api: 'express-session'/);
    return true;
  });
}

for (const [mode, wrap] of [['sloppy', sloppy], ['strict', strict]]) {
  test(`${mode}-mode code: any property write, define or delete on a Store throws ERR_SESSION_PROPERTY`, async () => {
    const store = newStore();
    await store.start();
    assertPropertyError(() => wrap('store.foo = 1')(store), 'foo');
    // connect-flash's line: the read finds the shared method, the write must not go through.
    assertPropertyError(() => wrap('store.flash = store.flash || {}')(store), 'flash');
    assertPropertyError(() => wrap('store.flash = {}')(store), 'flash');
    assertPropertyError(() => wrap('delete store.get')(store), 'get');
    assertPropertyError(() => wrap('delete store.nothing')(store), 'nothing');
    assertPropertyError(() => wrap("Object.defineProperty(store, 'x', { value: 1 })")(store), 'x');
    assertPropertyError(() => wrap("Reflect.defineProperty(store, 'x', { value: 1 })")(store), 'x');
    assertPropertyError(() => wrap('store._s = null')(store), '_s');
    assertPropertyError(() => wrap("Object.assign(store, { cart: [1] })")(store), 'cart');
    assert.throws(() => wrap('Object.setPrototypeOf(store, {})')(store), { code: 'ERR_SESSION_PROPERTY' });
    // Nothing changed: no own property appeared, the methods are the shared ones, and the
    // session still works.
    assert.equal(Object.prototype.hasOwnProperty.call(store, 'foo'), false);
    assert.equal(Object.prototype.hasOwnProperty.call(store, 'flash'), false);
    assert.equal(store.flash, Store.prototype.flash);
    assert.ok(store instanceof HttpStore);
    store.put('cart', [1]);
    assert.deepEqual(store.get('cart'), [1]);
  });

  test(`${mode}-mode code: the shared method objects and prototypes cannot be changed`, () => {
    const tries = [
      'Store.prototype.flash.x = 1',
      "Store.prototype.flash.error = ['for A']",
      'Store.prototype.flash = function () {}',
      'Store.prototype.extra = 1',
      'HttpStore.prototype.token = function () {}',
      "HttpStore.prototype.token.x = 1",
      "Object.defineProperty(Store.prototype.get, 'x', { value: 1 })",
    ];
    for (const body of tries) {
      const run = new Function('Store', 'HttpStore', mode === 'strict' ? `'use strict'; ${body}` : body); // eslint-disable-line no-new-func
      if (mode === 'strict') {
        assert.throws(() => run(Store, HttpStore), TypeError, body);
        continue;
      }
      // Sloppy mode may fail silently here (these are ordinary frozen objects); the checks below
      // prove nothing changed.
      try {
        run(Store, HttpStore);
      } catch (err) {
        assert.ok(err instanceof TypeError, `${body}: ${err}`);
      }
    }
    for (const f of [Store.prototype.flash, Store.prototype.get, HttpStore.prototype.token, Store, HttpStore]) {
      assert.ok(Object.isFrozen(f), `${f.name} is frozen`);
    }
    assert.ok(Object.isFrozen(Store.prototype));
    assert.ok(Object.isFrozen(HttpStore.prototype));
    assert.equal(Store.prototype.flash.x, undefined);
    assert.equal(Store.prototype.flash.error, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Store.prototype, 'extra'), false);
  });
}

test('reading a Store is unaffected: methods, `id`, internal reads, instanceof, keys', async () => {
  const store = newStore();
  await store.start();
  assert.equal(typeof store.get, 'function');
  assert.equal(store.id, store.getId());
  assert.equal(store.nothing, undefined);
  assert.equal('put' in store, true);
  assert.ok(store instanceof Store);
  store.put('a', 1);
  assert.equal(store.get('a'), 1);
  assert.equal(typeof store.token(), 'string');
  // The token read is remembered (the middleware saves a new session whose token was read).
  const { tokenWasRead } = require('../lib/manager');
  assert.equal(tokenWasRead(store), true);
  assert.equal(tokenWasRead(newStore()), false);
  store.setRequestMeta({ ip: '127.0.0.1' });
  await store.save();
});

test('a plain Store (no manager) refuses writes too, and a storeClass subclass inherits the guard', async () => {
  const plain = new Store('s', new ArraySessionHandler(120));
  assert.throws(() => { plain.user = 'alice'; }, { code: 'ERR_SESSION_PROPERTY' });
  class Mine extends HttpStore {
    hello() { return `hi ${this.get('name', 'nobody')}`; }
  }
  const manager = new SessionManager({ driver: 'array', key: KEY }, { storeClass: Mine });
  const mine = manager.createStore();
  await mine.start();
  assert.equal(mine.hello(), 'hi nobody');
  assert.throws(() => { mine.name = 'x'; }, { code: 'ERR_SESSION_PROPERTY' });
  // A subclass keeping a field of its own fails when constructed, not later.
  class WithField extends HttpStore {
    constructor(...args) {
      super(...args);
      this.extra = 1;
    }
  }
  assert.throws(() => new SessionManager({ driver: 'array', key: KEY }, { storeClass: WithField }).createStore(), { code: 'ERR_SESSION_PROPERTY' });
});

// Defect 2: express-session-style callbacks never called (passport's login hung forever).
test('a callback passed to a method that takes a boolean or nothing throws ERR_SESSION_CALLBACK at once', async () => {
  const store = newStore();
  await store.start();
  const cb = () => assert.fail('the callback must never be called');
  const calls = {
    start: (s) => s.start(cb),
    save: (s) => s.save(cb),
    'save(options, cb)': (s) => s.save({}, cb),
    migrate: (s) => s.migrate(cb),
    'migrate(true, cb)': (s) => s.migrate(true, cb),
    regenerate: (s) => s.regenerate(cb),
    'regenerate(false, cb)': (s) => s.regenerate(false, cb),
    invalidate: (s) => s.invalidate(cb),
    flush: (s) => s.flush(cb),
    reflash: (s) => s.reflash(cb),
    ageFlashData: (s) => s.ageFlashData(cb),
    regenerateToken: (s) => s.regenerateToken(cb),
    token: (s) => s.token(cb),
    all: (s) => s.all(cb),
    getId: (s) => s.getId(cb),
    getName: (s) => s.getName(cb),
    getHandler: (s) => s.getHandler(cb),
    isStarted: (s) => s.isStarted(cb),
    isDirty: (s) => s.isDirty(cb),
    previousUrl: (s) => s.previousUrl(cb),
  };
  const before = store.getId();
  store.put('user', 'alice');
  for (const [name, call] of Object.entries(calls)) {
    let result;
    assert.throws(() => { result = call(store); }, (err) => {
      assert.ok(err instanceof TypeError, name);
      assert.equal(err.code, 'ERR_SESSION_CALLBACK', name);
      assert.match(err.message, /callback/);
      assert.match(err.message, /api: 'express-session'/, name);
      return true;
    }, `${name} must throw synchronously (a rejected Promise nobody awaits would hang the caller)`);
    assert.equal(result, undefined);
  }
  // Nothing happened: same id, data kept.
  assert.equal(store.getId(), before);
  assert.equal(store.get('user'), 'alice');
  // Laravel's API still works, and keys/values that are functions keep their own errors.
  assert.equal(await store.regenerate(), true);
  assert.notEqual(store.getId(), before);
  assert.equal(await store.migrate(true), true);
  assert.equal(store.get('lazy', () => 'default'), 'default');
  assert.throws(() => store.put('f', cb), { code: 'ERR_SESSION_VALUE' });
});
