#!/usr/bin/env node
'use strict';
// `npx ostro-session session:table [dir] [--table=name]`: writes the sessions table migration
// (the one `node assistant session:table` writes) without booting an OstroJS app.
const path = require('node:path');
const { writeMigration } = require('../lib/ostro/migration');

const USAGE = `Usage: ostro-session session:table [dir] [--table=name]

  session:table   write the migration creating the sessions table
                  dir      where to write it (default: database/migrations)
                  --table  the table name (default: sessions)
`;

function main(argv) {
  const args = argv.filter((a) => !a.startsWith('--'));
  const flags = argv.filter((a) => a.startsWith('--'));
  if (flags.includes('--help') || args.length === 0) {
    process.stdout.write(USAGE);
    return args.length === 0 && !flags.includes('--help') ? 1 : 0;
  }
  const [command, dir, ...extra] = args;
  if (command !== 'session:table' || extra.length > 0) {
    process.stderr.write(`ostro-session: unknown command or extra arguments: ${args.join(' ')}\n\n${USAGE}`);
    return 1;
  }
  let table = 'sessions';
  for (const f of flags) {
    const m = /^--table=(.*)$/.exec(f);
    if (m) table = m[1];
    else {
      process.stderr.write(`ostro-session: unknown option ${f}\n\n${USAGE}`);
      return 1;
    }
  }
  try {
    const file = writeMigration(path.resolve(dir || path.join('database', 'migrations')), { table });
    process.stdout.write(`Migration created successfully: ${path.relative(process.cwd(), file) || file}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ostro-session: ${err.message}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
