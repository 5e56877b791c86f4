'use strict';
// The `sessions` table migration, shared by `node assistant session:table` and
// `npx ostro-session session:table`. Its columns are the ones 1.x's migration made (sid, ip_address,
// user_agent, payload, last_activity) plus a nullable user_id, which the sqlite and database
// drivers fill when the app passes one; both drivers adopt a 1.x table and add user_id themselves.
const fs = require('node:fs');
const path = require('node:path');
const { sessionError } = require('../errors');

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The migration's base name (the creator adds the date prefix). */
const MIGRATION_NAME = 'create_sessions_table';

function checkTable(table) {
  if (typeof table !== 'string' || !IDENTIFIER.test(table) || table.length > 64) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `the sessions table name must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*), got ${JSON.stringify(table)}`);
  }
  return table;
}

/** The migration file's source: an `@ostro/database/migration` creating `table`. */
function migrationSource(table = 'sessions') {
  const t = checkTable(table);
  return `const Schema = require('@ostro/support/facades/schema');
const Migration = require('@ostro/database/migration');

class CreateSessionsTable extends Migration {

    async up() {
        await Schema.create('${t}', function ($table) {
            $table.string('sid').primary();
            $table.string('user_id').nullable().index();
            $table.string('ip_address', 45).nullable();
            $table.text('user_agent').nullable();
            $table.text('payload').nullable();
            $table.integer('last_activity').index();
        });
    }

    async down() {
        await Schema.dropIfExists('${t}');
    }
}

module.exports = CreateSessionsTable
`;
}

const two = (n) => String(n).padStart(2, '0');

/** `YYYY_MM_DD_HHmmss` (24-hour clock, local time), so migrations sort in creation order. */
function datePrefix(date = new Date()) {
  return `${date.getFullYear()}_${two(date.getMonth() + 1)}_${two(date.getDate())}_${two(date.getHours())}${two(date.getMinutes())}${two(date.getSeconds())}`;
}

/**
 * Writes the migration into `dir` (created when missing) without a migration creator, and
 * returns its path. Refuses when a `*_create_sessions_table.js` is already there.
 */
function writeMigration(dir, { table = 'sessions', date = new Date() } = {}) {
  const source = migrationSource(table);
  fs.mkdirSync(dir, { recursive: true });
  const existing = fs.readdirSync(dir).find((f) => f.endsWith(`_${MIGRATION_NAME}.js`));
  if (existing) {
    throw sessionError('ERR_SESSION_INVALID_OPTION', `a sessions table migration already exists: ${existing}`);
  }
  const file = path.join(dir, `${datePrefix(date)}_${MIGRATION_NAME}.js`);
  fs.writeFileSync(file, source, { flag: 'wx' });
  return file;
}

module.exports = { MIGRATION_NAME, migrationSource, datePrefix, writeMigration };
