'use strict';
// Child process of concurrency-http.test.js: the tests' Express app on a shared driver, so that
// two Node processes serve one session. argv: driver (file, sqlite, redis or memcached) and its
// location. Prints the port once listening; exits when stdin closes.
const http = require('node:http');
const { managerFor, appFor } = require('./http-drivers');

const [driver, where] = process.argv.slice(2);
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
