// Two echo nodes behind Debian's nginx with deploy/nginx/sticky.conf.template:
// the npm `browserchannel` and `sockjs-client` clients keep each session on
// one node, both nodes take sessions, a request that reaches the wrong node
// gets the protocol's "unknown session" answer at once, and when a node
// dies its clients are told at once and its keys move to the other node.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startEcho } = require('./echo-server');
const { freePort } = require('./redis-server');
const { BCSocket } = require('browserchannel');
const SockJS = require('sockjs-client');
const WebSocket = require('ws');
const { EventSource } = require('eventsource');

const root = path.resolve(__dirname, '..', '..');
const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const DEPLOY = path.join(root, 'deploy', 'nginx');
const COUNT = 1000;

function installed(file) {
  try { fs.accessSync(file, fs.constants.X_OK); return true; } catch { return false; }
}

/**
 * Starts nginx from a scratch directory with the deploy/ config in front of
 * `nodes` (addresses); resolves once its worker runs, with { url, dir, stop() }.
 * nginx's warnings and errors go to stderr unless `showErrors` is false.
 */
async function startNginx(nodes, { showErrors = true } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'axum-channel-nginx-'));
  // Started as root, nginx runs its worker as `nobody`, which must reach
  // the temp paths inside.
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const values = { NODE_A: nodes[0], NODE_B: nodes[1], LISTEN: `127.0.0.1:${port}` };
  const sticky = fs.readFileSync(path.join(DEPLOY, 'sticky.conf.template'), 'utf8')
    .replace(/\$\{(NODE_A|NODE_B|LISTEN)\}/g, (_, name) => values[name]);
  fs.writeFileSync(path.join(dir, 'sticky.conf'), sticky);
  fs.copyFileSync(path.join(DEPLOY, 'standalone.conf'), path.join(dir, 'nginx.conf'));
  const child = spawn(NGINX,
    ['-p', dir, '-e', 'stderr', '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nginx did not start:\n${log}`)), 10000);
    child.once('error', reject);
    exited.then((code) => reject(new Error(`nginx exited (${code}):\n${log}`)));
    child.stderr.on('data', (data) => {
      log += data;
      // Problems while the test runs (an upstream error, a timeout) show up.
      for (const line of String(data).split('\n')) {
        if (showErrors && /\[(warn|error|crit|alert|emerg)\]/.test(line)) process.stderr.write(`nginx: ${line}\n`);
      }
      if (/start worker process \d+/.test(log)) { clearTimeout(timer); resolve(); }
    });
  });
  let stopped = null;
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    /** Fast shutdown; resolves once nginx exited, so access.log is complete. */
    stop() {
      if (!stopped) {
        stopped = exited;
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      }
      return stopped;
    },
  };
}

/** fetch that fails rather than hangs. */
function request(url, options = {}) {
  return fetch(url, { signal: AbortSignal.timeout(5000), ...options });
}

/** `body` of a form POST the way BCSocket encodes one string message. */
function forwardBody(message) { return `count=1&ofs=0&req0__S=${encodeURIComponent(message)}`; }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Parses access.log (format axum_channel) into { method, path, query, status, upstream }. */
function readAccessLog(dir) {
  const lines = fs.readFileSync(path.join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
  return lines.map((line) => {
    const match = line.match(/"(\S+) (\S+) HTTP\/[\d.]+" (\d+) \d+ upstream=(\S+(?:, \S+)*) key=/);
    assert.ok(match, `unexpected access.log line: ${line}`);
    const url = new URL(match[2], 'http://x');
    return {
      line, method: match[1], path: url.pathname, query: url.searchParams,
      status: Number(match[3]), upstream: match[4],
    };
  });
}

/** Groups log entries by `key(entry)` (entries without one are left out) into key -> Set of upstreams. */
function upstreamsBy(entries, key) {
  const groups = new Map();
  for (const entry of entries) {
    const k = key(entry);
    if (!k) continue;
    if (!groups.has(k)) groups.set(k, new Set());
    groups.get(k).add(entry.upstream);
  }
  return groups;
}

/**
 * Keys that nginx at `url` sends to each of `addresses`, found with
 * requests that open nothing: the X-Upstream header names the node.
 * `kind` is 'browserchannel' (affinity tokens, probed with the `test` init
 * request) or 'sockjs' (session ids, probed with an xhr_send, which an
 * unknown session answers 404). Returns one key per address.
 */
async function keysFor(url, addresses, kind, prefix) {
  const probe = kind === 'browserchannel'
    ? (key) => request(`${url}/channel/test?VER=8&MODE=init&a=${key}`)
    : (key) => request(`${url}/sockjs/000/${key}/xhr_send`, { method: 'POST', body: '["probe"]' });
  const found = addresses.map(() => null);
  for (let i = 0; i < 100 && found.includes(null); i++) {
    const response = await probe(`${prefix}${i}`);
    await response.arrayBuffer();
    const index = addresses.indexOf(response.headers.get('x-upstream'));
    assert.notEqual(index, -1, `X-Upstream: ${response.headers.get('x-upstream')}`);
    found[index] ||= `${prefix}${i}`;
  }
  assert.ok(!found.includes(null), `${kind} keys for every node: ${found}`);
  return found;
}

/** Opens a BCSocket and resolves once it is open. */
function openBC(url, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = new BCSocket(url, { reconnect: false, ...options });
    socket.onopen = () => resolve(socket);
    socket.onerror = (error) => reject(new Error(`BCSocket error: ${error}`));
  });
}

