// The npm `eventsource` client against the echo example's EventSource endpoint.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { EventSource } = require('eventsource');
const { startEcho } = require('./echo-server');

function collect(source, count) {
  const events = [];
  return new Promise((resolve, reject) => {
    source.onmessage = (event) => {
      events.push({ data: event.data, id: event.lastEventId });
      if (events.length === count) resolve(events);
    };
    source.onerror = (error) => { if (source.readyState === EventSource.CLOSED) reject(error); };
  });
}

test('ticks arrive every second with their ids', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const source = new EventSource(`${echo.url}/events`);
  t.after(() => source.close());
  const started = Date.now();
  const events = await collect(source, 3);
  assert.deepEqual(events, [
    { data: 'tick 0', id: '0' },
    { data: 'tick 1', id: '1' },
    { data: 'tick 2', id: '2' },
  ]);
  assert.ok(Date.now() - started >= 1500, 'one tick per second');
});

test('a reconnecting client resumes after Last-Event-ID', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  let connections = 0;
  // The client's own reconnect sends the last id it saw in Last-Event-ID.
  const source = new EventSource(`${echo.url}/events`, {
    fetch: (url, init) => {
      connections++;
      return fetch(url, init);
    },
  });
  t.after(() => source.close());
  const first = await collect(source, 2);
  assert.deepEqual(first.map((e) => e.id), ['0', '1']);
  // Break the stream: stop the server and start it again on the same port.
  await echo.stop();
  const again = await startEcho({ PORT: String(echo.port) });
  t.after(() => again.stop());
  const next = await collect(source, 1);
  assert.equal(next[0].id, '2', 'the stream resumed after the last id seen');
  assert.equal(connections, 2);
});
