// EgoMask leaderboard: small progressive enhancements. Every page works without this file.
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

  // Upload with a progress bar: the same multipart POST, sent with XMLHttpRequest. The server
  // answers {"redirect": url} or {"error": message}.
  function setupUpload(form) {
    var bar = form.querySelector("progress");
    var box = form.querySelector("[data-upload-progress]");
    var percent = form.querySelector("[data-upload-percent]");
    var errorBox = form.querySelector("[data-upload-error]");
    var button = form.querySelector("[data-upload-button]");

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      box.hidden = true;
      button.disabled = false;
      errorBox.scrollIntoView({ block: "center", behavior: "smooth" });
    }

    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      event.preventDefault();
      errorBox.hidden = true;
      button.disabled = true;
      box.hidden = false;
      bar.value = 0;
      percent.textContent = "0%";

      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) {
        if (!e.lengthComputable) return;
        var value = Math.round((e.loaded / e.total) * 100);
        bar.value = value;
        percent.textContent = value + "%";
      };
      xhr.upload.onload = function () {
        percent.textContent = "100%";
        box.querySelector("label").textContent = "Checking";
      };
      xhr.onload = function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: a proxy or server error page */ }
        if (body && body.redirect) {
          window.location.assign(body.redirect);
        } else if (body && body.error) {
          showError(body.error);
        } else if (xhr.responseURL && xhr.responseURL.indexOf("/login/") !== -1) {
          showError("You are logged out. Log in again (in another tab), then retry the upload.");
        } else if (xhr.status === 413) {
          showError("The file is too large for the server.");
        } else {
          showError("The upload failed (HTTP " + xhr.status + "). Please try again.");
        }
      };
      xhr.onerror = function () { showError("The upload failed: the connection was interrupted. Please try again."); };
      xhr.send(new FormData(form));
    });
  }

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
          if (data && data.is_terminal) window.location.reload();
          else setTimeout(poll, 2000);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload]").forEach(setupUpload);
    document.querySelectorAll("table[data-live-status]").forEach(setupLiveTable);
    document.querySelectorAll("[data-reload-when-done]").forEach(setupReload);
  });
})();
