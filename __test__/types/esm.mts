// The Fastify plugin and the conformance suite from an ES module (node16 resolution: the default
// import of a CommonJS module is its module.exports).
import Fastify from 'fastify';
import ostroSession from '@ostro/session/fastify';
import sessionHandlerConformance from '@ostro/session/testing';
import { ArraySessionHandler } from '@ostro/session';

const app = Fastify();
await app.register(ostroSession, { driver: 'array', key: 'k' });
app.get('/', async (request) => ({ n: request.session.increment('n') }));
sessionHandlerConformance(({ minutes }) => new ArraySessionHandler(minutes), { name: 'array from ESM' });

// @ts-expect-error an unknown driver option type
await app.register(ostroSession, { driver: 42 });
// @ts-expect-error the session has no such method
app.get('/x', async (request) => request.session.nope());
// @ts-expect-error the factory receives { minutes }
sessionHandlerConformance(({ seconds }) => new ArraySessionHandler(seconds));
// @ts-expect-error the plugin takes options, not a string
await app.register(ostroSession, 'redis://127.0.0.1');
