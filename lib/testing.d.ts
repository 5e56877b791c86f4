// Types of `@ostro/session/testing`: the conformance suite for session drivers (node:test).
import type { CustomSessionHandler, NativeSessionHandler, SessionHandlerInterface } from '../index';

type AnyHandler = CustomSessionHandler | NativeSessionHandler | SessionHandlerInterface;
type Conformance = (
  factory: (options: { minutes: number }) => AnyHandler | Promise<AnyHandler>,
  options?: conformance.ConformanceOptions,
) => void;

declare namespace conformance {
  /** Options of the conformance suite. */
  export interface ConformanceOptions {
    /** Suite title (default 'session handler conformance'). */
    name?: string;
    /** Size of the large payload, bytes (default 524288; the cookie driver passes its small limit). */
    payloadBytes?: number;
    /** Sessions in flight in the concurrency tests (default 500). */
    concurrency?: number;
    /** Lifetime in the expiry tests, seconds (default 1; a driver whose clock ticks in whole seconds may need 2). */
    lifetimeSeconds?: number;
    /** How long past the lifetime a record may linger, ms (default 4000). */
    expiryWaitMs?: number;
    /** Whether `gc()` itself removes expired records and counts them (default true; false when the server expires them). */
    gcRemoves?: boolean;
    /** Runs before the suite (start a server). */
    before?: () => unknown;
    /** Runs after the suite, even on failure. */
    after?: () => unknown;
    /** Per-test timeout, ms (default 120000). */
    timeout?: number;
  }

  /** The same function, by name. */
  export const sessionHandlerConformance: Conformance;
  /** A fresh session id: 40 characters of [A-Za-z0-9]. */
  export function newId(): string;
}

/**
 * Registers the conformance suite (one node:test `describe`) for a driver; `factory` builds a
 * handler whose records live `minutes` after their last write or touch. The suite closes every
 * handler it created.
 */
declare function conformance(...params: Parameters<Conformance>): void;

export = conformance;
