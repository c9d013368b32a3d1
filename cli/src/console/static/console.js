// Mailroom console: the little the pages need JavaScript for. Reading works without it.
"use strict";

// New rows without a reload: the first page of a listing asks again every few seconds for the rows of the
// same filter and puts the ones it has not shown yet on top.
function pollRows() {
  const table = document.querySelector("table[data-poll]");
  if (!table) return;
  const body = table.tBodies[0];
  const seen = new Set(Array.from(body.rows, (row) => row.dataset.key));
  setInterval(async () => {
    try {
      const answer = await fetch(table.dataset.poll, { credentials: "same-origin" });
      if (!answer.ok) return;
      const template = document.createElement("template");
      template.innerHTML = (await answer.json()).rows_html;
      const fresh = Array.from(template.content.querySelectorAll("tr")).filter(
        (row) => !seen.has(row.dataset.key)
      );
      fresh.reverse().forEach((row) => {
        seen.add(row.dataset.key);
        row.classList.add("new");
        body.insertBefore(row, body.firstChild);
      });
      const empty = document.getElementById("empty");
      if (fresh.length && empty) empty.remove();
    } catch (_) {
      // The console stopped or the network blinked: try again at the next tick.
    }
  }, Number(table.dataset.every || 3000));
}

// Forms that destroy something ask once more.
function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  pollRows();
  confirmations();
});
