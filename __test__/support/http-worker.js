'use strict';
// Child process of concurrency-http.test.js: the tests' Express app on a shared driver, so that
// two Node processes serve one session. argv: driver (file, sqlite, database, redis or
// memcached) and its location (for database, `{ url, table }` as JSON). Prints the port once
// listening; exits when stdin closes.
const http = require('node:http');
const { managerFor, appFor } = require('./http-drivers');

const [driver, arg] = process.argv.slice(2);
const where = driver === 'database' ? JSON.parse(arg) : arg;
const manager = managerFor(driver, where);
const server = http.createServer(appFor(manager));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on('end', () => {
  server.close();
  server.closeAllConnections();
  manager.close().finally(() => process.exit(0));
});
process.stdin.resume();
