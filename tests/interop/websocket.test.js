// The npm `ws` client against the echo example's native WebSocket endpoint.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startEcho } = require('./echo-server');

function connect(url, protocols) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

test('1,000 text and binary messages are echoed in order', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const socket = await connect(echo.url.replace('http', 'ws') + '/ws');
  const received = [];
  const done = new Promise((resolve) => {
    socket.on('message', (data, isBinary) => {
      received.push(isBinary ? Buffer.from(data).toString('hex') : data.toString());
      if (received.length === 1000) resolve();
    });
  });
  const sent = [];
  for (let i = 0; i < 1000; i++) {
    if (i % 2 === 0) {
      const text = `message ${i} ✓ 😀`;
      sent.push(text);
      socket.send(text);
    } else {
      const data = Buffer.from([i & 0xff, 0, 255, (i >> 8) & 0xff]);
      sent.push(data.toString('hex'));
      socket.send(data);
    }
  }
  await done;
  assert.deepEqual(received, sent);
  const closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  socket.close(1000, 'done');
  assert.equal(await closed, 1000);
});

test('ping and pong, large messages, and the server going away', async (t) => {
  const echo = await startEcho();
  const socket = await connect(echo.url.replace('http', 'ws') + '/ws');
  const pong = new Promise((resolve) => socket.once('pong', (data) => resolve(data.toString())));
  socket.ping('are you there');
  assert.equal(await pong, 'are you there');

  const big = 'x'.repeat(1 << 20);
  const echoed = new Promise((resolve) => socket.once('message', (data) => resolve(data.toString())));
  socket.send(big);
  assert.equal(await echoed, big);

  const closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  assert.equal(await echo.stop(), 0);
  assert.equal(await closed, 1001);
  t.after(() => {});
});
