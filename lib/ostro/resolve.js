'use strict';
// Finding the OstroJS packages of the app this package runs in.
//
// `@ostro/support`, `@ostro/console` and `@ostro/contracts` are optional peers: they are resolved
// from the app (its working directory and main module), never from this package's own location,
// so that a symlinked or globally installed @ostro/session still shares the app's single copies
// (a second copy of `@ostro/console/command` would fail the assistant's `instanceof` check).
const path = require('node:path');
const { Store } = require('../store');

/** Where the app's packages are looked up: the working directory, then the main module's folder. */
function appPaths() {
  const paths = [process.cwd()];
  if (require.main && typeof require.main.path === 'string' && !paths.includes(require.main.path)) paths.push(require.main.path);
  return paths;
}

/** The file `id` resolves to from the app (or from `paths`), or null when it is not installed. */
function resolveFromApp(id, paths) {
  try {
    return require.resolve(id, { paths: paths || appPaths() });
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

/** `require(id)` from the app, or `null` when the app does not have it. */
function requireFromApp(id) {
  const file = resolveFromApp(id);
  return file === null ? null : require(file);
}

const kLinked = Symbol.for('ostro.session.contractLinked');

/**
 * Makes `store instanceof require('@ostro/contracts/session/session')` true for every Store,
 * as OstroJS's auth guard and exception handler check it.
 *
 * The contract is an empty class, so its prototype cannot simply be put into the Store's chain
 * without changing the Store class for everyone (or the contract for its other subclasses). A
 * `Symbol.hasInstance` on the contract itself answers only for the contract (`this === Contract`):
 * its subclasses, such as 1.x's Session, keep the ordinary check. Every copy of the contracts
 * package the app's framework can see is linked (normally one, as npm dedupes them).
 * @returns {number} how many contract classes are linked
 */
function linkSessionContract() {
  const files = new Set();
  const add = (paths) => {
    const f = resolveFromApp('@ostro/contracts/session/session', paths);
    if (f !== null) files.add(f);
  };
  add();
  // The framework's own packages may hold a nested copy when the app's ranges did not dedupe.
  for (const pkg of ['@ostro/auth/package.json', '@ostro/foundation/package.json']) {
    const p = resolveFromApp(pkg);
    if (p !== null) add([path.dirname(p)]);
  }
  let linked = 0;
  for (const file of files) {
    const Contract = require(file);
    if (typeof Contract !== 'function') continue;
    if (!Object.prototype.hasOwnProperty.call(Contract, kLinked)) {
      const ordinary = Function.prototype[Symbol.hasInstance];
      Object.defineProperty(Contract, Symbol.hasInstance, {
        value: function hasInstance(obj) {
          if (this === Contract && obj instanceof Store) return true;
          return ordinary.call(this, obj);
        },
        configurable: true,
      });
      Object.defineProperty(Contract, kLinked, { value: true });
    }
    linked++;
  }
  return linked;
}

/** Reads `key` (dot path) from an OstroJS config repository or a plain object. */
function configGet(conf, key) {
  if (!conf) return undefined;
  if (typeof conf.get === 'function') {
    const v = conf.get(key);
    return v === null ? undefined : v;
  }
  let v = conf;
  for (const part of key.split('.')) {
    if (v === null || v === undefined) return undefined;
    v = v[part];
  }
  return v === null ? undefined : v;
}

/** The app's config repository, or null. */
function appConfig(app) {
  if (!app) return null;
  return app.config || app['config'] || null;
}

/** Whether `x` looks like an OstroJS application (a container with `make` and a config). */
function isOstroApp(x) {
  return x !== null && typeof x === 'object' && typeof x.make === 'function' && typeof x.singleton === 'function';
}

module.exports = { appPaths, resolveFromApp, requireFromApp, linkSessionContract, configGet, appConfig, isOstroApp };
