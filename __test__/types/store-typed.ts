// Session data typed by the app: `Store<Data>` / `SessionManager<Data>` with dot paths, the
// save() result and the drivers' options. Every `@ts-expect-error` marks a call that must not
// type-check (types.test.js checks each one fails).
import {
  Store, HttpStore, SessionManager, ArraySessionHandler, FileSessionHandler, SqliteSessionHandler, CookieSessionHandler,
  type SessionPath, type SessionPathValue,
} from '@ostro/session';

interface AppData {
  user?: { id: number; name: string; roles: string[] };
  views: number;
  cart: { items: Array<{ sku: string; qty: number }>; note: string | null };
  prefs: Record<string, { on: boolean }>;
  /** A free-form part: any path below it, read as unknown. */
  scratch: unknown;
}

// A recursive type: paths are enumerated 6 levels deep, then accepted unchecked.
interface Node { name: string; children: Node[] }

async function typed(): Promise<void> {
  const session = new Store<AppData>('app_session', new ArraySessionHandler());
  await session.start();

  // ----- reads: the path's type; `null` where the path may be absent ---------------------------
  const name: string | null = session.get('user.name');
  const views: number = session.get('views');
  const qty: number | null = session.get('cart.items.0.qty');
  const note: string | null = session.get('cart.note');
  const on: boolean = session.get('prefs.dark.on');
  const free: unknown = session.get('scratch.a.b');
  const withDefault: number | string = session.get('views', 'none');
  const lazyDefault: string = session.get('user.name', () => 'guest');
  const pulled: string[] | null = session.pull('user.roles');
  const removed: number | null = session.remove('user.id');
  const some: { views?: number; user?: AppData['user'] } = session.only('views', 'user');
  const everything: Partial<AppData> = session.all();
  const token: unknown = session.all()._token;

  // ----- writes: the path's type ---------------------------------------------------------------
  session.put('user.name', 'Ada');
  session.put('user', { id: 1, name: 'Ada', roles: ['admin'] });
  session.put('cart.note', null);
  session.put('scratch.anything', { deep: [1, 'two'] });
  session.put({ views: 1, 'user.name': 'Ada' });
  session.replace({ cart: { items: [], note: null } });
  session.merge('cart', { note: 'gift' });
  session.now('views', 0);
  session.flash('scratch');
  session.flash('cart.note', 'saved');
  session.flash({ views: 2 });
  const n: number = session.increment('views');
  session.decrement('cart.items.0.qty', 2);
  session.push('user.roles', 'editor');
  session.push('cart.items', { sku: 'A-1', qty: 1 });
  const remembered: number = session.remember('views', () => 0);

  // ----- keys ----------------------------------------------------------------------------------
  const has: boolean = session.has('user.name', ['views', 'cart.items']);
  session.forget('user.roles', 'scratch.x');
  session.keep(['cart.note']);
  const missing: boolean = session.missing('prefs.dark');

  // ----- lifecycle -----------------------------------------------------------------------------
  const outcome: 'written' | 'touched' | 'dropped' = await session.save();
  await session.save({ resave: true });

  // ----- the type helpers ----------------------------------------------------------------------
  const path: SessionPath<AppData> = 'cart.items.3.sku';
  const numeric: SessionPath<AppData, number> = 'user.id';
  const value: SessionPathValue<AppData, 'user.roles'> = ['admin'];
  const tree = new Store<Node>('tree', new ArraySessionHandler());
  const deep: string | null = tree.get('children.0.children.1.name');
  const deeper: unknown = tree.get('children.0.children.1.children.2.children.3.name');

  // ----- wrong calls ---------------------------------------------------------------------------
  // @ts-expect-error unknown path
  session.get('usr.name');
  // @ts-expect-error user.name is a string
  session.put('user.name', 1);
  // @ts-expect-error put takes a whole object at 'user' (use dotted keys or merge() for a part)
  session.put('user', { name: 'Ada' });
  // @ts-expect-error a function is not a session value
  session.put('scratch.fn', () => 1);
  // @ts-expect-error unknown key in the object form
  session.put({ veiws: 1 });
  // @ts-expect-error a wrong type in the object form
  session.put({ views: '1' });
  // @ts-expect-error increment only on number paths
  session.increment('user.name');
  // @ts-expect-error push only on array paths
  session.push('views', 1);
  // @ts-expect-error the element type of cart.items
  session.push('cart.items', 'A-1');
  // @ts-expect-error flash(key) means true, and views is a number
  session.flash('views');
  // @ts-expect-error unknown path in has()
  session.has('user.nmae');
  // @ts-expect-error unknown path in forget()
  session.forget(['cart.itmes']);
  // @ts-expect-error only() takes top-level keys (no dot notation)
  session.only('user.name');
  // @ts-expect-error merge takes a partial of the path's type
  session.merge('cart', { note: 1 });
  // @ts-expect-error get returns string | null here
  const wrongName: string = session.get('user.name');
  // @ts-expect-error save resolves to what it did, not a boolean
  const saved: boolean = await session.save();
  // @ts-expect-error save takes options, not a callback
  await session.save(() => undefined);

  void [name, views, qty, note, on, free, withDefault, lazyDefault, pulled, removed, some, everything, token, n, remembered, has, missing, outcome, path, numeric, value, deep, deeper, wrongName, saved];
}

