// Types of `@ostro/session/sessionManager`: the SessionManager OstroJS binds as `session`.
import type { SessionConfig, SessionHandlerInterface, SessionManager as BaseSessionManager, WriteMeta } from '../../index';

/** The options SessionManager takes (its second constructor argument). */
type ManagerOptions = ConstructorParameters<typeof BaseSessionManager>[1];

/**
 * The SessionManager of an OstroJS app: `new SessionManager(app)` (as 1.x) reads the app's
 * config; `new SessionManager(config, { app })` takes a config object. `connection` may name a
 * connection of the app's database config; `query_builder: true` makes the `database` driver use
 * the query builder even on SQLite, `native: true` the native DatabaseSessionHandler on pgsql/mysql.
 */
declare class OstroSessionManager<Data extends object = Record<string, unknown>> extends BaseSessionManager<Data> {
  constructor(appOrConfig?: OstroSessionManager.OstroSessionConfig | object, options?: ManagerOptions);
}

type OstroSessionManagerClass = typeof OstroSessionManager;

declare namespace OstroSessionManager {
  /** The generic config plus the OstroJS-only keys. */
  export interface OstroSessionConfig extends SessionConfig {
    /** The `database` driver uses the query builder even on SQLite. */
    query_builder?: boolean | string;
    /** The `database` driver uses the native DatabaseSessionHandler (Rust) on a pgsql or mysql connection. */
    native?: boolean | string;
  }

  /** Sessions as rows of a table through an OstroJS database connection (the query builder). */
  export class DatabaseSessionHandler extends SessionHandlerInterface {
    /** @param connection an OstroJS database connection, or a function returning one */
    constructor(connection: object | (() => object), options?: { table?: string; minutes?: number; tombstoneSeconds?: number; now?: () => number });
    read(sessionId: string): Promise<string>;
    write(sessionId: string, data: string, meta?: WriteMeta): Promise<void>;
    destroy(sessionId: string): Promise<void>;
    gc(lifetimeSeconds: number): Promise<number>;
    touch(sessionId: string): Promise<boolean>;
    /** Compare-and-set: writes only if the stored payload is still `previousData` ('' = no record). */
    writeIfUnchanged(sessionId: string, data: string, previousData: string, meta?: WriteMeta): Promise<boolean>;
  }

  export const SessionManager: OstroSessionManagerClass;
  export type SessionManager = OstroSessionManager;
  export const OstroSessionManager: OstroSessionManagerClass;
  export type OstroSessionManager = InstanceType<OstroSessionManagerClass>;
  /** `config('session')` plus `app.key` and `app.previous_keys`, as the manager takes them. */
  export function configFromApp(app: object): OstroSessionConfig;
}

export = OstroSessionManager;
