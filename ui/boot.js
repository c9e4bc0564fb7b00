// Starts the UI. A file of its own, not an inline script: the server's
// Content-Security-Policy runs scripts from this server only, never inline ones.
import init from '/ioc_ui.js';

// The live feed, opened while the WebAssembly below loads and starts: the server builds and
// sends a province's snapshot meanwhile. The UI's feed (src/feed.rs) takes this socket and
// what it received; if the page is not signed in it is refused and simply ignored.
try {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const early = { ws: new WebSocket(`${proto}://${location.host}/ws?values=watched`), messages: [] };
  early.ws.onmessage = (e) => early.messages.push(e.data);
  early.ws.onclose = () => { early.closed = true; };
  window.__iocEarlyFeed = early;
} catch (_) {
  // No early feed: the UI opens its own.
}

init().catch((e) => {
  const pre = document.createElement('pre');
  pre.className = 'boot-error';
  pre.textContent = `Không khởi động được giao diện / the UI failed to start:\n${e}`;
  document.body.prepend(pre);
});
