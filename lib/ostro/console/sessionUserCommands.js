'use strict';
// `node assistant session:list {user}`, `session:revoke {user} {handle?}` and `session:prune`:
// a user's sessions and gc from the command line (issue 13). Registered by the session service
// provider. As for session:table, the assistant builds every command at start-up, so the base
// class comes from the app and the constructors do nothing that could throw.
const { requireFromApp } = require('../resolve');

let Command = null;
try {
  Command = requireFromApp('@ostro/console/command');
} catch {
  Command = null;
}

/** Used when the app has no `@ostro/console` (there is then no assistant to run these). */
class FallbackCommand {
  setApp($app) { this.$app = $app; }
  getApp() { return this.$app; }
  info(message) { console.log(message); } // eslint-disable-line no-console
  line(message) { console.log(message); } // eslint-disable-line no-console
  error(message) { console.error(message); } // eslint-disable-line no-console
  createArgument(name, description) { return { name, description }; }
  argument(name) { return this.input && this.input[name]; }
}

const Base = Command || FallbackCommand;

/** A command that works on the app's session manager. */
class SessionCommand extends Base {
  get manager() { return this.$app['session']; }

  /** Reports `err` (its code and message) and sets a failing exit code; no stack trace. */
  fail(err) {
    this.error(err && err.code ? `${err.code}: ${err.message}` : String(err && err.message ? err.message : err));
    process.exitCode = 1;
  }
}

/** Lists a user's live sessions by handle: created, last activity, IP address, user agent. */
class SessionListCommand extends SessionCommand {
  $signature = 'session:list';

  $description = 'List the live sessions of a user (by handle, never the session id)';

  get $arguments() {
    return [this.createArgument('user', 'The user id the sessions are linked to').required()];
  }

  async handle() {
    const user = this.argument('user');
    let list;
    try {
      list = await this.manager.sessionsOf(user);
    } catch (err) {
      return this.fail(err);
    }
    if (list.length === 0) {
      this.info(`No live sessions for user ${user}.`);
      return list;
    }
    this.info(`${list.length} live session${list.length === 1 ? '' : 's'} for user ${user}:`);
    for (const s of list) {
      const created = s.createdAt ? s.createdAt.toISOString() : '-';
      this.line(`${s.handle}  created ${created}  last active ${s.lastActivity.toISOString()}  ${s.ipAddress || '-'}  ${s.userAgent || '-'}`);
    }
    return list;
  }
}

/** Ends one session of a user by handle, or all of them. */
class SessionRevokeCommand extends SessionCommand {
  $signature = 'session:revoke';

  $description = 'End one session of a user (by the handle session:list shows), or all of them';

  get $arguments() {
    return [
      this.createArgument('user', 'The user id the sessions are linked to').required(),
      this.createArgument('handle', 'The handle of the session to end (all sessions when omitted)'),
    ];
  }

  async handle() {
    const user = this.argument('user');
    const handle = this.argument('handle');
    try {
      if (handle) {
        if (await this.manager.destroySession(user, handle)) {
          this.info(`Ended session ${handle} of user ${user}.`);
          return 1;
        }
        this.error(`User ${user} has no live session with handle ${handle}.`);
        process.exitCode = 1;
        return 0;
      }
      const n = await this.manager.destroyUserSessions(user);
      this.info(`Ended ${n} session${n === 1 ? '' : 's'} of user ${user}.`);
      return n;
    } catch (err) {
      return this.fail(err);
    }
  }
}

/** Runs the driver's garbage collection now. */
class SessionPruneCommand extends SessionCommand {
  $signature = 'session:prune';

  $description = 'Remove expired sessions now (the gc the lottery runs)';

  async handle() {
    try {
      const n = await this.manager.collectGarbage();
      this.info(`Pruned ${n} expired session record${n === 1 ? '' : 's'}.`);
      return n;
    } catch (err) {
      return this.fail(err);
    }
  }
}

module.exports = { SessionListCommand, SessionRevokeCommand, SessionPruneCommand };
