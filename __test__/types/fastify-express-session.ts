// A Fastify app on the express-session API (`api: 'express-session'`), as an app switching from
// @fastify/session writes it: the API declared once on `FastifySessionApi`, the data on
// `ExpressSessionData`. Compiled as its own project (tsconfig.fastify-express-session.json),
// since the declaration types every Fastify request of the program. Every `@ts-expect-error`
// marks a call that must not type-check.
import Fastify from 'fastify';
import ostroSession from '@ostro/session/fastify';
import { SessionManager, type FastifyExpressSession } from '@ostro/session';

declare module '@ostro/session' {
  interface FastifySessionApi {
    api: 'express-session';
  }
  interface ExpressSessionData {
    views: number;
    user: { name: string };
  }
}

async function main(): Promise<void> {
  const app = Fastify();
  await app.register(ostroSession, { driver: 'redis', connection: 'redis://127.0.0.1:6379', key: 'base64:…', api: 'express-session', rolling: true, unset: 'destroy' });
  const manager = new SessionManager({ driver: 'array', key: 'k' });
  await Fastify().register(ostroSession, { manager, api: 'express-session', resave: true, saveUninitialized: false });

  app.post('/login', async (request) => {
    const s: FastifyExpressSession = request.session;
    await request.session.regenerate(['views']);
    request.session.user = { name: 'Ada' };
    request.session.views = (request.session.views ?? 0) + 1;
    request.session.set('note', 'hi');
    const id: string = request.session.sessionId;
    await request.session.save();
    request.session.reload((err) => { void err; });
    request.session.cookie.maxAge = 60000;
    return { id, same: s === request.session, raw: request.session.get('note') };
  });

  app.post('/logout', async (request) => {
    await request.session.destroy();
  });

  app.get('/wrong', async (request) => {
    // @ts-expect-error views is a number
    request.session.views = 'many';
    // @ts-expect-error the session is not the Store: no increment()
    request.session.increment('views');
    // @ts-expect-error save() without a callback is a Promise, not the session
    const chained: FastifyExpressSession = request.session.save();
    // @ts-expect-error the id is read-only
    request.session.sessionId = 'x';
    return chained;
  });

  // @ts-expect-error rolling belongs to api: 'express-session'
  await Fastify().register(ostroSession, { driver: 'array', rolling: true });
  // @ts-expect-error resave beside { manager } only with api: 'express-session'
  await Fastify().register(ostroSession, { manager, resave: true });
  // @ts-expect-error unset takes 'keep' | 'destroy'
  await Fastify().register(ostroSession, { manager, api: 'express-session', unset: 'drop' });
}

void main;
