// Headless Chromium: two people on the chat page, on different transports,
// talk in one room; a third page listens over EventSource.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const { startChat } = require('./echo-server');
const { startCutProxy } = require('./cut-proxy');

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

/** Opens the chat page and joins `room` as `name` over `transport`. */
async function join(browser, url, name, room, transport) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${url}/`);
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.selectOption('#transport', transport);
  await page.click('#join');
  await page.locator('#status', { hasText: 'connected' }).waitFor({ timeout: 20000 });
  await page.locator('#log li', { hasText: `joined ${room}` }).waitFor({ timeout: 20000 });
  return { page, errors };
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#say');
}

async function hears(page, text) {
  await page.locator('#log li', { hasText: text }).first().waitFor({ timeout: 20000 });
}

for (const [first, second] of [['websocket', 'browserchannel'], ['sockjs', 'websocket']]) {
  test(`two pages talk in one room (${first} and ${second}), a third listens`, async (t) => {
    const chat = await startChat();
    const browser = await launch();
    t.after(async () => { await browser.close(); await chat.stop(); });
    const ada = await join(browser, chat.url, 'ada', 'garden', first);
    const bob = await join(browser, chat.url, 'bob', 'garden', second);
    const eve = await join(browser, chat.url, 'eve', 'garden', 'eventsource');
    assert.equal(await bob.page.textContent('#members'), '2');
    assert.equal(await eve.page.textContent('#members'), '3');

    await say(ada.page, 'hello bob');
    await hears(bob.page, 'ada: hello bob');
    await hears(ada.page, 'ada: hello bob');
    await hears(eve.page, 'ada: hello bob');
    await say(bob.page, 'hi ada');
    await hears(ada.page, 'bob: hi ada');
    await hears(eve.page, 'bob: hi ada');
    // Each line once on every page.
    for (const { page } of [ada, bob, eve]) {
      const lines = await page.$$eval('#log li', (items) => items.map((li) => li.textContent));
      assert.equal(lines.filter((line) => line === 'ada: hello bob').length, 1);
      assert.equal(lines.filter((line) => line === 'bob: hi ada').length, 1);
    }
    for (const { errors } of [ada, bob, eve]) assert.deepEqual(errors, []);
  });
}

test('pages whose network drops reconnect by themselves and miss nothing', async (t) => {
  const chat = await startChat();
  const proxy = await startCutProxy(chat.port);
  const browser = await launch();
  t.after(async () => { await browser.close(); await proxy.close(); await chat.stop(); });
  // Ada and Eve reach the server through a network the test can cut.
  const ada = await join(browser, proxy.url, 'ada', 'garden', 'websocket');
  const eve = await join(browser, proxy.url, 'eve', 'garden', 'eventsource');
  const bob = await join(browser, chat.url, 'bob', 'garden', 'sockjs');
  await say(bob.page, 'before');
  for (const { page } of [ada, eve]) await hears(page, 'bob: before');

  assert.ok(proxy.down() >= 2, 'both pages were connected through the proxy');
  for (const text of ['while away 1', 'while away 2', 'while away 3']) await say(bob.page, text);
  await hears(bob.page, 'bob: while away 3');
  proxy.up();

  for (const { page } of [ada, eve]) {
    await page.locator('#log li', { hasText: 'nothing missed' }).waitFor({ timeout: 30000 });
    await hears(page, 'bob: while away 3');
  }
  await say(bob.page, 'back again');
  for (const { page } of [ada, eve]) await hears(page, 'bob: back again');
  for (const { page } of [ada, eve, bob]) {
    const lines = await page.$$eval('#log li', (items) => items.map((li) => li.textContent));
    const said = lines.filter((line) => line.startsWith('bob: '));
    assert.deepEqual(said, ['bob: before', 'bob: while away 1', 'bob: while away 2',
      'bob: while away 3', 'bob: back again']);
  }
  for (const { errors } of [ada, bob, eve]) assert.deepEqual(errors, []);
});
