// A TCP proxy in front of a server whose connections the test can cut, the
// way a network blip would: every open connection ends at once, and while
// it is down new ones are refused.
'use strict';
const net = require('node:net');

/** Starts the proxy in front of `port`; resolves with { port, url, cut(), down(), up(), close() }. */
function startCutProxy(port) {
  const pairs = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      a.on('error', () => b.destroy());
      a.on('close', () => { b.destroy(); pairs.delete(pair); });
    }
  });
  const cut = () => {
    const open = pairs.size;
    for (const { client, upstream } of pairs) { client.destroy(); upstream.destroy(); }
    pairs.clear();
    return open;
  };
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const proxyPort = server.address().port;
      resolve({
        port: proxyPort,
        url: `http://127.0.0.1:${proxyPort}`,
        /** Ends every open connection; resolves with how many there were. */
        cut,
        /** Ends every open connection and refuses new ones until `up()`. */
        down: () => { refusing = true; return cut(); },
        up: () => { refusing = false; },
        /** Connections open now. */
        open: () => pairs.size,
        close: () => new Promise((done) => { cut(); server.close(done); }),
      });
    });
  });
}

module.exports = { startCutProxy };
