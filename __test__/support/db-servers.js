'use strict';
// The machine's PostgreSQL and MariaDB servers for the tests of the native `database` driver
// that run beside other drivers (HTTP concurrency, blocking): their URLs
// (OSTRO_TEST_POSTGRES_URL / OSTRO_TEST_MYSQL_URL override them), a check that fails naming a
// server that is not running (never a skip), unique table names, and dropping a table with its
// `<table>_locks` companion.
const net = require('node:net');
const { execFileSync } = require('node:child_process');

const DB_SERVERS = [
  {
    name: 'PostgreSQL',
    label: 'database (postgres)',
    url: process.env.OSTRO_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test',
    defaultPort: 5432,
    sql(query) {
      return execFileSync('psql', [this.url, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' }).trim();
    },
    quote: (t) => `"${t}"`,
  },
  {
    name: 'MariaDB',
    label: 'database (mariadb)',
    url: process.env.OSTRO_TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test',
    defaultPort: 3306,
    sql(query) {
      const u = new URL(this.url);
      return execFileSync('mariadb', ['-h', u.hostname, '-P', u.port || '3306', '-u', decodeURIComponent(u.username), '-N', '-B', '-D', u.pathname.slice(1), '-e', query], { encoding: 'utf8' }).trim();
    },
    quote: (t) => `\`${t}\``,
  },
];

let seq = 0;
/** A table name no other test (or test process) uses. */
const uniqueTable = (tag) => `ostro_${tag}${process.pid}_${seq++}_${Date.now() % 100000}`;

/** Rejects naming the server when nothing accepts connections at its URL. */
function requireDbServer(b) {
  const u = new URL(b.url);
  const port = Number(u.port) || b.defaultPort;
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    const fail = (e) => {
      s.destroy();
      reject(new Error(`the ${b.name} server at ${u.hostname}:${port} is not reachable (${e ? e.message : 'timeout'}): these tests need it running (see .ci/run)`));
    };
    s.once('error', fail);
    s.once('timeout', () => fail());
  });
}

/** Drops `table` and its lock table. */
function dropDbTable(b, table) {
  for (const t of [table, `${table}_locks`]) {
    try {
      b.sql(`DROP TABLE IF EXISTS ${b.quote(t)}`);
    } catch {
      /* reported by the test that failed */
    }
  }
}

module.exports = { DB_SERVERS, uniqueTable, requireDbServer, dropDbTable };
