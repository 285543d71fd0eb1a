// The chat example as a cluster: nodes joined through a real redis-server
// (Debian's), clients of every npm package on different nodes.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startChat } = require('./echo-server');
const { bc, sockjs, ws, events } = require('./chat-clients');
const { startRedis, haveRedis } = require('./redis-server');

const skip = haveRedis() ? false : 'redis-server is not installed (apt-get install redis-server)';

/**
 * Starts a Redis and `count` chat nodes on it for test `t`; everything,
 * and every client pushed on `clients`, stops after the test.
 */
async function startCluster(t, count, env = {}) {
  const redis = await startRedis();
  const nodes = [];
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const n of nodes) await n.stop();
    await redis.stop();
  });
  for (let i = 0; i < count; i++) {
    nodes.push(await startChat({ REDIS_URL: redis.url, NODE_NAME: `node-${i}`, ...env }));
  }
  return { redis, nodes, clients };
}

/**
 * Reads `client`'s inbox until a `said` fence from each of `speakers`
 * arrived; returns how often each other text arrived.
 */
async function textsUntilFences(client, speakers) {
  const fences = new Set();
  const seen = new Map();
  while (fences.size < speakers) {
    const item = await client.inbox.next();
    const said = item.event ? item.data : item;
    assert.equal(said.type, 'said', JSON.stringify(item));
    if (said.text.startsWith('fence')) fences.add(said.text);
    else seen.set(said.text, (seen.get(said.text) || 0) + 1);
  }
  return seen;
}

/** A node's metric value, from its `/metrics` page. */
async function metric(node, name) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('room broadcasts cross nodes exactly once, on every transport', { skip }, async (t) => {
  const { nodes, clients } = await startCluster(t, 3);
  const talkers = [await bc(nodes[0].url), await sockjs(nodes[1].url), await ws(nodes[2].url)];
  clients.push(...talkers);
  for (const [index, client] of talkers.entries()) {
    client.send({ type: 'join', room: 'r' });
    // Members across the cluster, the joiner included.
    assert.deepEqual(await client.inbox.next(), { type: 'joined', room: 'r', members: index + 1 });
  }
  const listener = await events(nodes[1].url, 'r');
  clients.push(listener);
  assert.deepEqual(await listener.inbox.next(),
    { event: 'joined', data: { type: 'joined', room: 'r', members: 4 } });
  // A member of another room on a fourth client hears nothing of `r`.
  const outsider = await ws(nodes[0].url);
  clients.push(outsider);
  outsider.send({ type: 'join', room: 'other' });
  assert.equal((await outsider.inbox.next()).members, 1);

  for (const [index, speaker] of talkers.entries()) {
    for (let line = 0; line < 20; line++) speaker.send({ type: 'say', room: 'r', text: `${index}:${line}` });
  }
  for (const [index, speaker] of talkers.entries()) speaker.send({ type: 'say', room: 'r', text: `fence ${index}` });
  for (const member of [...talkers, listener]) {
    const seen = await textsUntilFences(member, talkers.length);
    assert.equal(seen.size, 60);
    for (const [text, times] of seen) assert.equal(times, 1, `${text} arrived ${times} times`);
  }
  outsider.send({ type: 'count', room: 'r' });
  assert.deepEqual(await outsider.inbox.next(), { type: 'count', room: 'r', members: 4 });
  assert.ok(outsider.inbox.empty(), 'the outsider heard the room');
});

test('Redis killed and restarted: a say made meanwhile waits, then reaches everyone once', { skip }, async (t) => {
  const { redis, nodes, clients } = await startCluster(t, 2, { REDIS_MAX_HELD_BROADCASTS: '2' });
  const [a, b] = [await ws(nodes[0].url), await ws(nodes[1].url)];
  clients.push(a, b);
  for (const client of [a, b]) {
    client.send({ type: 'join', room: 'x' });
    await client.inbox.next();
  }
  a.send({ type: 'say', room: 'x', text: 'before' });
  for (const client of [a, b]) assert.equal((await client.inbox.next()).text, 'before');

  await redis.kill();
  // Says wait for Redis, two at most on a node (each session awaits its
  // own in turn, so they come from two sessions); a third one is past the
  // backlog: its speaker is told, and nobody ever gets it.
  const [c, d] = [await ws(nodes[0].url), await ws(nodes[0].url)];
  clients.push(c, d);
  a.send({ type: 'say', room: 'x', text: 'during a' });
  c.send({ type: 'say', room: 'x', text: 'during c' });
  b.send({ type: 'say', room: 'x', text: 'during b' });
  while (await metric(nodes[0], 'channel_redis_held_broadcasts_total') < 2) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  d.send({ type: 'say', room: 'x', text: 'refused' });
  for (;;) {
    const item = await d.inbox.next();
    if (item.type !== 'error') continue;
    assert.match(item.error, /too many broadcasts wait/);
    break;
  }
  assert.ok(await metric(nodes[0], 'channel_redis_refused_broadcasts_total') >= 1);

  const restarted = Date.now();
  await redis.restart();
  b.send({ type: 'say', room: 'x', text: 'fence b' });
  for (const client of [a, b]) {
    const heard = await textsUntilFences(client, 1);
    for (const text of ['during a', 'during c', 'during b']) {
      if (!heard.has(text)) heard.set(text, 0);
    }
    // What waited may come after the fence.
    while ([...heard.values()].some((times) => times === 0)) {
      const said = await client.inbox.next();
      heard.set(said.text, (heard.get(said.text) || 0) + 1);
    }
    for (const [text, times] of heard) assert.equal(times, 1, `${text} arrived ${times} times`);
    assert.ok(!heard.has('refused'), 'a refused say reached a member');
  }
  assert.ok(Date.now() - restarted < 10000, 'held says arrived within 10 s of Redis coming back');
  for (const node of nodes) assert.ok(await metric(node, 'channel_redis_reconnects_total') >= 1);
});

test('a killed node leaves the counts once its heartbeat expires', { skip }, async (t) => {
  const { nodes, clients } = await startCluster(t, 2);
  const here = await ws(nodes[0].url);
  const there = [await sockjs(nodes[1].url), await ws(nodes[1].url)];
  clients.push(here, ...there);
  for (const client of [...there, here]) {
    client.send({ type: 'join', room: 'k' });
    await client.inbox.next();
  }
  here.send({ type: 'count', room: 'k' });
  assert.equal((await here.inbox.next()).members, 3);

  await nodes[1].kill();
  const killed = Date.now();
  // Until the dead node's liveness key expires, counts wait for it and say
  // they are partial (counted in the metrics); then they are whole again.
  let members;
  let partials = 0;
  for (;;) {
    const before = await metric(nodes[0], 'channel_cluster_queries_partial_total');
    here.send({ type: 'count', room: 'k' });
    members = (await here.inbox.next()).members;
    const partial = await metric(nodes[0], 'channel_cluster_queries_partial_total') > before;
    if (partial) partials++;
    else break;
    assert.ok(Date.now() - killed < 10000, 'the dead node was never forgotten');
  }
  assert.equal(members, 1);
  assert.ok(partials >= 1, 'counts never waited for the dead node');
  // The liveness key lives 3 s, renewed every second.
  const forgotten = Date.now() - killed;
  assert.ok(forgotten >= 1000 && forgotten < 5000, `forgotten after ${forgotten} ms`);
});
