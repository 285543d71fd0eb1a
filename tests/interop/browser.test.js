// Headless Chromium (Debian's `chromium`) opens the echo page, which talks
// BrowserChannel through the npm package's browser client.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const { startEcho } = require('./echo-server');

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

async function launch() {
  assert.ok(fs.existsSync(executablePath), `no browser at ${executablePath}`);
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

test('the echo page connects, sends and shows every echo', async (t) => {
  const echo = await startEcho();
  const browser = await launch();
  // The browser goes first, so its reconnecting clients cannot hold up the server's exit.
  t.after(async () => { await browser.close(); await echo.stop(); });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  await page.goto(`${echo.url}/`);
  await page.locator('#status', { hasText: 'open' }).waitFor({ timeout: 20000 });

  const messages = ['hello', 'ünïcödé ✓ 😀', '</script><b>not bold</b>', 'x'.repeat(3000)];
  for (const message of messages) {
    await page.fill('#message', message);
    await page.click('#send');
  }
  await page.waitForFunction(
    (count) => document.querySelectorAll('#received li').length >= count,
    messages.length, { timeout: 20000 });
  const received = await page.$$eval('#received li', (items) => items.map((li) => li.textContent));
  const sent = await page.$$eval('#sent li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(sent, messages);
  assert.deepEqual(received, messages);
  assert.equal(await page.locator('#received b').count(), 0, 'echoed text is never parsed as HTML');
  assert.deepEqual(pageErrors, []);
});

test('the page recovers a session after its back channel is aborted', async (t) => {
  const echo = await startEcho();
  const browser = await launch();
  // The browser goes first, so its reconnecting clients cannot hold up the server's exit.
  t.after(async () => { await browser.close(); await echo.stop(); });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${echo.url}/`);
  await page.locator('#status', { hasText: 'open' }).waitFor({ timeout: 20000 });

  // The server ends a back channel after ~10 KiB, so 20 echoes of 1 KiB make
  // the page open new ones; the first new one is aborted, as a dropped
  // connection would be, and the client must retry it.
  let aborted = 0;
  await page.route(/\/channel\/bind\?.*RID=rpc/, (route) => {
    if (aborted++ === 0) return route.abort('connectionreset');
    return route.continue();
  });
  const filler = 'y'.repeat(1024);
  for (let i = 0; i < 20; i++) {
    await page.fill('#message', `m${i}:${filler}`);
    await page.click('#send');
  }
  await page.waitForFunction(
    () => document.querySelectorAll('#received li').length >= 20, null, { timeout: 30000 });
  const received = await page.$$eval('#received li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(received, Array.from({ length: 20 }, (_, i) => `m${i}:${filler}`));
  assert.ok(aborted >= 2, `a back channel was aborted and retried (${aborted} requests)`);
});

test("the browser's own WebSocket and EventSource work on the echo page", async (t) => {
  const echo = await startEcho();
  const browser = await launch();
  // The browser goes first, so its reconnecting clients cannot hold up the server's exit.
  t.after(async () => { await browser.close(); await echo.stop(); });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${echo.url}/`);

  await page.locator('#ws-status', { hasText: 'open' }).waitFor({ timeout: 20000 });
  const messages = ['over websocket', 'ünïcode ✓ 😀', 'x'.repeat(70000)];
  for (const message of messages) {
    await page.fill('#ws-message', message);
    await page.click('#ws-send');
  }
  await page.waitForFunction(
    (count) => document.querySelectorAll('#ws-received li').length >= count,
    messages.length, { timeout: 20000 });
  const received = await page.$$eval('#ws-received li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(received, messages);

  await page.locator('#es-status', { hasText: 'open' }).waitFor({ timeout: 20000 });
  await page.waitForFunction(
    () => document.querySelectorAll('#events li').length >= 2, null, { timeout: 20000 });
  const events = await page.$$eval('#events li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(events.slice(0, 2), ['tick 0 (id 0)', 'tick 1 (id 1)']);
  assert.deepEqual(pageErrors, []);
});

async function sockjsRoundTrip(env) {
  const echo = await startEcho(env);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${echo.url}/`);
    await page.locator('#sj-status', { hasText: 'open' }).waitFor({ timeout: 20000 });
    const messages = ['over sockjs', 'ünïcode \u2028 ✓ 😀', '</script><b>x</b>'];
    for (const message of messages) {
      await page.fill('#sj-message', message);
      await page.click('#sj-send');
    }
    await page.waitForFunction(
      (count) => document.querySelectorAll('#sj-received li').length >= count,
      messages.length, { timeout: 20000 });
    const received = await page.$$eval('#sj-received li', (items) => items.map((li) => li.textContent));
    assert.deepEqual(received, messages);
    assert.deepEqual(pageErrors, []);
    return await page.textContent('#sj-transport');
  } finally {
    await browser.close();
    await echo.stop();
  }
}

test('the echo page talks SockJS over a WebSocket', async () => {
  assert.equal(await sockjsRoundTrip({}), 'websocket');
});

test('with websockets disabled by the server, SockJS falls back and still works', async () => {
  const transport = await sockjsRoundTrip({ ECHO_SOCKJS_WEBSOCKET: 'off' });
  assert.notEqual(transport, 'websocket');
  assert.ok(['xhr-streaming', 'xhr-polling', 'eventsource', 'iframe-eventsource', 'iframe-htmlfile'].includes(transport), transport);
});
