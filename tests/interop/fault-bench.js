// The fault benchmark of docs/benchmarks.md (not a test): the chat example
// as two nodes on a durable redis-server, listeners of several transports
// behind proxies whose connections are cut again and again, Redis killed
// and restarted meanwhile, two speakers saying at a steady rate. Counts
// what was sent, delivered, lost and duplicated.
//
//   cargo build --release -p chat && npm ci --prefix tests/interop
//   CHAT_BIN=target/release/chat node tests/interop/fault-bench.js [cuts] [restarts] [rate]
'use strict';
const { startChat } = require('./echo-server');
const { startCutProxy } = require('./cut-proxy');
const { startRedis } = require('./redis-server');
const WebSocket = require('ws');
const { EventSource } = require('eventsource');

const cuts = Number(process.argv[2] || 100);
const restarts = Number(process.argv[3] || 10);
const rate = Number(process.argv[4] || 100);
const ROOM = 'bench';

/** One listener: reconnects after every cut and joins with its last position. */
class Listener {
  constructor(kind, proxies, index) {
    Object.assign(this, { kind, proxies, index, heard: new Map(), last: null, reconnects: 0, unrecovered: 0, fences: new Set() });
    this.connect();
  }

  proxy() { return this.proxies[(this.index + this.reconnects) % this.proxies.length]; }

  hear(message) {
    if (message.type === 'joined' && message.recovered === false) this.unrecovered += 1;
    if (message.type !== 'said') return;
    if (message.pos) this.last = message.pos;
    if (message.text.startsWith('fence')) return void this.fences.add(message.text);
    if (message.text === 'warm-up') return;
    this.heard.set(message.text, (this.heard.get(message.text) || 0) + 1);
  }

  join(send) { send(this.last ? { type: 'join', room: ROOM, since: this.last } : { type: 'join', room: ROOM }); }

  again() {
    if (this.stopped) return;
    this.reconnects += 1;
    setTimeout(() => this.connect(), 20);
  }

  connect() {
    const url = this.proxy().url;
    if (this.kind === 'eventsource') {
      // Reconnects by itself, naming the last event id.
      if (this.source) return;
      this.source = new EventSource(`${url}/events?room=${ROOM}`);
      for (const type of ['joined', 'said']) {
        this.source.addEventListener(type, (event) => this.hear(JSON.parse(event.data)));
      }
      return;
    }
    if (this.kind === 'ws') {
      const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`);
      this.close = () => socket.close();
      socket.on('open', () => this.join((o) => socket.send(JSON.stringify(o))));
      socket.on('message', (data) => this.hear(JSON.parse(data.toString())));
      socket.on('error', () => {});
      socket.on('close', () => this.again());
      return;
    }
    throw new Error(`no listener of kind ${this.kind}`);
  }

  stop() {
    this.stopped = true;
    if (this.source) this.source.close();
    if (this.close) this.close();
  }
}

/** A speaker on a node, never cut: says `name:N` lines and counts refusals. */
function speaker(node, name) {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${node.url.replace('http', 'ws')}/ws`);
    const self = { name, said: 0, errors: 0, heard: new Set(), socket };
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'error') self.errors += 1;
      if (message.type === 'said') self.heard.add(message.text);
      if (message.type === 'joined') resolve(self);
    });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'join', room: ROOM })));
    self.say = (text) => { self.said += 1; socket.send(JSON.stringify({ type: 'say', room: ROOM, text })); };
  });
}

const until = async (check, ms, what) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

