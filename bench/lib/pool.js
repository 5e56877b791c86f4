'use strict';
// The parent side of bench/lib/worker.js: spawns one worker per contender and calls it over IPC
// with a deadline. A worker that fails or times out is stopped by pid and reported, never hangs
// the run.

const { fork } = require('node:child_process');
const path = require('node:path');
const { track, stop } = require('./services');

const WORKER = path.join(__dirname, 'worker.js');

class Worker {
  constructor(label, execArgv = []) {
    this.label = label;
    this.log = '';
    this.pending = new Map();
    this.seq = 0;
    this.child = track(fork(WORKER, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv }));
    const keep = (d) => { this.log = (this.log + d).slice(-4000); };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.child.on('message', (m) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    // A send to a worker that just died reports here; the pending call is rejected by 'exit'.
    this.child.on('error', (err) => { this.log = `${this.log}\n${err.message}`.slice(-4000); });
    this.child.on('exit', (code, sig) => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`worker for ${label} exited (${code ?? sig}) ${this.log.trim().split('\n').slice(-5).join(' | ')}`));
      }
      this.pending.clear();
    });
  }

  /** Sends a command; rejects after `timeoutMs` (and stops the worker). */
  call(cmd, args, timeoutMs = 120000) {
    return new Promise((resolve, reject) => {
      const id = ++this.seq;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker for ${this.label} did not answer ${cmd} within ${timeoutMs} ms`));
        stop(this.child, 500);
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const failed = (err) => {
        if (!this.pending.has(id)) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`worker for ${this.label} is gone (${err.message}) ${this.log.trim().split('\n').slice(-3).join(' | ')}`));
      };
      try {
        this.child.send({ id, cmd, args }, (err) => { if (err) failed(err); });
      } catch (err) {
        failed(err);
      }
    });
  }

  /** Closes the contender and waits for the process to end (killed if it does not). */
  async close() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.call('close', {}, 10000).catch(() => {});
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    await stop(this.child, 1000);
  }

  get pid() { return this.child.pid; }
}

module.exports = { Worker };
