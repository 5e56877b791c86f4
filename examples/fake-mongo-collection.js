'use strict';
// An in-memory stand-in for the part of a MongoDB collection that MongoSessionHandler uses, so
// the example runs, and passes the conformance kit, without a MongoDB server. Filters: equality
// and $lt, $lte, $gt, $gte (numbers or Dates); updates: $set, with { upsert: true }. Results
// have the `mongodb` package's shape (matchedCount, upsertedCount, deletedCount).

const OPERATORS = {
  $lt: (a, b) => a < b,
  $lte: (a, b) => a <= b,
  $gt: (a, b) => a > b,
  $gte: (a, b) => a >= b,
};

// Dates compare by time, as in MongoDB; a missing field matches no comparison.
const plain = (v) => (v instanceof Date ? v.getTime() : v);

function matches(doc, filter) {
  for (const [field, cond] of Object.entries(filter)) {
    const value = doc[field];
    if (cond !== null && typeof cond === 'object' && !(cond instanceof Date)) {
      for (const [op, operand] of Object.entries(cond)) {
        if (!OPERATORS[op]) throw new Error(`FakeCollection: unsupported operator ${op}`);
        if (value === undefined || !OPERATORS[op](plain(value), plain(operand))) return false;
      }
    } else if (plain(value) !== plain(cond)) {
      return false;
    }
  }
  return true;
}

const copy = (doc) => ({ ...doc });

class FakeCollection {
  constructor() {
    this.docs = new Map(); // _id -> document
  }

  // Documents the filter may match: one lookup when it names an _id.
  candidates(filter) {
    if (filter._id !== undefined && (typeof filter._id !== 'object' || filter._id === null)) {
      const doc = this.docs.get(filter._id);
      return doc ? [doc] : [];
    }
    return [...this.docs.values()];
  }

  async findOne(filter) {
    const doc = this.candidates(filter).find((d) => matches(d, filter));
    return doc ? copy(doc) : null;
  }

  async updateOne(filter, update, options = {}) {
    const doc = this.candidates(filter).find((d) => matches(d, filter));
    if (doc) {
      Object.assign(doc, update.$set);
      return { matchedCount: 1, modifiedCount: 1, upsertedCount: 0 };
    }
    if (!options.upsert) return { matchedCount: 0, modifiedCount: 0, upsertedCount: 0 };
    const fresh = {};
    for (const [field, cond] of Object.entries(filter)) {
      if (cond === null || typeof cond !== 'object' || cond instanceof Date) fresh[field] = cond;
    }
    Object.assign(fresh, update.$set);
    if (fresh._id === undefined) throw new Error('FakeCollection: an upsert needs an _id');
    this.docs.set(fresh._id, fresh);
    return { matchedCount: 0, modifiedCount: 0, upsertedCount: 1 };
  }

  async deleteOne(filter) {
    const doc = this.candidates(filter).find((d) => matches(d, filter));
    if (!doc) return { deletedCount: 0 };
    this.docs.delete(doc._id);
    return { deletedCount: 1 };
  }

  async deleteMany(filter) {
    let deletedCount = 0;
    for (const doc of this.candidates(filter)) {
      if (matches(doc, filter)) {
        this.docs.delete(doc._id);
        deletedCount++;
      }
    }
    return { deletedCount };
  }
}

module.exports = { FakeCollection };
