// A Fastify app using @ostro/session/fastify, as a TypeScript user writes it. Every
// `@ts-expect-error` marks a call that must not type-check (types.test.js checks each one fails).
import Fastify from 'fastify';
import ostroSession, { ostroSession as named } from '@ostro/session/fastify';
import plugin = require('@ostro/session/fastify');
import { SessionManager, HttpStore } from '@ostro/session';

async function main(): Promise<void> {
  const app = Fastify();

  // Config object form.
  await app.register(ostroSession, { driver: 'redis', connection: 'redis://127.0.0.1:6379', key: 'base64:…', lifetime: 120, same_site: 'lax' });

  // { manager } form.
  const manager = new SessionManager({ driver: 'array', key: 'k' });
  await Fastify().register(ostroSession, { manager });

  // The named export, `require()` and `default` are the same plugin.
  await Fastify().register(named, { driver: 'file' });
  await Fastify().register(plugin, {});
  await Fastify().register(plugin.default, { driver: 'cookie', key: 'k' });

  app.get('/', async (request, reply) => {
    const s: HttpStore = request.session;
    const n: number = request.session.increment('views');
    request.session.put('user', { name: 'Ada', roles: ['admin'] });
    request.session.flash('status', 'saved');
    await request.session.regenerate();
    const id: string = request.session.getId();
    const token: string | null = request.session.token();
    const m: SessionManager = app.sessionManager;
    reply.header('x-id', id);
    return { n, token, same: s === request.session, driver: m.getDefaultDriver() };
  });

  app.get('/wrong', async (request) => {
    // @ts-expect-error a method the Store does not have
    request.session.set('x', 1);
    // @ts-expect-error a function is not a session value
    request.session.put('fn', () => 1);
    // @ts-expect-error increment returns a number
    const s: string = request.session.increment('n');
    // @ts-expect-error the session is a Store, not a plain object
    request.session.views = 1;
    return s;
  });

  // @ts-expect-error mixing { manager } with config keys
  await Fastify().register(ostroSession, { manager, driver: 'file' });
  // @ts-expect-error manager must be a SessionManager
  await Fastify().register(ostroSession, { manager: {} });
  // @ts-expect-error lifetime is minutes (a number or numeric string)
  await Fastify().register(ostroSession, { lifetime: true });
  // @ts-expect-error same_site takes 'lax' | 'strict' | 'none' | null
  await Fastify().register(ostroSession, { same_site: 'sometimes' });
  // @ts-expect-error no such decorator
  app.sessionManagr.close();
}

void main;
