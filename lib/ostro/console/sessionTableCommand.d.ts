// Types of `@ostro/session/console/sessionTableCommand` (`node assistant session:table`).

/**
 * Writes the migration of the session table (named after `session.table`). Extends
 * `@ostro/console/command` when the app has it.
 */
declare class SessionTableCommand {
  /** @param $files the app's filesystem (`$app['files']`), used with the framework's migration creator */
  constructor($files?: unknown);
  $signature: string;
  $description: string;
  $files: unknown;
  /** Resolves to the path of the migration file written. */
  handle(): Promise<string>;
}

export = SessionTableCommand;
