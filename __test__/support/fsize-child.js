'use strict';
// Run under `prlimit --fsize=N`: writes a small payload, then one over the limit, and reports.
// SIGXFSZ is caught so the oversized write fails with EFBIG instead of killing the process.
process.on('SIGXFSZ', () => {});
const { FileSessionHandler } = require('../..');

(async () => {
  const [dir, id] = process.argv.slice(2);
  const h = new FileSessionHandler(dir, 120);
  await h.write(id, '{"v":"small"}');
  let error = null;
  try {
    await h.write(id, JSON.stringify({ v: 'x'.repeat(64 * 1024) }));
  } catch (e) {
    error = { code: e.code, message: e.message };
  }
  process.stdout.write(JSON.stringify({ error, after: await h.read(id) }));
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crash: String(e && e.stack) }));
  process.exitCode = 1;
});
