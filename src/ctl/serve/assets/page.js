// switchmanctl serve: applies the server's event stream to the page. Each event is the page's
// <main>, rendered by the server as the page itself is; between events the ages in it tick on.
"use strict";
(() => {
  const live = document.getElementById("live");
  const main = () => document.querySelector("main");
  let offset = 0; // the server's clock less this one's, in ms

  // As the server writes them (src/timestamp.rs: age).
  const two = (n) => String(n).padStart(2, "0");
  const age = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
    return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
  };
  const tick = () => {
    const now = Date.now() + offset;
    for (const t of main().querySelectorAll("time[data-since]")) {
      t.textContent = age(now - Date.parse(t.dateTime));
    }
  };
  const adopt = () => {
    offset = Number(main().dataset.now) - Date.now();
    tick();
  };
  const say = (text, state) => {
    live.textContent = text;
    live.className = state;
  };

  const events = new EventSource("api/events");
  events.onopen = () => say("Live: changes show as they happen.", "live");
  events.onmessage = (e) => {
    // A stream that reconnects starts with the latest view, which the page may have already.
    if (Number(e.lastEventId) <= Number(main().dataset.seq)) return;
    const open = [...main().querySelectorAll("details[open]")].map((d) => d.id);
    main().outerHTML = e.data;
    for (const id of open) document.getElementById(id)?.setAttribute("open", "");
    adopt();
  };
  events.onerror = () => {
    main().classList.add("stale");
    say("No contact with switchmanctl serve: what is shown may be out of date; retrying.", "lost");
  };
  adopt();
  setInterval(tick, 1000);
})();
