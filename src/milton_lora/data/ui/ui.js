// The dashboard's only script: filtering the adapters table, and refreshing a training run's progress.
"use strict";

function filterAdapters() {
  const text = document.getElementById("filter").value.trim().toLowerCase();
  const status = document.getElementById("status-filter").value;
  for (const row of document.querySelectorAll("#adapters tr[data-status]")) {
    const shown = (!status || row.dataset.status === status) && row.dataset.text.includes(text);
    row.hidden = !shown;
  }
}

async function refreshLive(box) {
  const response = await fetch(box.dataset.live, { credentials: "same-origin" });
  if (!response.ok) return true;
  const live = await response.json();
  document.getElementById("live-status").textContent = live.status;
  document.getElementById("charts").innerHTML = live.charts; // SVG rendered and escaped by the server
  if (!live.running) window.location.reload(); // the adapter is written: show the whole run page
  return live.running;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["filter", "status-filter"]) {
    const control = document.getElementById(id);
    if (control) control.addEventListener("input", filterAdapters);
  }
  const box = document.getElementById("live");
  if (box) {
    const timer = setInterval(async () => {
      if (!(await refreshLive(box))) clearInterval(timer);
    }, 2000);
  }
});
