'use strict';
// The session every benchmark stores: about 1.1 KB of JSON with a user object, a cart and
// flash lists, like a logged-in shop session. One shape for every contender keeps rows comparable.

/** A fresh copy of the ~1 KB session object. */
function makeSession(n = 0) {
  return {
    _token: 'Xk3pQ9vLm2Rt8WbN4yHs6JdC1fGa7ZeU0oIcVqTn',
    _previous: { url: 'https://shop.example.com/catalog/shoes?page=2&sort=price' },
    user: {
      id: 48213 + n,
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      roles: ['customer', 'beta'],
      locale: 'en-GB',
      verified: true,
    },
    cart: {
      currency: 'EUR',
      items: [
        { sku: 'SHOE-RUN-42', name: 'Trail runner', qty: 1, price: 129.9 },
        { sku: 'SOCK-WOOL-M', name: 'Merino socks', qty: 3, price: 14.5 },
        { sku: 'CAP-SUN-01', name: 'Sun cap', qty: 1, price: 19 },
        { sku: 'BAG-DAY-20', name: 'Day pack 20 l', qty: 1, price: 79 },
      ],
      coupon: null,
    },
    prefs: { theme: 'dark', newsletter: false, currency: 'EUR', lastSearch: 'waterproof trail shoes' },
    counter: 0,
    _flash: { old: [], new: ['status'] },
    status: 'Profile updated.',
    recent: [1041, 1093, 2210, 2291, 3307, 3318, 4011, 5123],
    notes: 'x'.repeat(295),
  };
}

/** The JSON text of the session, and its size in bytes. */
const SESSION_JSON = JSON.stringify(makeSession());
const SESSION_BYTES = Buffer.byteLength(SESSION_JSON);

/** The change every store cycle makes: two keys. */
function mutate(obj) {
  obj.counter = (obj.counter || 0) + 1;
  obj.lastSeen = 1700000000000 + obj.counter;
}

module.exports = { makeSession, mutate, SESSION_JSON, SESSION_BYTES };
