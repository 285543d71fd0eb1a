// The npm `browserchannel` package's own Node.js client (BCSocket) against the echo example.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { BCSocket } = require('browserchannel');
const { startEcho, startProxy } = require('./echo-server');

const COUNT = 1000;

/** Opens a BCSocket and resolves once it is open. */
function open(url, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = new BCSocket(url, { reconnect: false, ...options });
    socket.onopen = () => resolve(socket);
    socket.onerror = (error) => reject(new Error(`BCSocket error: ${error && error.message}`));
  });
}

/** Collects echoes until `count` arrived; fails on a timeout. */
function collect(socket, count, ms = 30000, onEach = () => {}) {
  const received = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`only ${received.length} of ${count} echoes arrived`)), ms);
    socket.onmessage = ({ data }) => {
      received.push(data);
      onEach(received.length);
      if (received.length === count) { clearTimeout(timer); resolve(received); }
    };
  });
}

test('1,000 messages are echoed in order', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const socket = await open(`${echo.url}/channel`);
  const echoes = collect(socket, COUNT);
  const sent = [];
  for (let i = 0; i < COUNT; i++) {
    // A mix of strings, objects and non-ASCII text.
    const message = i % 3 === 0 ? `message ${i} ✓` : { i, text: 'ünïcode 😀', list: [i, null, true] };
    sent.push(message);
    socket.send(message);
  }
  assert.deepEqual(await echoes, sent);
  socket.close();
});

test('a back channel lost mid-stream: the client reopens it and loses nothing', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const proxy = await startProxy(echo.port);
  t.after(() => proxy.close());
  const socket = await open(`http://127.0.0.1:${proxy.port}/channel`);
  const echoes = collect(socket, COUNT, 60000);
  const sent = [];
  const send = (from, to) => { for (let i = from; i < to; i++) { sent.push(i); socket.send(i); } };
  const waitFor = async (count) => { while (socket.received < count) await new Promise((r) => setTimeout(r, 5)); };
  socket.received = 0;
  const onmessage = socket.onmessage;
  socket.onmessage = (event) => { socket.received++; onmessage(event); };

  // Three times: the back channel ends under the client and its next one is
  // held back while more messages go out, so the server writes their echoes
  // into a connection the client no longer reads.
  const rounds = [0, 250, 500, 750, COUNT];
  for (let round = 0; round < rounds.length - 1; round++) {
    send(rounds[round], rounds[round] + 125);
    await waitFor(rounds[round] + 125);
    if (round < 3) assert.ok(await proxy.dropBackChannels(300) >= 1, 'a back channel was ended');
    send(rounds[round] + 125, rounds[round + 1]);
    await waitFor(rounds[round + 1]);
  }
  const received = await echoes;
  assert.ok(proxy.lostBytes() > 0, 'echoes were lost in transit and had to be sent again');
  assert.deepEqual(received, sent);
  socket.close();
});

test('the session survives many server-closed back channels', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const socket = await open(`${echo.url}/channel`);
  // 300 echoes of ~200 bytes: the server ends its back channel every ~10 KiB
  // and the client must reopen it each time.
  const big = 'x'.repeat(200);
  const echoes = collect(socket, 300);
  const sent = [];
  for (let i = 0; i < 300; i++) { sent.push(`${i}:${big}`); socket.send(`${i}:${big}`); }
  assert.deepEqual(await echoes, sent);
  socket.close();
});

test('the server stops cleanly on SIGTERM with a session open', async () => {
  const echo = await startEcho();
  const socket = await open(`${echo.url}/channel`);
  const closed = new Promise((resolve) => { socket.onclose = resolve; });
  const code = await echo.stop();
  assert.equal(code, 0);
  await closed;
});
