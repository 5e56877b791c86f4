// An Express app on the express-session API (`manager.middleware({ api: 'express-session' })`),
// as an app switching from express-session writes it: the session data declared once on
// `ExpressSessionData`, `req.session` typed by augmenting Express's Request. Compiled as its own
// project (tsconfig.express-session.json): an app picks one session API, and both augment
// `req.session`. Every `@ts-expect-error` marks a call that must not type-check.
import express from 'express';
import {
  SessionManager, type ExpressSession, type ExpressSessionRequest, type ExpressSessionOptions,
  type ExpressSessionMiddleware, type SessionCookie,
} from '@ostro/session';

declare module '@ostro/session' {
  interface ExpressSessionData {
    views: number;
    passport: { user: number };
    cart: { items: string[] };
  }
}

declare global {
  namespace Express {
    interface Request extends ExpressSessionRequest {}
  }
}

const manager = new SessionManager({ driver: 'redis', connection: 'redis://127.0.0.1:6379', key: 'base64:…' });
const options: ExpressSessionOptions = {
  rolling: true,
  resave: false,
  saveUninitialized: false,
  unset: 'destroy',
  migrateFrom: { secret: ['old secret'], store: { get: (sid, cb) => cb(null, null) } },
};
const mw: ExpressSessionMiddleware = manager.middleware({ api: 'express-session', ...options });
const app = express();
app.use(mw);

app.get('/', (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1;
  req.session.cart = { items: ['A-1'] };
  req.session.anythingElse = { free: true };
  delete req.session.cart;
  const cookie: SessionCookie = req.session.cookie;
  cookie.maxAge = 60_000;
  const expires: Date | null = req.session.cookie.expires;
  const id: string = req.session.id;
  const sid: string = req.sessionID;
  const s: ExpressSession = req.session.touch();
  req.session.save((err) => {
    if (err) return res.status(500).end();
    res.json({ views: req.session.views, id, sid, expires, same: s === req.session });
  });
});

app.post('/login', (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.passport = { user: 1 };
    req.session.reload(() => res.redirect('/'));
  });
});

app.post('/logout', (req, res) => {
  req.session.destroy(() => res.redirect('/'));
});

app.get('/wrong', (req, res) => {
  // @ts-expect-error views is a number (ExpressSessionData)
  req.session.views = 'many';
  // @ts-expect-error passport.user is a number
  req.session.passport = { user: 'ada' };
  // @ts-expect-error the id is read-only (regenerate() for a new one)
  req.session.id = 'x';
  // @ts-expect-error cookie.maxAge is milliseconds or null
  req.session.cookie.maxAge = '1h';
  // @ts-expect-error the callback takes an error, not a session
  req.session.save((err: Error, session: object) => res.end());
  // @ts-expect-error not the Laravel Store's API
  req.session.get('views');
  res.end();
});

// @ts-expect-error rolling is a boolean
manager.middleware({ api: 'express-session', rolling: 'yes' });
// @ts-expect-error unset is 'keep' or 'destroy'
manager.middleware({ api: 'express-session', unset: 'drop' });
// @ts-expect-error migrateFrom needs the old secret
manager.middleware({ api: 'express-session', migrateFrom: { store: { get: () => undefined } } });
// @ts-expect-error the old store needs get(sid, callback)
manager.middleware({ api: 'express-session', migrateFrom: { secret: 's', store: {} } });
