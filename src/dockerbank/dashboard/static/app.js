// Dockerbank dashboard: live logs and events over server-sent events, job progress, the console
// (xterm.js, installed by npm ci from frontend/package-lock.json), confirmations.
"use strict";

function follow(el, onData, onEnd) {
  const source = new EventSource(el.dataset.stream);
  source.onmessage = (msg) => onData(msg.data);
  source.addEventListener("end", () => { source.close(); if (onEnd) onEnd(); });
  return source;
}

document.addEventListener("DOMContentLoaded", () => {
  const logs = document.getElementById("logs");
  if (logs) {
    follow(logs, (line) => {
      const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      logs.append(line + "\n");
      if (atBottom) logs.scrollTop = logs.scrollHeight;
    }, () => { document.getElementById("logs-state").textContent = "(container stopped: reload to follow again)"; });
  }
  const live = document.getElementById("live-events");
  if (live) {
    follow(live, (data) => {
      const e = JSON.parse(data);
      const none = document.getElementById("no-events");
      if (none) none.remove();
      const li = document.createElement("li");
      li.textContent = `${e.time}  ${e.type} ${e.action}  ${e.name}${e.user ? "  by " + e.user : ""}`;
      live.prepend(li);
      while (live.children.length > 15) live.lastElementChild.remove();
    });
  }
  const table = document.getElementById("events");
  if (table) {
    const body = table.querySelector("tbody");
    follow(table, (data) => {
      const e = JSON.parse(data);
      const tr = document.createElement("tr");
      for (const key of ["time", "type", "action", "name", "user"]) {
        const td = document.createElement("td");
        td.textContent = e[key];
        if (key === "time") td.className = "mono";
        tr.append(td);
      }
      body.prepend(tr);
    });
  }
  for (const row of document.querySelectorAll('tr.job[data-state="running"]')) watchJob(row);
  const consoleEl = document.getElementById("console");
  if (consoleEl && window.Terminal) openConsole(consoleEl);
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (ev) => { if (!confirm(form.dataset.confirm)) ev.preventDefault(); });
  }
});


// A running job's row: its progress bar and result follow GET /jobs/{id} until it ends.
function watchJob(row) {
  const bar = row.querySelector("progress");
  const result = row.querySelector(".job-result");
  const poll = async () => {
    const answer = await fetch(`/jobs/${row.dataset.job}`, { credentials: "same-origin" });
    if (!answer.ok) return;
    const job = await answer.json();
    bar.max = job.total || 1;
    bar.value = job.state === "running" ? job.done : bar.max;
    row.dataset.state = job.state;
    if (job.state === "running") { setTimeout(poll, 400); return; }
    result.textContent = job.message || job.state;
    result.className = "job-result " + (job.state === "ok" ? "good" : "bad");
  };
  poll();
}

// exec -it in the browser: keys go up as JSON text frames, the terminal's output comes down as bytes.
function openConsole(el) {
  const state = document.getElementById("console-state");
  const term = new window.Terminal({ cursorBlink: true, convertEol: false, fontSize: 14 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ cmd: el.dataset.cmd, csrf: el.dataset.csrf });
  const ws = new WebSocket(`${scheme}//${location.host}${el.dataset.socket}?${query}`);
  ws.binaryType = "arraybuffer";
  const resize = () => { if (ws.readyState === 1) ws.send(JSON.stringify({ t: "r", rows: term.rows, cols: term.cols })); };
  ws.onopen = () => { state.textContent = "connected"; resize(); term.focus(); };
  ws.onmessage = (msg) => {
    if (typeof msg.data === "string") {
      const info = JSON.parse(msg.data);
      if (info.error) { state.textContent = info.error; }
      if (info.exit !== undefined) { state.textContent = `exited with code ${info.exit}`; }
      return;
    }
    term.write(new Uint8Array(msg.data));
  };
  ws.onclose = () => { if (state.textContent === "connected") state.textContent = "disconnected"; };
  term.onData((data) => { if (ws.readyState === 1) ws.send(JSON.stringify({ t: "i", d: data })); });
  window.addEventListener("resize", () => { fit.fit(); resize(); });
  el.dockerbankTerminal = term;  // the browser tests read the screen from here
}
