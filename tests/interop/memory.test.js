// Clients that never read cannot make the server hold more than its byte
// bounds: two WebSocket clients sending 256 KiB messages to the echo
// example without reading its echoes, and a chat member that never reads
// under a storm of 64 KiB says. The server's resident memory is read from
// /proc before and after; what happens to the session follows the
// overflow policy (messages refused, or the session closed).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const WebSocket = require('ws');
const { startEcho, startChat } = require('./echo-server');

/** The resident memory of process `pid`, in MiB. */
function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

/** What one session may pin at most, by default: 1 MiB of received
 *  messages and 1 MiB queued for its client, each plus one message, and
 *  the reader's buffer for one message. */
const SLACK_MIB = 16;

async function open(url, options = {}) {
  const ws = new WebSocket(url, options);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return ws;
}

/** Sends `count` messages of `bytes` each; the socket stops reading at once. */
function flood(ws, count, bytes) {
  ws._socket.pause();
  const message = Buffer.alloc(bytes, 0x61);
  for (let i = 0; i < count; i++) ws.send(message);
}

for (const overflow of ['refuse', 'close']) {
  test(`WebSocket clients that never read, overflow ${overflow}: memory stays within the bounds`, async (t) => {
    const env = { RUST_LOG: 'echo=info' };
    if (overflow === 'close') env.ECHO_OVERFLOW = 'close';
    const echo = await startEcho(env);
    t.after(() => echo.stop());
    const url = `${echo.url.replace('http', 'ws')}/ws`;
    // Uncompressed, as the echo's own limits are in the clear: the `ws`
    // client offers permessage-deflate by default and the echo accepts,
    // and these messages would shrink to nearly nothing.
    const plain = { perMessageDeflate: false };
    const clients = [await open(url, plain), await open(url, plain)];
    const before = rssMiB(echo.pid);
    // 2 x 40 MiB: before the byte bounds, the server held about half of it.
    for (const ws of clients) flood(ws, 160, 256 * 1024);
    if (overflow === 'refuse') {
      // Each echo is refused once its client's queue is full: the echo
      // loop gives up, the session stays open and stops reading.
      await echo.waitForOutput(/echo failed.*the queue is full/, 2);
    } else {
      await echo.waitForOutput(/session ended.*Lagging/, 2);
    }
    const grown = rssMiB(echo.pid) - before;
    assert.ok(grown < 2 * SLACK_MIB, `the server grew by ${grown.toFixed(1)} MiB`);
    for (const ws of clients) ws.terminate();
  });
}

test('a chat member that never reads under a broadcast storm pins no more than its bound', async (t) => {
  const chat = await startChat({ RUST_LOG: 'warn' });
  t.after(() => chat.stop());
  const url = `${chat.url.replace('http', 'ws')}/ws`;
  const silent = await open(url);
  const talker = await open(url);
  const joined = (ws) => new Promise((resolve) => {
    const onMessage = (data) => {
      if (JSON.parse(data).type === 'joined') { ws.off('message', onMessage); resolve(); }
    };
    ws.on('message', onMessage);
  });
  for (const ws of [silent, talker]) {
    const done = joined(ws);
    ws.send(JSON.stringify({ type: 'join', room: 'storm' }));
    await done;
  }
  silent._socket.pause();
  const before = rssMiB(chat.pid);
  // 1,000 says of 64 KiB: 64 MiB for the silent member, were it all kept.
  const SAYS = 1000;
  const text = 'x'.repeat(64 * 1024);
  let heard = 0;
  const allHeard = new Promise((resolve) => {
    talker.on('message', (data) => {
      if (JSON.parse(data).type === 'said' && ++heard === SAYS) resolve();
    });
  });
  for (let i = 0; i < SAYS; i++) talker.send(JSON.stringify({ type: 'say', room: 'storm', text }));
  await allHeard;
  const grown = rssMiB(chat.pid) - before;
  assert.ok(grown < SLACK_MIB, `the server grew by ${grown.toFixed(1)} MiB`);
  silent.terminate();
  talker.close();
});
