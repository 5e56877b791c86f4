'use strict';
// The public surface of @ostro/session.
const { Store } = require('./lib/store');
const { SessionHandlerInterface } = require('./lib/handler-interface');
const { ArraySessionHandler, FileSessionHandler } = require('./lib/handlers');
const { SqliteSessionHandler } = require('./lib/drivers/sqlite');
const { DatabaseSessionHandler } = require('./lib/drivers/database');
const { RedisSessionHandler } = require('./lib/drivers/redis');
const { MemcachedSessionHandler } = require('./lib/drivers/memcached');
const { SessionManager, HttpStore } = require('./lib/manager');
const { CookieSessionHandler } = require('./lib/drivers/cookie');

module.exports = {
  Store,
  SessionHandlerInterface,
  ArraySessionHandler,
  FileSessionHandler,
  SqliteSessionHandler,
  DatabaseSessionHandler,
  RedisSessionHandler,
  MemcachedSessionHandler,
  SessionManager,
  HttpStore,
  CookieSessionHandler,
};
