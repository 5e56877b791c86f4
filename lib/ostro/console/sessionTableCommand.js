'use strict';
// `@ostro/session/console/sessionTableCommand`: `node assistant session:table`. OstroJS's
// assistant builds every command when it starts (`new SessionTableCommand($app['files'])`) and
// refuses one that is not an `@ostro/console/command`, so the base class comes from the app and
// the constructor does nothing that could throw.
const { requireFromApp, configGet, appConfig } = require('../resolve');
const { MIGRATION_NAME, migrationSource, writeMigration } = require('../migration');

/** Used when the app has no `@ostro/console` (there is then no assistant to run it). */
class FallbackCommand {
  setApp($app) {
    this.$app = $app;
  }

  getApp() {
    return this.$app;
  }

  info(message) {
    console.log(message); // eslint-disable-line no-console
  }
}

let Command = null;
try {
  Command = requireFromApp('@ostro/console/command');
} catch {
  Command = null;
}

class SessionTableCommand extends (Command || FallbackCommand) {
  $signature = 'session:table';

  $description = 'Create a migration for the session database table';

  $files;

  constructor($files) {
    super();
    this.$files = $files;
  }

  async handle() {
    const app = this.$app;
    const table = configGet(appConfig(app), 'session.table') || 'sessions';
    const source = migrationSource(table);
    const dir = app && typeof app.databasePath === 'function' ? app.databasePath('migrations') : 'database/migrations';
    const creator = app ? app['migration.creator'] : null;
    let file;
    if (creator && typeof creator.create === 'function' && this.$files && typeof this.$files.put === 'function') {
      // The framework's creator names the file and refuses a second CreateSessionsTable.
      file = await creator.create(MIGRATION_NAME, dir);
      await this.$files.put(file, source);
    } else {
      file = writeMigration(dir, { table });
    }
    this.info('Migration created successfully!');
    return file;
  }
}

module.exports = SessionTableCommand;
