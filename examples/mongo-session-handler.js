'use strict';
// A custom driver over a MongoDB collection (the `mongodb` package's findOne, updateOne,
// deleteOne, deleteMany). Each record keeps the time of its last write or touch, and reads and
// touches ignore records older than the lifetime: a TTL index removes expired documents only
// about once a minute, and gc() runs only by lottery.
const { SessionHandlerInterface } = require('@ostro/session');

class MongoSessionHandler extends SessionHandlerInterface {
  /**
   * @param {import('mongodb').Collection} collection
   * @param {{ minutes?: number }} [options] lifetime after the last write or touch (default 120)
   */
  constructor(collection, { minutes = 120 } = {}) {
    super();
    this.collection = collection;
    this.lifetimeMs = minutes * 60 * 1000;
  }

  /** Records written or touched at or after this instant are alive. */
  cutoff() {
    return new Date(Date.now() - this.lifetimeMs);
  }

  async read(id) {
    const doc = await this.collection.findOne({ _id: id, at: { $gte: this.cutoff() } });
    return doc ? doc.payload : '';
  }

  async write(id, payload) {
    await this.collection.updateOne({ _id: id }, { $set: { payload, at: new Date() } }, { upsert: true });
  }

  async destroy(id) {
    await this.collection.deleteOne({ _id: id });
  }

  /** Refreshes an unchanged session's expiry; false (no live record) makes the Store write it. */
  async touch(id) {
    const r = await this.collection.updateOne({ _id: id, at: { $gte: this.cutoff() } }, { $set: { at: new Date() } });
    return r.matchedCount === 1;
  }

  async gc(seconds) {
    const r = await this.collection.deleteMany({ at: { $lt: new Date(Date.now() - seconds * 1000) } });
    return r.deletedCount;
  }
}

module.exports = { MongoSessionHandler };
