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

/**
 * Starts the echo server and a browser showing its page. The browser closes
 * first, so its reconnecting clients cannot hold up the server's exit.
 */
async function openPage(t, env = {}) {
  const echo = await startEcho(env);
  const browser = await launch();
  t.after(async () => { await browser.close(); await echo.stop(); });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${echo.url}/`);
  return { page, pageErrors };
}

/** Waits for the page element `#id` to say the connection is open. */
async function waitOpen(page, id) {
  await page.locator(`#${id}`, { hasText: 'open' }).waitFor({ timeout: 20000 });
}

/**
 * Sends `messages` through the page's form whose ids start with `prefix`
 * (`message`, `send`, `received`); returns the received list once it holds
 * as many items.
 */
async function echoThrough(page, prefix, messages, timeout = 20000) {
  await waitOpen(page, `${prefix}status`);
  for (const message of messages) {
    await page.fill(`#${prefix}message`, message);
    await page.click(`#${prefix}send`);
  }
  const list = `#${prefix}received li`;
  await page.waitForFunction(
    ([selector, count]) => document.querySelectorAll(selector).length >= count,
    [list, messages.length], { timeout });
  return page.$$eval(list, (items) => items.map((li) => li.textContent));
}

test('the echo page connects, sends and shows every echo', async (t) => {
  const { page, pageErrors } = await openPage(t);
  const messages = ['hello', 'ünïcödé ✓ 😀', '</script><b>not bold</b>', 'x'.repeat(3000)];
  const received = await echoThrough(page, '', messages);
  const sent = await page.$$eval('#sent li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(sent, messages);
  assert.deepEqual(received, messages);
  assert.equal(await page.locator('#received b').count(), 0, 'echoed text is never parsed as HTML');
  assert.deepEqual(pageErrors, []);
});

test('the page recovers a session after its back channel is aborted', async (t) => {
  const { page } = await openPage(t);
  await waitOpen(page, 'status');

  // The server ends a back channel after ~10 KiB, so 20 echoes of 1 KiB make
  // the page open new ones; the first new one is aborted, as a dropped
  // connection would be, and the client must retry it.
  let aborted = 0;
  await page.route(/\/channel\/bind\?.*RID=rpc/, (route) => {
    if (aborted++ === 0) return route.abort('connectionreset');
    return route.continue();
  });
  const filler = 'y'.repeat(1024);
  const messages = Array.from({ length: 20 }, (_, i) => `m${i}:${filler}`);
  const received = await echoThrough(page, '', messages, 30000);
  assert.deepEqual(received, messages);
  assert.ok(aborted >= 2, `a back channel was aborted and retried (${aborted} requests)`);
});

test("the browser's own WebSocket and EventSource work on the echo page", async (t) => {
  const { page, pageErrors } = await openPage(t);
  const messages = ['over websocket', 'ünïcode ✓ 😀', 'x'.repeat(70000)];
  assert.deepEqual(await echoThrough(page, 'ws-', messages), messages);

  await waitOpen(page, 'es-status');
  await page.waitForFunction(
    () => document.querySelectorAll('#events li').length >= 2, null, { timeout: 20000 });
  const events = await page.$$eval('#events li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(events.slice(0, 2), ['tick 0 (id 0)', 'tick 1 (id 1)']);
  assert.deepEqual(pageErrors, []);
});

/** Echoes through the page's SockJS client; returns the transport it chose. */
async function sockjsRoundTrip(t, env) {
  const { page, pageErrors } = await openPage(t, env);
  const messages = ['over sockjs', 'ünïcode \u2028 ✓ 😀', '</script><b>x</b>'];
  assert.deepEqual(await echoThrough(page, 'sj-', messages), messages);
  assert.deepEqual(pageErrors, []);
  return page.textContent('#sj-transport');
}

test('the echo page talks SockJS over a WebSocket', async (t) => {
  assert.equal(await sockjsRoundTrip(t, {}), 'websocket');
});

test('with websockets disabled by the server, SockJS falls back and still works', async (t) => {
  const transport = await sockjsRoundTrip(t, { ECHO_SOCKJS_WEBSOCKET: 'off' });
  assert.notEqual(transport, 'websocket');
  assert.ok(['xhr-streaming', 'xhr-polling', 'eventsource', 'iframe-eventsource', 'iframe-htmlfile'].includes(transport), transport);
});