/** Opens a SockJS xhr-streaming session; `sessionId` picks its id. */
function openSockJS(url, sessionId) {
  return new Promise((resolve, reject) => {
    const sock = new SockJS(url, null, { transports: ['xhr-streaming'], sessionId });
    sock.onopen = () => { sock.onclose = null; resolve(sock); };
    sock.onclose = (event) => reject(new Error(`closed before open: ${event.code} ${event.reason}`));
  });
}

/** Resolves with the first `count` messages `socket` receives. */
function collect(socket, count, label) {
  const received = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label}: only ${received.length} of ${count} echoes`)), 30000);
    socket.onmessage = ({ data }) => {
      received.push(data);
      if (received.length === count) { clearTimeout(timer); resolve(received); }
    };
  });
}

test('two echo nodes behind nginx with sticky sessions', async (t) => {
  if (!installed(NGINX)) return t.skip(`nginx is not installed (${NGINX})`);

  const nodes = [await startEcho(), await startEcho()];
  t.after(() => Promise.all(nodes.map((node) => node.stop())));
  const addresses = nodes.map((node) => node.address);
  const nginx = await startNginx(addresses);
  t.after(async () => {
    await nginx.stop();
    fs.rmSync(nginx.dir, { recursive: true, force: true });
  });
  const other = (address) => nodes[1 - addresses.indexOf(address)];
  const owner = (address) => nodes[addresses.indexOf(address)];
  const bcTokens = await keysFor(nginx.url, addresses, 'browserchannel', 'bc');
  const sockjsIds = await keysFor(nginx.url, addresses, 'sockjs', 'sj');

  await t.test('BrowserChannel: 1,000 messages in order on each session, sessions on both nodes', async () => {
    // One socket with BCSocket's defaults (a random affinity token), one
    // pinned to each node with the `affinity` option.
    const sockets = await Promise.all([
      openBC(`${nginx.url}/channel`),
      ...bcTokens.map((affinity) => openBC(`${nginx.url}/channel`, { affinity })),
    ]);
    assert.match(sockets[0].affinity, /^[0-9a-z]+$/, 'BCSocket made up an affinity token');
    const echoes = sockets.map((socket, n) => collect(socket, COUNT, `BrowserChannel ${n}`));
    const sent = [];
    for (let i = 0; i < COUNT; i++) {
      const message = i % 2 ? `message ${i} ✓` : { i, text: 'ünïcode 😀' };
      sent.push(message);
      for (const socket of sockets) socket.send(message);
    }
    for (const received of await Promise.all(echoes)) assert.deepEqual(received, sent);
    for (const socket of sockets) socket.close();
  });

  await t.test('SockJS xhr-streaming: 1,000 messages in order on each session, sessions on both nodes', async () => {
    // One session with a random id, one pinned to each node.
    const socks = await Promise.all([
      openSockJS(`${nginx.url}/sockjs`, 8),
      ...sockjsIds.map((id) => openSockJS(`${nginx.url}/sockjs`, () => id)),
    ]);
    const echoes = socks.map((sock, n) => collect(sock, COUNT, `SockJS ${n}`));
    const sent = [];
    for (let i = 0; i < COUNT; i++) {
      const message = `${i} ünï \u2028 😀 "quoted"`;
      sent.push(message);
      for (const sock of socks) sock.send(message);
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    for (const received of await Promise.all(echoes)) assert.deepEqual(received, sent);
    await Promise.all(socks.map((sock) => new Promise((resolve) => {
      sock.onclose = resolve;
      sock.close();
    })));
  });

  await t.test('WebSocket, SockJS over WebSocket and EventSource pass through nginx', async () => {
    const ws = new WebSocket(`${nginx.url.replace('http', 'ws')}/ws`);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const wsEcho = new Promise((resolve) => ws.once('message', (data) => resolve(data.toString())));
    ws.send('over ws');
    assert.equal(await wsEcho, 'over ws');
    ws.close();

    const sock = new SockJS(`${nginx.url}/sockjs`, null,
      { transports: ['websocket'], sessionId: () => sockjsIds[0] + 'ws' });
    await new Promise((resolve, reject) => {
      sock.onopen = resolve;
      sock.onclose = (event) => reject(new Error(`closed before open: ${event.code} ${event.reason}`));
    });
    assert.equal(sock.transport, 'websocket');
    const sockEcho = collect(sock, 1, 'SockJS websocket');
    sock.send('over sockjs websocket');
    assert.deepEqual(await sockEcho, ['over sockjs websocket']);
    await new Promise((resolve) => { sock.onclose = resolve; sock.close(); });

    const source = new EventSource(`${nginx.url}/events`);
    const tick = await new Promise((resolve, reject) => {
      source.onmessage = (event) => resolve(event.data);
      source.onerror = () => { if (source.readyState === EventSource.CLOSED) reject(new Error('EventSource failed')); };
    });
    assert.equal(tick, 'tick 0');
    source.close();
  });

  await t.test('BrowserChannel: a request on the wrong node gets 400 Unknown SID at once', async () => {
    // Open a session through nginx the way BCSocket does, pinned by `a`.
    const a = bcTokens[0];
    const opened = await request(`${nginx.url}/channel/bind?VER=8&RID=1000&CVER=8&a=${a}&t=1`,
      { method: 'POST', headers: FORM, body: 'count=0' });
    assert.equal(opened.status, 200);
    const home = opened.headers.get('x-upstream');
    assert.equal(home, addresses[0]);
    const sid = (await opened.text()).match(/\["c","([^"]+)"/)[1];

    const forward = (node, rid) => request(
      `${node.url}/channel/bind?VER=8&SID=${sid}&RID=${rid}&AID=-1&a=${a}&t=1`,
      { method: 'POST', headers: FORM, body: forwardBody('ping') });
    const started = performance.now();
    const wrong = await forward(other(home), 1001);
    assert.equal(wrong.status, 400);
    assert.match(await wrong.text(), /Unknown SID/);
    const backChannel = await request(
      `${other(home).url}/channel/bind?VER=8&SID=${sid}&RID=rpc&AID=-1&TYPE=xmlhttp&CI=0&a=${a}&t=1`);
    assert.equal(backChannel.status, 400);
    assert.match(await backChannel.text(), /Unknown SID/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2000, `the wrong node answered in ${elapsed} ms`);

    // The same forward POST on the session's own node is taken.
    const right = await forward(owner(home), 1001);
    assert.equal(right.status, 200, await right.clone().text());
    await right.text();
    const terminated = await request(
      `${owner(home).url}/channel/bind?VER=8&SID=${sid}&RID=1002&TYPE=terminate&a=${a}&t=1`);
    assert.equal(terminated.status, 200);
  });

  await t.test('SockJS: an xhr_send on the wrong node gets 404 at once', async () => {
    const id = sockjsIds[1];
    const opened = await request(`${nginx.url}/sockjs/000/${id}/xhr`, { method: 'POST' });
    assert.equal(opened.status, 200);
    assert.equal(await opened.text(), 'o\n');
    const home = opened.headers.get('x-upstream');
    assert.equal(home, addresses[1]);

    const send = (node) => request(`${node.url}/sockjs/000/${id}/xhr_send`,
      { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '["ping"]' });
    const started = performance.now();
    const wrong = await send(other(home));
    assert.equal(wrong.status, 404);
    await wrong.text();
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2000, `the wrong node answered in ${elapsed} ms`);

    // The session's own node takes it and echoes it.
    const right = await send(owner(home));
    assert.equal(right.status, 204);
    const poll = await request(`${nginx.url}/sockjs/000/${id}/xhr`, { method: 'POST' });
    assert.equal(await poll.text(), 'a["ping"]\n');
  });

  await t.test('a node dies: its clients are told at once, its keys move to the other node', async (t) => {
    // A pair of its own, so the shared nodes and their access.log stay as they are.
    const pair = [await startEcho(), await startEcho()];
    t.after(() => Promise.all(pair.map((node) => node.stop())));
    // The crash makes nginx log upstream errors: expected here.
    const lb = await startNginx(pair.map((node) => node.address), { showErrors: false });
    t.after(async () => {
      await lb.stop();
      fs.rmSync(lb.dir, { recursive: true, force: true });
    });
    const pairAddresses = pair.map((node) => node.address);
    const [a] = await keysFor(lb.url, pairAddresses, 'browserchannel', 'crash-bc');
    const [id] = await keysFor(lb.url, pairAddresses, 'sockjs', 'crash-sj');

    // Both on the first node, both echoing.
    const bc = await openBC(`${lb.url}/channel`, { affinity: a });
    const sj = await openSockJS(`${lb.url}/sockjs`, () => id);
    const echoed = [collect(bc, 1, 'BrowserChannel'), collect(sj, 1, 'SockJS')];
    bc.send('before');
    sj.send('before');
    assert.deepEqual(await Promise.all(echoed), [['before'], ['before']]);

    const within = (ms, what, promise) => Promise.race([promise, new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms).unref())]);
    const bcClosed = new Promise((resolve) => { bc.onclose = (message) => resolve(message); });
    const sjClosed = new Promise((resolve) => { sj.onclose = (event) => resolve(event); });
    bc.onerror = () => {};
    const started = performance.now();
    assert.equal(await pair[0].kill(), 'SIGKILL');
    // BrowserChannel notices its back channel break; SockJS's next send is
    // passed on to the second node (nginx could not connect, so it may
    // retry even a POST), which does not know the session: 404.
    sj.send('after');
    const event = await within(5000, 'the SockJS close', sjClosed);
    assert.equal(event.code, 1006);
    assert.match(event.reason, /404|Server lost session/);
    assert.ok(await within(5000, 'the BrowserChannel close', bcClosed));
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 3000, `clients told in ${elapsed} ms`);

    // New sessions with the same keys open on the second node.
    const again = await Promise.all([
      openBC(`${lb.url}/channel`, { affinity: a }),
      openSockJS(`${lb.url}/sockjs`, () => id),
    ]);
    const echoedAgain = again.map((socket, n) => collect(socket, 1, `session ${n} after the crash`));
    for (const socket of again) socket.send('again');
    assert.deepEqual(await Promise.all(echoedAgain), [['again'], ['again']]);
    again[0].close();
    await new Promise((resolve) => { again[1].onclose = resolve; again[1].close(); });
    await lb.stop();
    // The first sessions opened on the first node, the new ones on the
    // second (after nginx found the first refusing connections).
    const log = readAccessLog(lb.dir).filter((e) => e.status === 200);
    const node = (e) => e.upstream.split(', ').pop();
    const opens = log.filter((e) => e.path === '/channel/bind' && e.method === 'POST' &&
      e.query.get('a') === a && !e.query.get('SID'));
    assert.deepEqual(opens.map(node), pairAddresses, 'BrowserChannel opening POSTs');
    const streams = log.filter((e) => e.path.endsWith(`/${id}/xhr_streaming`));
    assert.deepEqual(streams.map(node), pairAddresses, 'SockJS xhr_streaming requests');
  });

  await t.test('access.log: every request of a session went to one node, both nodes took sessions', async () => {
    // Once nginx has exited every line it will write is on disk.
    await nginx.stop();
    const entries = readAccessLog(nginx.dir);

    // BrowserChannel: BCSocket put `a` on every request it made (those with
    // its cache buster `zx`): both `test` phases, the opening POST, forward
    // POSTs, back channels and the terminate.
    const bc = entries.filter((e) => e.path.startsWith('/channel/'));
    const fromBCSocket = bc.filter((e) => e.query.has('zx'));
    for (const e of fromBCSocket) assert.ok(e.query.get('a'), `no affinity token: ${e.line}`);
    const kinds = new Set(fromBCSocket.map((e) =>
      e.path.endsWith('/test') ? `test ${e.query.get('MODE') === 'init' ? 'init' : 'phase 2'}`
        : e.method === 'POST' ? (e.query.get('SID') ? 'forward' : 'open')
          : e.query.get('TYPE') === 'terminate' ? 'terminate' : 'back channel'));
    for (const kind of ['test init', 'test phase 2', 'open', 'forward', 'back channel', 'terminate']) {
      assert.ok(kinds.has(kind), `a BrowserChannel ${kind} request went through nginx`);
    }
    // nginx passed the streaming test, so back channels stream (CI=0).
    const backChannels = fromBCSocket.filter((e) => e.query.get('RID') === 'rpc');
    for (const e of backChannels) assert.equal(e.query.get('CI'), '0', e.line);

    const bcSessions = upstreamsBy(bc, (e) => e.query.get('a'));
    for (const [a, upstreams] of bcSessions) {
      assert.equal(upstreams.size, 1, `BrowserChannel a=${a} went to ${[...upstreams]}`);
    }
    assert.deepEqual([...bcSessions.get(bcTokens[0])], [addresses[0]]);
    assert.deepEqual([...bcSessions.get(bcTokens[1])], [addresses[1]]);

    // SockJS: every request naming a session went to one node.
    const sockjs = entries.filter((e) => e.path.startsWith('/sockjs/'));
    const sockjsSessions = upstreamsBy(sockjs, (e) => e.path.match(/^\/sockjs\/[^/.]+\/([^/.]+)\/[^/]+$/)?.[1]);
    for (const [id, upstreams] of sockjsSessions) {
      assert.equal(upstreams.size, 1, `SockJS session ${id} went to ${[...upstreams]}`);
    }
    assert.deepEqual([...sockjsSessions.get(sockjsIds[0])], [addresses[0]]);
    assert.deepEqual([...sockjsSessions.get(sockjsIds[1])], [addresses[1]]);
    assert.ok(sockjs.some((e) => e.path.endsWith('/xhr_streaming')), 'xhr_streaming went through nginx');
  });
});

test('behind nginx, sessions see the client\'s address when nginx is a trusted proxy', async (t) => {
  if (!installed(NGINX)) return t.skip(`nginx is not installed (${NGINX})`);
  // The client connects from 127.0.0.2; nginx reaches the nodes from
  // 127.0.0.1. Only the node that trusts 127.0.0.1 believes X-Forwarded-For.
  const trusting = await startEcho({ RUST_LOG: 'echo=info', TRUSTED_PROXIES: '127.0.0.1' });
  const wary = await startEcho({ RUST_LOG: 'echo=info' });
  t.after(() => Promise.all([trusting.stop(), wary.stop()]));
  for (const node of [trusting, wary]) {
    const nginx = await startNginx([node.address, node.address]);
    try {
      const ws = new WebSocket(`${nginx.url.replace('http', 'ws')}/ws`, { localAddress: '127.0.0.2' });
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      ws.send('hi');
      await new Promise((resolve) => ws.once('message', resolve));
      ws.close();
      // A client that lies about its address is not believed either way.
      const liar = new WebSocket(`${nginx.url.replace('http', 'ws')}/ws`, {
        localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '6.6.6.6' },
      });
      await new Promise((resolve, reject) => { liar.once('open', resolve); liar.once('error', reject); });
      liar.close();
    } finally {
      await nginx.stop();
      fs.rmSync(nginx.dir, { recursive: true, force: true });
    }
  }
  const remotes = (node) => [...node.output().replace(/\x1b\[[0-9;]*m/g, '').matchAll(/session opened.*?remote=Some\(([^)]*)\)/g)].map((m) => m[1]);
  assert.deepEqual(remotes(trusting), ['127.0.0.2:0', '127.0.0.2:0']);
  for (const remote of remotes(wary)) assert.match(remote, /^127\.0\.0\.1:\d+$/);
  assert.equal(remotes(wary).length, 2);
});
