// An Express app on the Laravel-style Store, with `req.session` typed by module augmentation
// (opt-in: one session API per app; see express-session.ts for the other one). Every
// `@ts-expect-error` marks a call that must not type-check.
import express from 'express';
import { SessionManager, type HttpStore, type SessionRequest, type SessionMiddleware } from '@ostro/session';

interface AppData {
  user?: { id: number; name: string };
  views: number;
  recent: string[];
}

declare global {
  namespace Express {
    interface Request extends SessionRequest<AppData> {}
  }
}

const manager = new SessionManager<AppData>({ driver: 'array', key: 'base64:…' });
const app = express();
const mw: SessionMiddleware = manager.middleware();
app.use(mw);
app.use(manager.middleware({ api: 'laravel' }));

app.get('/', async (req, res) => {
  const store: HttpStore<AppData> = req.session;
  const views: number = req.session.increment('views');
  req.session.push('recent', req.path);
  const name: string = req.session.get('user.name', 'guest');
  const token: string | null = req.session.token();
  res.json({ views, name, token, id: store.getId() });
});

app.post('/login', async (req, res) => {
  await req.session.regenerate(true);
  req.session.put('user', { id: 1, name: 'Ada' });
  req.session.flash({ recent: [] });
  res.redirect('/');
});

app.post('/logout', async (req, res) => {
  await req.session.invalidate();
  res.redirect('/');
});

app.get('/wrong', (req, res) => {
  // @ts-expect-error no such key in AppData
  req.session.get('usr');
  // @ts-expect-error user.id is a number
  req.session.put('user.id', '1');
  // @ts-expect-error views is not an array
  req.session.push('views', 1);
  // @ts-expect-error the Store keeps data behind its methods, not as properties
  req.session.views = 1;
  // @ts-expect-error express-session's callback API belongs to api: 'express-session'
  req.session.save((err: unknown) => res.end(String(err)));
  res.end();
});

// @ts-expect-error express-session's options need api: 'express-session'
manager.middleware({ rolling: true });
// @ts-expect-error no such API
manager.middleware({ api: 'koa' });
