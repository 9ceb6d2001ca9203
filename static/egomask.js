// EgoMask leaderboard: small progressive enhancements. Every page works without this file.
// (The submit form's upload is in upload.js.)
(function () {
  "use strict";

  // Forms with data-confirm ask before they post (leave team, cancel, new invite code).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Copy buttons: data-copy names the id of the input to copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    input.select();
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, function () {});
    else if (document.execCommand("copy")) done();
  });

  // Live status: rows with data-status-url and data-terminal="false" are polled every 2 s.
  function formatScore(value) {
    return typeof value === "number" ? value.toFixed(2) : "–";
  }

  function setupLiveTable(table) {
    var metric = table.getAttribute("data-metric");

    function update(row, data) {
      var badge = row.querySelector("[data-status-badge]");
      badge.textContent = data.status;
      badge.className = "badge status status-" + data.status;
      row.querySelector("[data-failure]").textContent = data.failure_message || "";
      var overall = data.scores && data.scores.overall;
      row.querySelector("[data-score]").textContent = formatScore(overall && overall[metric]);
      if (data.is_terminal) row.setAttribute("data-terminal", "true");
    }

    function poll() {
      var rows = table.querySelectorAll('tr[data-status-url][data-terminal="false"]');
      if (!rows.length) return;
      var pending = Array.prototype.map.call(rows, function (row) {
        return fetch(row.getAttribute("data-status-url"), { headers: { Accept: "application/json" } })
          .then(function (r) {
            if (r.status === 403 || r.status === 404) row.setAttribute("data-terminal", "true");  // stop asking
            return r.ok ? r.json() : null;
          })
          .then(function (data) { if (data) update(row, data); })
          .catch(function () { /* try again next round */ });
      });
      Promise.all(pending).then(function () { setTimeout(poll, 2000); });
    }

    setTimeout(poll, 2000);
  }

  // A single submission page reloads itself once its submission reaches a final state.
  function setupReload(element) {
    var url = element.getAttribute("data-reload-when-done");
    function poll() {
      fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.is_terminal) { window.location.reload(); return; }
          var note = element.querySelector("[data-status-note]");  // e.g. retrying after a worker stopped
          if (data && note) note.textContent = data.status_note ? data.status_note + " " : "";
          setTimeout(poll, 2000);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-live-status]").forEach(setupLiveTable);
    document.querySelectorAll("[data-reload-when-done]").forEach(setupReload);
  });
})();