async function freeForm(): Promise<void> {
  // The default Data: any key, reads are unknown, writes any SessionValue.
  const session = new Store('s', new ArraySessionHandler());
  const v: unknown = session.get('a.b.c');
  const d: unknown = session.get('a', 1);
  session.put('a.b', [1, { c: null }]);
  session.put({ a: 1, 'b.c': 'x' });
  session.push('list', 1);
  const n: number = session.increment('count');
  // @ts-expect-error reads are unknown until narrowed
  const s: string = session.get('a');
  // @ts-expect-error a function is not a session value
  session.put('a', () => 1);
  // @ts-expect-error undefined is refused (forget() the key instead)
  session.put('a', undefined);
  void [v, d, n, s];
}

async function manager(): Promise<void> {
  const m = new SessionManager<AppData>({ driver: 'array', key: 'k' });
  const store: HttpStore<AppData> = m.createStore();
  const views: number = store.get('views');
  const { store: loaded, existed, cookieId } = await m.loadStore('ostro_session=s%3A…');
  // The id a new cookie must carry after a renewal or a forward, else null (absent from a
  // subclass's own loadSession result).
  const renewedId: string | null | undefined = (await m.loadSession({ headers: {} })).cookieId;
  // @ts-expect-error cookieId is an id or null, never a number
  const wrongId: number = cookieId;
  const name: string | null = loaded.get('user.name');
  const fromReq = (await m.loadSession({ headers: {} })).store;
  fromReq.increment('views');
  // A typed manager is still a SessionManager (the Fastify plugin's { manager }, the adapters).
  const base: SessionManager = m;
  const baseStore: HttpStore = store;
  // A Store subclass for a typed manager (it may add methods, never fields).
  class AppStore extends HttpStore<AppData> {
    userName(): string { return this.get('user.name', 'guest'); }
  }
  const custom = new SessionManager<AppData>({ driver: 'array', key: 'k' }, { storeClass: AppStore });
  const plain = new SessionManager({ driver: 'array', key: 'k' }, { storeClass: class extends HttpStore {} });
  // @ts-expect-error the manager's Stores know AppData
  m.createStore().get('nope');
  // @ts-expect-error a Store class for other data
  new SessionManager<AppData>({}, { storeClass: class extends HttpStore<{ other: string }> {} });
  // @ts-expect-error views is a number
  (await m.loadStore(undefined)).store.put('views', 'many');
  void [views, existed, name, base, baseStore, custom, plain, renewedId, wrongId];
}

function handlers(): void {
  new FileSessionHandler('/tmp/sessions', 120, { timeoutMs: 5000, durable: true, maxFileBytes: 1 << 20, now: () => Date.now() });
  new FileSessionHandler('/tmp/sessions', undefined, { clock: { now: () => 0 } });
  new SqliteSessionHandler(':memory:', { table: 'sessions', minutes: 30, busyTimeoutMs: 100, timeoutMs: 1000 });
  new ArraySessionHandler(1, { clock: { now: () => 0 } });
  new CookieSessionHandler({ name: 'c', keys: ['k'], maxBytes: 4096, clock: { now: () => 0 } });
  // @ts-expect-error durable is a boolean
  new FileSessionHandler('/tmp/sessions', 120, { durable: 'yes' });
  // @ts-expect-error no such file option
  new FileSessionHandler('/tmp/sessions', 120, { fsync: true });
  // @ts-expect-error timeoutMs is a number of milliseconds
  new SqliteSessionHandler(':memory:', { timeoutMs: '1s' });
}

void [typed, freeForm, manager, handlers];
