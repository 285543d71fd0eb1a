// Starts the echo (or chat) example on a free port and stops it after the test.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');
const net = require('node:net');

const root = path.resolve(__dirname, '..', '..');
const echoBinary = process.env.ECHO_BIN || path.join(root, 'target', 'debug', 'echo');
const chatBinary = process.env.CHAT_BIN || path.join(root, 'target', 'debug', 'chat');

/** Starts the echo server; resolves with { url, port, stop() }. */
function startEcho(env = {}) {
  return startServer(echoBinary, env);
}

/** Starts the chat example; resolves with { url, port, stop() }. */
function startChat(env = {}) {
  return startServer(chatBinary, env);
}

/** Starts `binary` with PORT=0 and waits for its `listening on` line. */
function startServer(binary, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], {
      env: { ...process.env, PORT: '0', RUST_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((done) => child.once('exit', (code, signal) => done(code ?? signal)));
    let output = '';
    // Who waits for a pattern to show up in the output, and how often.
    const watchers = new Set();
    const count = (pattern) => (output.replace(/\x1b\[[0-9;]*m/g, '').match(new RegExp(pattern.source, 'g')) || []).length;
    const timer = setTimeout(() => reject(new Error(`${binary} did not start: ${output}`)), 20000);
    child.on('error', reject);
    child.stdout.on('data', (data) => {
      output += data;
      for (const watcher of watchers) watcher();
      const match = output.match(/listening on (http:\/\/127\.0\.0\.1:(\d+))/);
      if (match) {
        clearTimeout(timer);
        const signal = (name) => {
          if (child.exitCode === null && child.signalCode === null) child.kill(name);
          return exited;
        };
        resolve({
          url: match[1],
          port: Number(match[2]),
          address: `127.0.0.1:${match[2]}`,
          /** Everything it printed so far (its log lines, with RUST_LOG). */
          output: () => output,
          pid: child.pid,
          /** Resolves once `pattern` (a RegExp) showed up `times` times in its output. */
          waitForOutput: (pattern, times = 1, timeout = 30000) => new Promise((done, fail) => {
            const timer = setTimeout(() => {
              watchers.delete(check);
              fail(new Error(`${pattern} did not show up ${times} times:\n${output.slice(-2000)}`));
            }, timeout);
            function check() {
              if (count(pattern) >= times) {
                clearTimeout(timer);
                watchers.delete(check);
                done();
              }
            }
            watchers.add(check);
            check();
          }),
          /** Stops it as an operator would; resolves with its exit code. */
          stop: () => signal('SIGTERM'),
          /** Kills it at once, as a crash would; resolves with 'SIGKILL'. */
          kill: () => signal('SIGKILL'),
        });
      }
    });
  });
}

/**
 * Follows the chunked framing of an HTTP/1.1 response so that the proxy can
 * end it cleanly between two chunks.
 */
class ChunkedResponse {
  constructor() { this.state = 'head'; this.text = ''; this.remaining = 0; }

  /** Feeds response bytes; returns true when they end at a chunk boundary. */
  feed(buffer) {
    for (let i = 0; i < buffer.length; i++) {
      const ch = String.fromCharCode(buffer[i]);
      if (this.state === 'data') {
        if (--this.remaining === 0) { this.state = 'data-end'; this.text = ''; }
      } else {
        this.text += ch;
        if (this.state === 'head' && this.text.endsWith('\r\n\r\n')) { this.state = 'size'; this.text = ''; }
        else if (this.state === 'size' && this.text.endsWith('\r\n')) {
          this.remaining = parseInt(this.text, 16); this.text = '';
          this.state = this.remaining > 0 ? 'data' : 'done';
        } else if (this.state === 'data-end' && this.text === '\r\n') { this.state = 'size'; this.text = ''; }
      }
    }
    return this.state === 'size' && this.text === '';
  }
}

/**
 * A TCP proxy in front of `port` that can end BrowserChannel back channels
 * the way a dying server or network would: the client sees its back channel
 * end, while what the server writes next is lost.
 */
function startProxy(port) {
  const connections = new Set();
  let holdBackChannelsUntil = 0;
  const dropped = [];
  const isBackChannel = (line) => /^GET \S*\/bind\?\S*RID=rpc/.test(line);
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const conn = { client, upstream, backChannel: null, blackHole: false, discarded: 0 };
    connections.add(conn);
    const forwardRequest = (data) => { if (!upstream.destroyed) upstream.write(data); };
    client.on('data', (data) => {
      const line = data.toString('latin1').split('\r\n', 1)[0];
      if (/^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(line)) {
        conn.backChannel = isBackChannel(line) ? new ChunkedResponse() : null;
        const wait = holdBackChannelsUntil - Date.now();
        if (conn.backChannel && wait > 0) return void setTimeout(() => forwardRequest(data), wait);
      }
      forwardRequest(data);
    });
    upstream.on('data', (data) => {
      if (conn.blackHole) { conn.discarded += data.length; return; }
      client.write(data);
      if (conn.backChannel && conn.ending && conn.backChannel.feed(data)) finishEnding(conn);
      else if (conn.backChannel) conn.backChannel.feed(data);
    });
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      // A dropped back channel keeps its server side open: the server must
      // not learn that the client is gone until the hold is over.
      a.on('error', () => { if (!conn.blackHole) b.destroy(); });
      a.on('close', () => { if (!conn.blackHole) b.destroy(); });
    }
    client.on('close', () => connections.delete(conn));
  });
  const finishEnding = (conn) => {
    conn.ending = false;
    conn.blackHole = true;
    conn.client.end('0\r\n\r\n');
    conn.resolveEnded();
  };
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        /**
         * Ends every open back channel at its next chunk boundary and holds
         * new back channel requests for `holdMs`, so what the server writes
         * meanwhile is lost in transit. Resolves with how many ended.
         */
        async dropBackChannels(holdMs) {
          holdBackChannelsUntil = Date.now() + holdMs;
          const open = [...connections].filter((c) => c.backChannel && c.backChannel.state !== 'done');
          await Promise.all(open.map((conn) => new Promise((done) => {
            conn.resolveEnded = done;
            conn.ending = true;
            if (conn.backChannel.state === 'size' && conn.backChannel.text === '') finishEnding(conn);
          })));
          setTimeout(() => { for (const conn of open) conn.upstream.destroy(); }, holdMs);
          dropped.push(...open);
          return open.length;
        },
        /** Bytes the server wrote into dropped back channels. */
        lostBytes: () => dropped.reduce((sum, c) => sum + c.discarded, 0),
        close: () => new Promise((done) => {
          for (const c of connections) { c.client.destroy(); c.upstream.destroy(); }
          server.close(done);
        }),
      });
    });
  });
}

module.exports = { startEcho, startChat, startServer, startProxy };
