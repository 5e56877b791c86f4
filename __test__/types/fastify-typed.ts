// A Fastify app with its session data declared on `FastifySessionData`: `request.session` is then
// `HttpStore<FastifySessionData>`. Compiled as its own project (tsconfig.fastify-typed.json),
// since the declaration applies to every Fastify request of the program. Every
// `@ts-expect-error` marks a call that must not type-check.
import Fastify from 'fastify';
import ostroSession from '@ostro/session/fastify';
import { SessionManager, type HttpStore, type FastifySessionData } from '@ostro/session';

declare module '@ostro/session' {
  interface FastifySessionData {
    user?: { id: number; name: string };
    views: number;
    recent: string[];
  }
}

async function main(): Promise<void> {
  const app = Fastify();
  await app.register(ostroSession, { manager: new SessionManager<FastifySessionData>({ driver: 'array', key: 'k' }) });

  app.get('/', async (request) => {
    const store: HttpStore<FastifySessionData> = request.session;
    const views: number = request.session.increment('views');
    request.session.push('recent', request.url);
    const name: string = request.session.get('user.name', 'guest');
    request.session.put('user', { id: 1, name: 'Ada' });
    return { views, name, id: store.getId() };
  });

  app.get('/wrong', async (request) => {
    // @ts-expect-error no such key in FastifySessionData
    request.session.get('usr');
    // @ts-expect-error user.id is a number
    request.session.put('user.id', '1');
    // @ts-expect-error recent is not a number
    request.session.increment('recent');
    // @ts-expect-error get returns string | null here
    const name: string = request.session.get('user.name');
    return name;
  });
}

void main;
