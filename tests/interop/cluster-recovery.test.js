// History and recovery across the chat example's cluster (../shared/README.md,
// "History and recovery", with REDIS_URL): positions valid on every node, a
// client recovering on another node after its own died, and delivery that
// survives Redis pausing and crashing while messages flow.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startChat } = require('./echo-server');
const clients = require('./chat-clients');
const { startRedis, haveRedis } = require('./redis-server');

const skip = haveRedis() ? false : 'redis-server is not installed (apt-get install redis-server)';

async function startCluster(t, count, redisOptions) {
  const redis = await startRedis(redisOptions);
  const nodes = [];
  const open = [];
  t.after(async () => {
    for (const c of open) c.close();
    for (const n of nodes) await n.stop();
    await redis.stop();
  });
  for (let i = 0; i < count; i++) {
    nodes.push(await startChat({ REDIS_URL: redis.url, NODE_NAME: `node-${i}` }));
  }
  const connect = async (kind, node) => {
    const client = await clients[kind](node.url);
    open.push(client);
    return client;
  };
  return { redis, nodes, connect };
}

async function nextSaid(client) {
  for (;;) {
    const item = await client.inbox.next(20000);
    const message = item.event ? item.data : item;
    if (message.type === 'said') return message;
  }
}

async function joined(client, room, since) {
  client.send(since === undefined ? { type: 'join', room } : { type: 'join', room, since });
  for (;;) {
    const reply = await client.inbox.next();
    if (reply.type === 'joined') return reply;
  }
}

/** A node's metric value, from its `/metrics` page. */
async function metric(node, name) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a client whose node died recovers on another node', { skip }, async (t) => {
  const { nodes, connect } = await startCluster(t, 2);
  const listener = await connect('ws', nodes[0]);
  const speaker = await connect('sockjs', nodes[1]);
  await joined(listener, 'r');
  await joined(speaker, 'r');
  for (let i = 1; i <= 5; i++) speaker.send({ type: 'say', room: 'r', text: `line ${i}` });
  let last;
  for (let i = 1; i <= 5; i++) {
    const heard = await nextSaid(listener);
    const own = await nextSaid(speaker);
    assert.equal(heard.text, `line ${i}`);
    // One position for every member, whatever its node.
    assert.equal(heard.pos, own.pos);
    last = heard;
  }

  await nodes[0].kill();
  for (let i = 6; i <= 10; i++) speaker.send({ type: 'say', room: 'r', text: `line ${i}` });
  for (let i = 6; i <= 10; i++) assert.equal((await nextSaid(speaker)).text, `line ${i}`);

  const back = await connect('bc', nodes[1]);
  const reply = await joined(back, 'r', last.pos);
  assert.equal(reply.recovered, true);
  for (let i = 6; i <= 10; i++) assert.equal((await nextSaid(back)).text, `line ${i}`);
  speaker.send({ type: 'say', room: 'r', text: 'live' });
  assert.equal((await nextSaid(back)).text, 'live');
  assert.equal((await nextSaid(speaker)).text, 'live');
  assert.ok(back.inbox.empty(), 'nothing repeated');
});

test('Redis paused, then crashed and restarted, while messages flow: each arrives once, in order', { skip }, async (t) => {
  const { redis, nodes, connect } = await startCluster(t, 2, { durable: true });
  const speakers = [await connect('ws', nodes[0]), await connect('ws', nodes[1])];
  const members = [await connect('sockjs', nodes[0]), await connect('bc', nodes[1])];
  for (const client of [...speakers, ...members]) await joined(client, 'r');
  const lines = 60;
  for (const [index, speaker] of speakers.entries()) {
    for (let i = 1; i <= lines; i++) speaker.send({ type: 'say', room: 'r', text: `${index}:${i}` });
  }
  const everyone = [...speakers, ...members];
  const heard = everyone.map(() => []);
  const hear = async (which, count) => {
    while (heard[which].length < count) heard[which].push((await nextSaid(everyone[which])).text);
  };

  await hear(2, 10);
  redis.pause();
  // Appends time out and wait for Redis; let them.
  while (await metric(nodes[0], 'channel_redis_held_broadcasts_total') < 1
    || await metric(nodes[1], 'channel_redis_held_broadcasts_total') < 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  redis.resume();
  await hear(2, 40);
  await redis.kill();
  await redis.restart();

  for (const which of everyone.keys()) await hear(which, 2 * lines);
  for (const [which, texts] of heard.entries()) {
    for (const index of [0, 1]) {
      const own = texts.filter((text) => text.startsWith(`${index}:`));
      const expected = Array.from({ length: lines }, (_, i) => `${index}:${i + 1}`);
      assert.deepEqual(own, expected, `client ${which} heard speaker ${index} in order, each once`);
    }
  }
  // Nothing more trails in.
  speakers[0].send({ type: 'say', room: 'r', text: 'fence' });
  for (const client of everyone) assert.equal((await nextSaid(client)).text, 'fence');
});
