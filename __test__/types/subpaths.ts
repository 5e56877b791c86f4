// Every subpath export besides '.' and './fastify', used as an app or a driver author would.
// Every `@ts-expect-error` marks a call that must not type-check.
import sessionHandlerConformance from '@ostro/session/testing';
import { newId, type ConformanceOptions } from '@ostro/session/testing';
import SessionServiceProvider from '@ostro/session/sessionServiceProvider';
import StartSession from '@ostro/session/middleware/startSession';
import SessionTableCommand from '@ostro/session/console/sessionTableCommand';
import OstroSessionManager from '@ostro/session/sessionManager';
import { SessionManager as NamedOstroManager, DatabaseSessionHandler, configFromApp, type OstroSessionConfig } from '@ostro/session/sessionManager';
import { SessionManager, ArraySessionHandler, SessionHandlerInterface } from '@ostro/session';

// ----- testing ----------------------------------------------------------------------------------
class MapHandler extends SessionHandlerInterface {
  private map = new Map<string, string>();
  read(id: string): string { return this.map.get(id) ?? ''; }
  write(id: string, data: string): void { this.map.set(id, data); }
  destroy(id: string): void { this.map.delete(id); }
}
const opts: ConformanceOptions = { name: 'MapHandler', lifetimeSeconds: 2, gcRemoves: false, before: async () => undefined };
sessionHandlerConformance(() => new MapHandler(), opts);
sessionHandlerConformance(async ({ minutes }) => new ArraySessionHandler(minutes));
sessionHandlerConformance.sessionHandlerConformance(() => ({ read: () => '', write: () => undefined, destroy: () => undefined }));
const id: string = newId();
// @ts-expect-error the factory must return a handler
sessionHandlerConformance(() => 42);
// @ts-expect-error unknown option
sessionHandlerConformance(() => new MapHandler(), { nmae: 'typo' });
// @ts-expect-error gcRemoves is a boolean
sessionHandlerConformance(() => new MapHandler(), { gcRemoves: 'no' });

// ----- OstroJS ----------------------------------------------------------------------------------
const provider = new SessionServiceProvider({});
provider.register();
provider.boot();
// @ts-expect-error the provider needs the app
new SessionServiceProvider();

const mw = new StartSession();
const session: SessionManager | null = mw.$session;
mw.handle({ request: {}, response: {}, next: (err?: unknown) => err });
// @ts-expect-error handle takes one { request, response, next } object
mw.handle({}, {}, () => undefined);

const cmd = new SessionTableCommand();
const file: Promise<string> = cmd.handle();
// @ts-expect-error handle resolves to the migration's path
const wrongFile: Promise<number> = cmd.handle();

const fromApp = new OstroSessionManager({ config: { get: (k: string) => k } });
const fromConfig = new NamedOstroManager({ driver: 'database', connection: 'mysql', query_builder: true, key: 'k' });
const base: SessionManager = fromConfig;
const cfg: OstroSessionConfig = configFromApp({});
const dbHandler = new DatabaseSessionHandler(() => ({}), { table: 'sessions', minutes: 120 });
const read: Promise<string> = dbHandler.read(id);
const isOstro: boolean = fromApp instanceof OstroSessionManager.SessionManager;
// @ts-expect-error query_builder is a boolean (or an env() string)
const badCfg: OstroSessionConfig = { query_builder: 1 };
// @ts-expect-error the app or a config object, not a string
new OstroSessionManager('config/session.js');
// @ts-expect-error the database handler needs a connection
new DatabaseSessionHandler();
// Session data typed through the OstroJS manager too.
const typedOstro = new OstroSessionManager<{ views: number }>({ driver: 'array', key: 'k' });
const views: number = typedOstro.createStore().get('views');
// @ts-expect-error views is a number
typedOstro.createStore().put('views', 'many');

void [views, badCfg, session, file, wrongFile, base, cfg, read, isOstro];
