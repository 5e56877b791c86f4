// Types of an app's session data: the dot paths of the Store's keys (Laravel's `Arr` rules:
// `user.name` walks objects, `items.0` walks arrays), computed from the `Data` type the app gives
// `Store<Data>` / `SessionManager<Data>`. Where `Data` (or a part of it) is `unknown`, paths
// below it are free-form: any string, read as `unknown`, written as any `SessionValue`.
//
// Compile time: paths are enumerated at most `SessionPathDepth` levels deep; below that every
// path is accepted unchecked (reads stay exact: the value of one literal path is computed by
// walking that path, not by enumerating). So recursive types (a tree of nodes) cost a bounded
// amount and never hit TS2589 ("excessively deep").
import type { SessionValue } from '../index';

/** How many levels of keys `SessionPath` enumerates (6). */
export type SessionPathDepth = 6;

// Prev[D] is D - 1.
type Prev = [never, 0, 1, 2, 3, 4, 5, 6];

// Values no path goes inside.
type Leaf = string | number | boolean | bigint | symbol | null | undefined | Date | ((...args: never[]) => unknown);

/**
 * The dot paths of `Data` whose value is assignable to `V` (default: every path). A part of the
 * data typed `unknown` admits any path below it, whatever `V`.
 *
 *   SessionPath<{ user: { name: string; visits: number } }>          // 'user' | 'user.name' | 'user.visits'
 *   SessionPath<{ user: { name: string; visits: number } }, number>  // 'user.visits'
 *   SessionPath<Record<string, unknown>>                              // string
 */
export type SessionPath<Data, V = unknown> = PathsOf<Data, V, SessionPathDepth>;

type PathsOf<T, V, D extends number> = [D] extends [0]
  ? string
  : T extends readonly (infer E)[]
    ? PathsAt<`${number}`, E, V, D>
    : { [K in keyof T & string]-?: PathsAt<K, T[K], V, D> }[keyof T & string];

type PathsAt<K extends string, X, V, D extends number> = unknown extends X
  ? K | `${K}.${string}`
  : (NonNullable<X> extends V ? K : never) | (NonNullable<X> extends Leaf ? never : `${K}.${PathsOf<NonNullable<X>, V, Prev[D]>}`);

/**
 * The type at the dot path `P` of `Data`, with `undefined` added when the path may be absent (an
 * optional or nullable key on the way, an array index); `unknown` in free-form data.
 */
export type SessionPathValue<Data, P extends string> = unknown extends Data
  ? unknown
  : P extends `${infer K}.${infer R}`
    ? K extends keyof Data
      ? Below<Data[K], R>
      : Data extends readonly (infer E)[]
        ? K extends `${number}` ? Below<E | undefined, R> : Whole<Data, P>
        : Whole<Data, P>
    : Whole<Data, P>;

type Below<X, R extends string> = unknown extends X
  ? unknown
  : SessionPathValue<NonNullable<X>, R> | ([X] extends [NonNullable<X>] ? never : undefined);

// A key with no dot, or a literal top-level key that contains one (read first, as Laravel does).
type Whole<T, P extends string> = P extends keyof T
  ? T[P]
  : T extends readonly (infer E)[]
    ? P extends `${number}` ? E | undefined : unknown
    : unknown;

/** What `get(path)` returns: the value, or `null` where the path may be absent. */
export type SessionGot<V> = Exclude<V, undefined> | (undefined extends V ? null : never);

/** What `put(path, value)` takes at a path: its type (`undefined` refused), any `SessionValue` in free-form data. */
export type SessionPutValue<Data, P extends string> = unknown extends SessionPathValue<Data, P>
  ? SessionValue
  : Exclude<SessionPathValue<Data, P>, undefined>;

/** What `push(path, value)` appends: the array's element type. */
export type SessionElement<Data, P extends string> = unknown extends SessionPathValue<Data, P>
  ? SessionValue
  : NonNullable<SessionPathValue<Data, P>> extends readonly (infer E)[] ? E : never;

/**
 * The object form of `put`, `replace` and `flash`: each key a path (top-level or dotted), each
 * value that path's whole value. Every pair *replaces* its path, so a nested object must be
 * complete (use dotted keys, or `merge()`, to change part of one).
 */
export type SessionValues<Data> = { [P in SessionPath<Data>]?: SessionPutValue<Data, P> };

/** Every key optional, `depth` levels down (what `merge()` takes: objects merge, arrays concatenate). */
export type DeepPartial<T, D extends number = SessionPathDepth> = [D] extends [0]
  ? T
  : T extends Leaf | readonly unknown[]
    ? T
    : { [K in keyof T]?: DeepPartial<T[K], Prev[D]> };

/** What `merge(path, value)` takes. */
export type SessionMergeValue<Data, P extends string> = unknown extends SessionPathValue<Data, P>
  ? SessionValue
  : DeepPartial<Exclude<SessionPathValue<Data, P>, undefined>>;

/** `all()`, `except()`: a copy of the attributes, the engine's own keys (`_token`, `_flash`, …) included. */
export type SessionAttributes<Data> = Partial<Data> & { [key: string]: unknown };

/** The arguments of the variadic key methods (`has`, `forget`, …): paths, or arrays of them. */
export type SessionKeys<Data> = Array<SessionPath<Data> | ReadonlyArray<SessionPath<Data>>>;

/** `flash(path)` alone flashes `true`: allowed where `true` fits the path. */
export type SessionFlashArgs<Data, P extends string> = true extends SessionPutValue<Data, P>
  ? [value?: SessionPutValue<Data, P>]
  : [value: SessionPutValue<Data, P>];

/**
 * The session data of a Fastify app: `request.session` is `HttpStore<FastifySessionData>` once
 * the app declares it (and free-form while it is empty):
 *
 *   declare module '@ostro/session' {
 *     interface FastifySessionData { user?: { id: number; name: string }; views: number }
 *   }
 */
export interface FastifySessionData {}

/** `FastifySessionData`, or free-form data while nobody declared any. */
export type FastifySessionDataOrFree = [keyof FastifySessionData] extends [never] ? Record<string, unknown> : FastifySessionData;
