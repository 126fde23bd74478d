// Dockerbank dashboard: live logs and events over server-sent events; confirmations. No libraries.
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
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (ev) => { if (!confirm(form.dataset.confirm)) ev.preventDefault(); });
  }
});