(async () => {
  const redis = await startRedis({ durable: true });
  const nodes = [await startChat({ REDIS_URL: redis.url, NODE_NAME: 'a' }), await startChat({ REDIS_URL: redis.url, NODE_NAME: 'b' })];
  const proxies = [await startCutProxy(nodes[0].port), await startCutProxy(nodes[1].port)];
  // SockJS listeners are left out: npm sockjs-client over xhr-streaming does
  // not notice a cut connection (no close within 40 s), so it would never
  // reconnect. tests/interop/recovery.test.js recovers SockJS clients.
  const kinds = ['ws', 'ws', 'ws', 'ws', 'ws', 'ws', 'ws', 'ws', 'eventsource', 'eventsource', 'eventsource', 'eventsource'];
  const listeners = kinds.map((kind, index) => new Listener(kind, proxies, index));
  const speakers = [await speaker(nodes[0], 's0'), await speaker(nodes[1], 's1')];
  const progress = (what) => { if (process.env.VERBOSE) console.error(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`); };
  const t0 = Date.now();
  progress('listeners started');

  // Every listener holds a position before the faults begin (a client
  // that never heard anything has none to recover from).
  const warming = setInterval(() => speakers[0].say('warm-up'), 200);
  await until(() => listeners.every((l) => l.last !== null), 20000, 'every listener to hear the warm-up');
  clearInterval(warming);
  const warmUps = speakers[0].said;
  const started = Date.now();
  let line = 0;
  const talking = setInterval(() => {
    for (const s of speakers) s.say(`${s.name}:${line}`);
    line += 1;
  }, 2000 / rate);
  const restartEvery = Math.max(1, Math.floor(cuts / Math.max(restarts, 1)));
  let restarted = 0;
  for (let cut = 1; cut <= cuts; cut++) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    proxies[cut % 2].cut();
    progress(`cut ${cut}`);
    if (restarted < restarts && cut % restartEvery === 0) {
      await redis.kill();
      await redis.restart();
      restarted += 1;
      progress(`Redis restarted (${restarted})`);
    }
  }
  clearInterval(talking);
  const faultsFor = (Date.now() - started) / 1000;
  // Everyone catches up: a fence from each speaker, heard by all.
  for (const s of speakers) s.say(`fence ${s.name}`);
  progress('fences said');
  await until(() => listeners.every((l) => l.fences.size === 2), 120000,
    () => `every listener to catch up: ${listeners.map((l) => `${l.kind}:${l.fences.size}:${l.heard.size}`).join(' ')}`);
  await until(() => speakers.every((s) => s.heard.has('fence s0') && s.heard.has('fence s1')), 30000, 'the speakers');

  // Neither the warm-up nor the fences count.
  const sent = speakers.reduce((n, s) => n + s.said - 1, 0) - warmUps;
  const refused = speakers.reduce((n, s) => n + s.errors, 0);
  // What the speakers (members, never cut) heard is what was delivered.
  const accepted = new Set([...speakers[0].heard, ...speakers[1].heard].filter((t) => !t.startsWith('fence') && t !== 'warm-up'));
  let delivered = 0; let lost = 0; let duplicated = 0;
  for (const l of listeners) {
    for (const text of accepted) {
      const times = l.heard.get(text) || 0;
      if (times === 0 && process.env.VERBOSE) console.error(`${l.kind} ${l.index} missed ${text}`);
      if (times === 0) lost += 1;
      else { delivered += 1; duplicated += times - 1; }
    }
    for (const text of l.heard.keys()) if (!accepted.has(text)) duplicated += l.heard.get(text);
  }
  const reconnects = listeners.reduce((n, l) => n + l.reconnects, 0);
  const unrecovered = listeners.reduce((n, l) => n + l.unrecovered, 0);
  console.log(`fault run: ${cuts} cuts, ${restarted} Redis restarts in ${faultsFor.toFixed(1)} s; ` +
    `${listeners.length} listeners (${kinds.join(', ')}), 2 speakers, ${rate} says/s in all`);
  console.log(`  says sent ${sent}, refused (sender told) ${refused}, accepted ${accepted.size}` +
    ` (unaccounted: ${sent - refused - accepted.size})`);
  console.log(`  deliveries expected ${accepted.size * listeners.length}, delivered ${delivered}, lost ${lost}, duplicated ${duplicated}`);
  console.log(`  listener reconnections ${reconnects}, joins answered recovered:false ${unrecovered}`);
  for (const l of listeners) l.stop();
  for (const s of speakers) s.socket.close();
  for (const p of proxies) await p.close();
  for (const n of nodes) await n.stop();
  await redis.stop();
  process.exit(lost === 0 && duplicated === 0 ? 0 : 1);
})().catch((error) => { console.error(error); process.exit(2); });
