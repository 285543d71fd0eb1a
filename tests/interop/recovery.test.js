// History and recovery on the chat example (../shared/README.md, "History and
// recovery"): a client whose connection is cut mid-stream comes back on
// another transport, or as the same EventSource reconnecting by itself, and
// gets exactly what it missed, then live messages.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startChat } = require('./echo-server');
const { startCutProxy } = require('./cut-proxy');
const clients = require('./chat-clients');

/** The next item of `client` that is a `said` (skipping `joined` and the rest). */
async function nextSaid(client) {
  for (;;) {
    const item = await client.inbox.next();
    const message = item.event ? item.data : item;
    if (message.type === 'said') return message;
  }
}

/** The next item, unwrapped from its EventSource event. */
async function nextMessage(client) {
  const item = await client.inbox.next();
  return item.event ? item.data : item;
}

async function joined(client, room, since) {
  client.send(since === undefined ? { type: 'join', room } : { type: 'join', room, since });
  const reply = await nextMessage(client);
  assert.equal(reply.type, 'joined', JSON.stringify(reply));
  return reply;
}

/** `speaker` says `texts` in room `room` and waits until it heard them all back. */
async function sayAll(speaker, room, texts) {
  for (const text of texts) speaker.send({ type: 'say', room, text });
  for (const text of texts) assert.equal((await nextSaid(speaker)).text, text);
}

const lines = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

/** Positions of one room as the server writes them: `OFFSET-EPOCH`, the offset counting up. */
function offsetOf(position) {
  assert.match(position, /^[0-9]+-[0-9a-f]+$/);
  return Number(position.split('-')[0]);
}

for (const [before, after] of [['ws', 'sockjs'], ['sockjs', 'bc'], ['bc', 'ws']]) {
  test(`cut mid-stream on ${before}, recovered on ${after}: exactly the missed messages`, async (t) => {
    const chat = await startChat();
    const proxy = await startCutProxy(chat.port);
    const open = [];
    t.after(async () => { for (const c of open) c.close(); await proxy.close(); await chat.stop(); });

    const speaker = await clients.ws(chat.url);
    open.push(speaker);
    await joined(speaker, 'r');
    const listener = await clients[before](proxy.url);
    open.push(listener);
    await joined(listener, 'r');

    // A burst; the listener reads five of them, then its connection is cut.
    for (const text of lines(1, 20)) speaker.send({ type: 'say', room: 'r', text });
    let last;
    for (const text of lines(1, 5)) {
      last = await nextSaid(listener);
      assert.equal(last.text, text);
    }
    proxy.down();
    for (const text of lines(1, 20)) assert.equal((await nextSaid(speaker)).text, text);
    await sayAll(speaker, 'r', lines(21, 30));

    const back = await clients[after](chat.url);
    open.push(back);
    const reply = await joined(back, 'r', last.pos);
    assert.equal(reply.recovered, true);
    let previous = offsetOf(last.pos);
    for (const text of lines(6, 30)) {
      const said = await nextSaid(back);
      assert.equal(said.text, text);
      assert.equal(offsetOf(said.pos), previous + 1, 'positions follow each other');
      previous = offsetOf(said.pos);
    }
    // Then live, with nothing repeated at the seam.
    speaker.send({ type: 'say', room: 'r', text: 'live' });
    const live = await nextSaid(back);
    assert.equal(live.text, 'live');
    assert.equal(offsetOf(live.pos), previous + 1);
  });
}

test('EventSource recovers through its own reconnect (Last-Event-ID)', async (t) => {
  const chat = await startChat();
  const proxy = await startCutProxy(chat.port);
  const open = [];
  t.after(async () => { for (const c of open) c.close(); await proxy.close(); await chat.stop(); });

  const speaker = await clients.ws(chat.url);
  open.push(speaker);
  await joined(speaker, 'r');
  const listener = await clients.events(proxy.url, 'r');
  open.push(listener);
  const first = await listener.inbox.next();
  assert.equal(first.event, 'joined');
  assert.equal(first.data.recovered, undefined);

  await sayAll(speaker, 'r', lines(1, 5));
  for (const text of lines(1, 5)) assert.equal((await nextSaid(listener)).text, text);
  assert.equal(proxy.down(), 1, 'the event stream went through the proxy');
  await sayAll(speaker, 'r', lines(6, 15));
  proxy.up();

  // The client reconnects by itself, sending the id of the last event it saw.
  const rejoined = await listener.inbox.next(20000);
  assert.equal(rejoined.event, 'joined', JSON.stringify(rejoined));
  assert.equal(rejoined.data.recovered, true);
  for (const text of lines(6, 15)) assert.equal((await nextSaid(listener)).text, text);
  await sayAll(speaker, 'r', ['live']);
  assert.equal((await nextSaid(listener)).text, 'live');
  assert.ok(listener.inbox.empty(), 'nothing repeated');
});

test('a position the history cannot vouch for recovers nothing', async (t) => {
  const chat = await startChat({ HISTORY_SIZE: '3' });
  const open = [];
  t.after(async () => { for (const c of open) c.close(); await chat.stop(); });
  const speaker = await clients.ws(chat.url);
  open.push(speaker);
  await joined(speaker, 'r');
  await joined(speaker, 's');
  speaker.send({ type: 'say', room: 'r', text: 'first' });
  const first = await nextSaid(speaker);
  await sayAll(speaker, 'r', lines(1, 5));
  speaker.send({ type: 'say', room: 's', text: 'elsewhere' });
  const elsewhere = await nextSaid(speaker);
  const [offset, epoch] = first.pos.split('-');

  const cases = [
    ['trimmed: older than the three kept', first.pos],
    ['from another room', elsewhere.pos],
    ['from the future', `${Number(offset) + 100}-${epoch}`],
    ['from a lost history', `${offset}-${epoch === '1' ? '2' : '1'}`],
    ['malformed', 'yesterday'],
    ['not a string', 42],
  ];
  for (const [name, since] of cases) {
    const client = await clients.ws(chat.url);
    open.push(client);
    const reply = await joined(client, 'r', since);
    assert.equal(reply.recovered, false, name);
    // No replay: the next message is a live one.
    speaker.send({ type: 'say', room: 'r', text: `after ${name}` });
    assert.equal((await nextSaid(client)).text, `after ${name}`, name);
    assert.equal((await nextSaid(speaker)).text, `after ${name}`);
  }

  // The newest kept position recovers, with nothing to replay.
  const recent = await clients.ws(chat.url);
  open.push(recent);
  speaker.send({ type: 'say', room: 'r', text: 'newest' });
  const newest = await nextSaid(speaker);
  const reply = await joined(recent, 'r', newest.pos);
  assert.equal(reply.recovered, true);
  assert.equal(reply.members, cases.length + 2);
  await sayAll(speaker, 'r', ['after newest']);
  assert.equal((await nextSaid(recent)).text, 'after newest');
});
