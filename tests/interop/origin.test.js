// A page served from another origin (http://localhost:<other port>) tries
// every transport of the echo example (http://127.0.0.1:<port>) in headless
// Chromium: by default none opens a session; once the echo example allows
// that origin (ALLOWED_ORIGINS), every one echoes. Clients without an
// Origin (the npm clients of the other tests) connect by default.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { chromium } = require('playwright-core');
const { startEcho } = require('./echo-server');

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

/** The other origin's page: it tries each transport and records the outcome. */
function page(base) {
  return `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<script src="${base}/sockjs-client.js"></script>
<script src="${base}/channel/bcsocket.js"></script>
<script>
window.results = {};
const report = (name, outcome) => { if (!(name in results)) results[name] = outcome; };
const ws = new WebSocket('${base.replace('http', 'ws')}/ws');
ws.onopen = () => ws.send('hi');
ws.onmessage = (e) => report('websocket', 'echo:' + e.data);
ws.onclose = (e) => report('websocket', 'refused:' + e.code);
function sockjs(name, transports) {
  const sock = new SockJS('${base}/sockjs', null, transports ? { transports } : {});
  sock.onopen = () => sock.send('hi');
  sock.onmessage = (e) => report(name, 'echo:' + e.data);
  sock.onclose = (e) => report(name, 'refused:' + e.code);
}
sockjs('sockjs-websocket', ['websocket']);
sockjs('sockjs-xhr', ['xhr-streaming', 'xhr-polling']);
const bc = new BCSocket('${base}/channel', { reconnect: false });
bc.onopen = () => bc.send({ hi: 'there' });
bc.onmessage = (message) => report('browserchannel', 'echo:' + JSON.stringify(message.data));
bc.onclose = (reason) => report('browserchannel', 'refused:' + reason);
bc.onerror = (error) => report('browserchannel', 'refused:' + error);
const events = new EventSource('${base}/events', { withCredentials: true });
events.onmessage = (e) => { report('eventsource', 'echo:' + e.data); events.close(); };
events.onerror = () => { if (events.readyState === EventSource.CLOSED) report('eventsource', 'refused'); };
</script>`;
}

const TRANSPORTS = ['websocket', 'sockjs-websocket', 'sockjs-xhr', 'browserchannel', 'eventsource'];

/**
 * Runs the other origin's page against an echo server started with `env`
 * (its html is made once the echo's address is known); resolves with the
 * outcome per transport, once every transport has one.
 */
async function tryFromElsewhere(t, envFor) {
  let html = '';
  const elsewhere = await new Promise((resolve) => {
    const server = http.createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(html);
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
  const origin = `http://localhost:${elsewhere.address().port}`;
  const echo = await startEcho({ RUST_LOG: 'echo=info', ...envFor(origin) });
  html = page(echo.url);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  t.after(async () => {
    await browser.close();
    await echo.stop();
    await new Promise((done) => elsewhere.close(done));
  });
  const tab = await browser.newPage();
  await tab.goto(`${origin}/`);
  await tab.waitForFunction(
    (names) => names.every((name) => name in window.results), TRANSPORTS, { timeout: 30000 });
  const results = await tab.evaluate(() => window.results);
  const opened = (echo.output().match(/session opened/g) || []).length;
  return { results, opened };
}

test('a page of another origin cannot open a session on any transport', async (t) => {
  const { results, opened } = await tryFromElsewhere(t, () => ({}));
  for (const transport of TRANSPORTS) {
    assert.match(results[transport], /^refused/, `${transport}: ${results[transport]}`);
  }
  assert.equal(opened, 0, 'the server opened no session');
});

test('a page of an allowed origin can, on every transport', async (t) => {
  const { results, opened } = await tryFromElsewhere(t, (origin) => ({ ALLOWED_ORIGINS: origin }));
  assert.ok(opened >= TRANSPORTS.length, `${opened} sessions opened`);
  assert.deepEqual(results, {
    websocket: 'echo:hi',
    'sockjs-websocket': 'echo:hi',
    'sockjs-xhr': 'echo:hi',
    browserchannel: 'echo:{"hi":"there"}',
    eventsource: 'echo:tick 0',
  });
});
