// The chat example with one client of each npm package in one room: the
// npm `browserchannel` client, `sockjs-client`, `ws` and `eventsource`.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startChat } = require('./echo-server');
const { bc, sockjs, ws, events } = require('./chat-clients');

test('four transports in one room: joins, one broadcast each, counts, leaves and errors', async (t) => {
  const chat = await startChat();
  const clients = [];
  t.after(async () => { for (const c of clients) c.close(); await chat.stop(); });
  const talkers = [await bc(chat.url), await sockjs(chat.url), await ws(chat.url)];
  clients.push(...talkers);
  for (const [index, client] of talkers.entries()) {
    client.send({ type: 'join', room: 'r' });
    assert.deepEqual(await client.inbox.next(), { type: 'joined', room: 'r', members: index + 1 });
  }
  const listener = await events(chat.url, 'r');
  clients.push(listener);
  assert.deepEqual(await listener.inbox.next(),
    { event: 'joined', data: { type: 'joined', room: 'r', members: 4 } });

  // Each talker says something; every member hears each line exactly once.
  for (const [index, speaker] of talkers.entries()) {
    speaker.send({ type: 'say', room: 'r', text: `line ${index}` });
    for (const member of talkers) {
      const said = await member.inbox.next();
      assert.equal(said.type, 'said');
      assert.equal(said.room, 'r');
      assert.equal(said.text, `line ${index}`);
      assert.match(said.from, /^[0-9a-f]{32}$/);
    }
    const heard = await listener.inbox.next();
    assert.equal(heard.event, 'said');
    assert.equal(heard.data.text, `line ${index}`);
  }

  talkers[0].send({ type: 'count', room: 'r' });
  assert.deepEqual(await talkers[0].inbox.next(), { type: 'count', room: 'r', members: 4 });
  talkers[1].send({ type: 'leave', room: 'r' });
  assert.deepEqual(await talkers[1].inbox.next(), { type: 'left', room: 'r' });
  talkers[0].send({ type: 'count', room: 'r' });
  assert.deepEqual(await talkers[0].inbox.next(), { type: 'count', room: 'r', members: 3 });

  // Anything else is an error, and the session stays open.
  talkers[2].send({ type: 'dance' });
  const error = await talkers[2].inbox.next();
  assert.equal(error.type, 'error');
  talkers[2].send({ type: 'join', room: 'x'.repeat(65) });
  assert.equal((await talkers[2].inbox.next()).type, 'error');
  talkers[2].send({ type: 'count', room: 'r' });
  assert.deepEqual(await talkers[2].inbox.next(), { type: 'count', room: 'r', members: 3 });

  // A session that closes leaves its rooms.
  talkers[2].close();
  listener.close();
  let members;
  for (let attempt = 0; attempt < 100; attempt++) {
    talkers[0].send({ type: 'count', room: 'r' });
    members = (await talkers[0].inbox.next()).members;
    if (members === 1) break;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(members, 1);
});

test('the metrics page counts what happened', async (t) => {
  const chat = await startChat();
  t.after(() => chat.stop());
  const client = await ws(chat.url);
  client.send({ type: 'join', room: 'm' });
  await client.inbox.next();
  client.send({ type: 'say', room: 'm', text: 'hi' });
  await client.inbox.next();
  const text = await (await fetch(`${chat.url}/metrics`)).text();
  assert.match(text, /channel_sessions_open\{transport="websocket"\} 1/);
  assert.match(text, /channel_broadcasts_total 1/);
  assert.match(text, /channel_messages_received_total\{transport="websocket"\} 2/);
  client.close();
  assert.equal(await (await fetch(`${chat.url}/healthz`)).text(), 'ok');
});
