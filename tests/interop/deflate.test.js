// permessage-deflate (RFC 7692) with real clients: headless Chromium (which
// offers it on every handshake) and the npm `ws` client with perMessageDeflate,
// against the echo example, which turns the extension on.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const WebSocket = require('ws');
const { startEcho } = require('./echo-server');

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

test('Chromium negotiates permessage-deflate with /ws and echoes text both ways', async (t) => {
  assert.ok(fs.existsSync(executablePath), `no browser at ${executablePath}`);
  const echo = await startEcho();
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  t.after(async () => { await browser.close(); await echo.stop(); });
  const page = await browser.newPage();
  // The handshake's response headers, as the browser's network layer saw them.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const handshake = new Promise((resolve) => {
    cdp.on('Network.webSocketHandshakeResponseReceived', (event) => resolve(event.response));
  });
  await page.goto(`${echo.url}/`);
  const long = JSON.stringify({ type: 'said', text: 'compress me '.repeat(40), emoji: '😀' });
  const result = await page.evaluate(async ([url, messages]) => {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject; });
    const echoes = [];
    const done = new Promise((resolve) => {
      socket.onmessage = (event) => { echoes.push(event.data); if (echoes.length === messages.length) resolve(); };
    });
    for (const message of messages) socket.send(message);
    await done;
    socket.close();
    return { extensions: socket.extensions, echoes };
  }, [echo.url.replace('http', 'ws') + '/ws', [long, 'short', long]]);
  const response = await handshake;
  const header = Object.entries(response.headers)
    .find(([name]) => name.toLowerCase() === 'sec-websocket-extensions');
  assert.ok(header, `no Sec-WebSocket-Extensions in ${JSON.stringify(response.headers)}`);
  assert.match(header[1], /^permessage-deflate\b/);
  assert.match(header[1], /server_no_context_takeover/);
  // Chromium offers client_max_window_bits: the answer names it.
  assert.match(header[1], /client_max_window_bits=15/);
  assert.equal(result.extensions, header[1]);
  assert.deepEqual(result.echoes, [long, 'short', long]);
});

/** Connects the npm `ws` client, compressing everything it sends. */
function connect(url, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: { threshold: 0, ...options } });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

function echoOf(socket, message) {
  return new Promise((resolve) => {
    socket.once('message', (data, binary) => resolve(binary ? data : data.toString()));
    socket.send(message);
  });
}

test('the ws client compresses both ways on /ws and SockJS raw /websocket', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const base = echo.url.replace('http', 'ws');
  for (const [path, options] of [
    ['/ws', {}],
    ['/ws', { clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9 }],
    ['/sockjs/websocket', {}],
  ]) {
    const socket = await connect(base + path, options);
    assert.match(socket.extensions, /permessage-deflate/, path);
    const long = 'x'.repeat(10000) + 'é'.repeat(1000);
    for (const message of [long, 'hi', long]) {
      assert.equal(await echoOf(socket, message), message, path);
    }
    const binary = Buffer.alloc(5000, 7);
    assert.deepEqual(await echoOf(socket, binary), binary, path);
    await new Promise((resolve) => { socket.once('close', resolve); socket.close(1000); });
  }
});

test('an inflate bomb from the ws client closes with 1009', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.stop());
  const socket = await connect(echo.url.replace('http', 'ws') + '/ws');
  // 4 MiB of zeros, a few KiB compressed; the echo's limit is 1 MiB.
  const code = await new Promise((resolve) => {
    socket.once('close', (closeCode) => resolve(closeCode));
    socket.send(Buffer.alloc(4 << 20));
  });
  assert.equal(code, 1009);
});
