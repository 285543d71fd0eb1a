// Starts Debian's redis-server on a free loopback port, with nothing saved
// to disk, and can kill and restart it on the same port.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

/** A port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True when `redis-server` can be run. */
function haveRedis() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs redis-server on `port`; resolves once it accepts connections. A
 * durable one writes every command to its append-only file before
 * answering, so a crash loses nothing.
 */
function run(port, dir, durable) {
  return new Promise((resolve, reject) => {
    const persistence = durable
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no'];
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence,
      '--dir', dir, '--protected-mode', 'no',
    ], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 20000);
    child.on('error', reject);
    child.stdout.on('data', (data) => {
      output += data;
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
  });
}

/**
 * Starts Redis (with `{ durable: true }`, one that keeps its data across a
 * crash); resolves with { url, port, kill(), restart(), pause(), resume(), stop() }.
 */
async function startRedis({ durable = false } = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-'));
  let child = await run(port, dir, durable);
  const exited = (c) => new Promise((done) => {
    if (c.exitCode !== null || c.signalCode !== null) return done();
    c.once('exit', () => done());
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}/`,
    /** Kills the server at once, as a crash would. */
    async kill() { child.kill('SIGKILL'); await exited(child); },
    /** Starts it again on the same port: empty, or as it was when durable. */
    async restart() { child = await run(port, dir, durable); },
    /** Freezes it (SIGSTOP): connections stay open, nothing is answered. */
    pause() { child.kill('SIGSTOP'); },
    /** Lets a paused server go on (SIGCONT). */
    resume() { child.kill('SIGCONT'); },
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startRedis, haveRedis, freePort };
