// The Node baselines of the WebSocket fan-out benchmark (`loadgen --mode
// fanout --fanout-servers ...,node-preframed,node-send`): an HTTP server
// with the `ws` package's WebSocketServer, every connection a member.
// `POST /fanout?mode=preframed` frames the request's body once and writes
// that one buffer to each member's socket; `mode=send` calls `send` per
// member (ws frames it each time). Answers as the other fan-out servers
// do: {reached, dropped, queued_us}. Listens on 127.0.0.1:$PORT (0 picks
// a free port) and prints `listening on http://ADDRESS`.
//
// `ws` comes from tests/interop (npm ci --prefix tests/interop); run with
// NODE_PATH=tests/interop/node_modules.

'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const server = http.createServer((request, response) => {
  const url = new URL(request.url, 'http://localhost');
  if (request.method !== 'POST' || url.pathname !== '/fanout') {
    response.writeHead(404).end();
    return;
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const started = process.hrtime.bigint();
    const body = Buffer.concat(chunks);
    let reached = 0;
    if (url.searchParams.get('mode') === 'preframed') {
      const frame = Buffer.concat(
        WebSocket.Sender.frame(body, {
          fin: true,
          rsv1: false,
          opcode: 1,
          mask: false,
          readOnly: false,
        }),
      );
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) {
          client._socket.write(frame);
          reached += 1;
        }
      }
    } else {
      const text = body.toString();
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) {
          client.send(text);
          reached += 1;
        }
      }
    }
    const queuedUs = Number((process.hrtime.bigint() - started) / 1000n);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ reached, dropped: 0, queued_us: queuedUs }));
  });
});

const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (socket) => {
  socket._socket.setNoDelay(true);
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
