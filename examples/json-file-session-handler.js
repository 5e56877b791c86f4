'use strict';
// A custom session driver storing each session as one JSON file, with fs.promises. Every method
// is async. Writes go to a temporary file that is then renamed over the old one, so a reader
// never sees half a session.
const fsp = require('node:fs/promises');
const path = require('node:path');
const crypto = require('node:crypto');
const { SessionHandlerInterface } = require('@ostro/session');

// Ids reach a handler already checked by the engine; a driver that builds paths from them checks
// again anyway, so no id can escape the directory.
const ID = /^[A-Za-z0-9_-]{40}$/;

class JsonFileSessionHandler extends SessionHandlerInterface {
  /**
   * @param {string} directory where the files go; created (mode 0700) by `open()`
   * @param {{ minutes?: number }} [options] lifetime after the last write or touch (default 120)
   */
  constructor(directory, options = {}) {
    super();
    this.directory = directory;
    this.lifetimeMs = (options.minutes ?? 120) * 60 * 1000;
  }

  async open() {
    await fsp.mkdir(this.directory, { recursive: true, mode: 0o700 });
  }

  file(sessionId) {
    if (typeof sessionId !== 'string' || !ID.test(sessionId)) {
      throw new TypeError('invalid session id');
    }
    return path.join(this.directory, `${sessionId}.json`);
  }

  async load(sessionId) {
    try {
      const rec = JSON.parse(await fsp.readFile(this.file(sessionId), 'utf8'));
      return typeof rec.data === 'string' && typeof rec.at === 'number' ? rec : null;
    } catch (err) {
      if (err.code === 'ENOENT' || err instanceof SyntaxError) return null; // none, or torn by a crash
      throw err;
    }
  }

  async store(sessionId, rec) {
    const target = this.file(sessionId);
    const tmp = `${target}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(rec), { mode: 0o600 });
      await fsp.rename(tmp, target);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async read(sessionId) {
    const rec = await this.load(sessionId);
    if (rec === null || Date.now() - rec.at > this.lifetimeMs) return '';
    return rec.data;
  }

  async write(sessionId, data) {
    await this.store(sessionId, { data, at: Date.now() });
  }

  async destroy(sessionId) {
    await fsp.rm(this.file(sessionId), { force: true });
  }

  async touch(sessionId) {
    const rec = await this.load(sessionId);
    if (rec === null || Date.now() - rec.at > this.lifetimeMs) return false;
    await this.store(sessionId, { data: rec.data, at: Date.now() });
    return true;
  }

  async gc(lifetimeSeconds) {
    const oldest = Date.now() - lifetimeSeconds * 1000;
    let names;
    try {
      names = await fsp.readdir(this.directory);
    } catch (err) {
      if (err.code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const rec = await this.load(name.slice(0, -5)).catch(() => null);
      if (rec !== null && rec.at < oldest) {
        await fsp.rm(path.join(this.directory, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}

module.exports = { JsonFileSessionHandler };
