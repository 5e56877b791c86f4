'use strict';
// A custom session driver (the public SessionHandlerInterface, as an app would write one) that
// keeps records in a Map and counts what the engine asks of it, so tests can tell a write from
// a touch, and that can be told to fail its next operation, as a driver whose server went away.
const { SessionHandlerInterface } = require('../../lib/handler-interface');

class RecordingHandler extends SessionHandlerInterface {
  constructor() {
    super();
    this.records = new Map();
    this.calls = { read: 0, write: 0, touch: 0, destroy: 0 };
    this.failing = new Map(); // operation -> Error thrown by its next call
  }

  /** Makes the next call of `op` throw `err` (returned, so a test can compare identity). */
  failNext(op, err = new Error(`${op} failed: the session server went away`)) {
    this.failing.set(op, err);
    return err;
  }

  check(op) {
    this.calls[op]++;
    const err = this.failing.get(op);
    if (err !== undefined) {
      this.failing.delete(op);
      throw err;
    }
  }

  async read(id) {
    this.check('read');
    return this.records.get(id) ?? '';
  }

  async write(id, data) {
    this.check('write');
    this.records.set(id, data);
  }

  async touch(id) {
    this.check('touch');
    return this.records.has(id);
  }

  async destroy(id) {
    this.check('destroy');
    this.records.delete(id);
  }

  reset() {
    for (const k of Object.keys(this.calls)) this.calls[k] = 0;
  }
}

module.exports = { RecordingHandler };
