// Chat clients of every npm package the interop tests use, each with an
// inbox to wait on: the npm `browserchannel` client, `sockjs-client`, `ws`
// and `eventsource`.
'use strict';
const { BCSocket } = require('browserchannel');
const SockJS = require('sockjs-client');
const WebSocket = require('ws');
const { EventSource } = require('eventsource');

/** A queue of what a client received, to wait on in order. */
class Inbox {
  constructor() { this.items = []; this.waiters = []; }
  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item); else this.items.push(item);
  }
  next(ms = 10000) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('nothing arrived in time')), ms);
      this.waiters.push((item) => { clearTimeout(timer); resolve(item); });
    });
  }
  /** True when nothing is waiting to be read. */
  empty() { return this.items.length === 0; }
}

function opened(onopen, onfail) {
  return new Promise((resolve, reject) => { onopen(resolve); onfail(reject); });
}

async function bc(url) {
  const inbox = new Inbox();
  const socket = new BCSocket(`${url}/channel`, { reconnect: false });
  socket.onmessage = ({ data }) => inbox.push(data);
  await opened((r) => { socket.onopen = r; }, (f) => { socket.onerror = f; });
  return { inbox, send: (o) => socket.send(o), close: () => socket.close() };
}

async function sockjs(url) {
  const inbox = new Inbox();
  const socket = new SockJS(`${url}/sockjs`, null, { transports: ['xhr-streaming'] });
  socket.onmessage = (event) => inbox.push(JSON.parse(event.data));
  await opened((r) => { socket.onopen = r; }, (f) => { socket.onclose = f; });
  return { inbox, send: (o) => socket.send(JSON.stringify(o)), close: () => socket.close() };
}

async function ws(url) {
  const inbox = new Inbox();
  const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`);
  socket.on('message', (data) => inbox.push(JSON.parse(data.toString())));
  await opened((r) => socket.once('open', r), (f) => socket.once('error', f));
  return { inbox, send: (o) => socket.send(JSON.stringify(o)), close: () => socket.close() };
}

async function events(url, room) {
  const inbox = new Inbox();
  const source = new EventSource(`${url}/events?room=${encodeURIComponent(room)}`);
  for (const type of ['joined', 'said', 'message']) {
    source.addEventListener(type, (event) => inbox.push({ event: type, data: JSON.parse(event.data) }));
  }
  await opened((r) => { source.onopen = r; }, (f) => { source.onerror = f; });
  return { inbox, close: () => source.close() };
}

module.exports = { Inbox, bc, sockjs, ws, events };
