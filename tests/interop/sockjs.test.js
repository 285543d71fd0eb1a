// The npm `sockjs-client` in Node.js against the echo example, over every
// transport it can use there.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const SockJS = require('sockjs-client');
const { startEcho } = require('./echo-server');

const COUNT = 1000;

for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource']) {
  test(`${transport}: 1,000 messages each way, in order`, async (t) => {
    const echo = await startEcho();
    t.after(() => echo.stop());
    const sock = new SockJS(`${echo.url}/sockjs`, null, { transports: [transport] });
    await new Promise((resolve, reject) => {
      sock.onopen = resolve;
      sock.onclose = (event) => reject(new Error(`closed before open: ${event.code} ${event.reason}`));
    });
    assert.equal(sock.transport, transport);
    const received = [];
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} echoes`)), 60000);
      sock.onmessage = (event) => {
        received.push(event.data);
        if (received.length === COUNT) { clearTimeout(timer); resolve(); }
      };
    });
    const sent = [];
    for (let i = 0; i < COUNT; i++) {
      // Characters SockJS must escape ride along with plain ones.
      const message = `${i} ünï \u2028 😀 "quoted" </script>`;
      sent.push(message);
      sock.send(message);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
    }
    await done;
    assert.deepEqual(received, sent);
    const closed = new Promise((resolve) => { sock.onclose = (event) => resolve(event.code); });
    sock.close();
    assert.equal(await closed, 1000);
  });
}

test('the server closing a session reaches the client with its code', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const sock = new SockJS(`${echo.url}/sockjs`, null, { transports: ['xhr-streaming'] });
  await new Promise((resolve) => { sock.onopen = resolve; });
  const closed = new Promise((resolve) => { sock.onclose = (event) => resolve(event); });
  // Shutting the server down closes every session first.
  assert.equal(await echo.stop(), 0);
  const event = await closed;
  assert.equal(event.code, 3000);
  assert.equal(event.reason, 'Server shutting down');
});
