// Starts the UI. A file of its own, not an inline script: the server's
// Content-Security-Policy runs scripts from this server only, never inline ones.
import init from '/ioc_ui.js';

init().catch((e) => {
  const pre = document.createElement('pre');
  pre.className = 'boot-error';
  pre.textContent = `Không khởi động được giao diện / the UI failed to start:\n${e}`;
  document.body.prepend(pre);
});
