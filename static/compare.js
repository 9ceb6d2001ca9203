// EgoMask leaderboard: the board's "Compare selected" button, the "by trait" chart and the comparison chart.
// The charts are drawn with the vendored Chart.js (global `Chart`) from the JSON the page embeds, which is what
// the API serves (GET /api/v1/phases/<id>/leaderboard/by-trait/ and /compare/). Every page works without this file.
(function () {
  "use strict";

  var COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
                 "#4b5563", "#65a30d"];

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function bucketLabels(buckets) {
    return buckets.map(function (b) { return b.label + " (n=" + b.n + ")"; });
  }

  // --- the board: tick rows, "Compare selected" goes to ?submissions=12,34 (the shareable address) ---------
  function setUpCompareForm() {
    var form = document.getElementById("compare-form");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      var boxes = document.querySelectorAll('input[name="submissions"][form="compare-form"]:checked');
      var ids = Array.prototype.map.call(boxes, function (box) { return box.value; });
      event.preventDefault();
      var note = form.querySelector(".compare-note");
      if (ids.length < 2 || ids.length > 8) {
        if (!note) {
          note = document.createElement("span");
          note.className = "compare-note alert warning small";
          note.setAttribute("role", "status");
          form.appendChild(note);
        }
        note.textContent = "Tick two to eight rows to compare.";
        return;
      }
      window.location.href = form.getAttribute("action") + "?submissions=" + ids.join(",");
    });
  }

  // --- the board by trait: one line per row (the first ten), x = buckets with their counts -----------------
  function drawByTrait() {
    var data = readJson("by-trait-data");
    var canvas = document.getElementById("by-trait-chart");
    if (!data || !canvas || typeof Chart === "undefined") return;
    var rows = data.rows.filter(function (row) { return row.values; }).slice(0, 10);
    var datasets = rows.map(function (row, i) {
      var who = row.is_baseline ? "baseline" : (row.team || "");
      return {
        label: (row.rank ? "#" + row.rank + " " : "") + row.method + " (" + who + ")",
        data: row.values.map(function (v) { return v ? v[data.metric] : null; }),
        borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
        spanGaps: false, tension: 0, pointRadius: 4
      };
    });
    new Chart(canvas, {
      type: "line",
      data: { labels: bucketLabels(data.buckets), datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { title: { display: true, text: data.metric + " (%)" }, suggestedMin: 0, suggestedMax: 100 },
                  x: { title: { display: true, text: data.label + (data.unit ? " (" + data.unit + ")" : "") } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  }

  // --- the comparison: per trait, the difference from the first on the primary metric, with its interval ---
  var whiskers = {
    id: "whiskers",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, y = chart.scales.y;
      chart.data.datasets.forEach(function (dataset, d) {
        var meta = chart.getDatasetMeta(d);
        if (meta.hidden) return;
        meta.data.forEach(function (bar, i) {
          var ci = dataset.intervals[i];
          if (!ci) return;
          var top = y.getPixelForValue(ci[1]), bottom = y.getPixelForValue(ci[0]), half = 5;
          ctx.save();
          ctx.strokeStyle = "#111827";
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(bar.x, top); ctx.lineTo(bar.x, bottom);
          ctx.moveTo(bar.x - half, top); ctx.lineTo(bar.x + half, top);
          ctx.moveTo(bar.x - half, bottom); ctx.lineTo(bar.x + half, bottom);
          ctx.stroke();
          ctx.restore();
        });
      });
    }
  };

  function drawComparison() {
    var data = readJson("comparison-data");
    var canvas = document.getElementById("compare-chart");
    var select = document.getElementById("compare-trait");
    if (!data || !canvas || typeof Chart === "undefined") return;
    var chart = null;
    function names(s) { return "#" + s.submission_id + " " + s.method; }
    function draw() {
      var trait = data.traits[select ? Number(select.value) : 0];
      if (!trait) return;
      var datasets = data.submissions.slice(1).map(function (s, k) {
        var cells = trait.differences[k];
        return {
          label: names(s) + " − " + names(data.submissions[0]),
          data: cells.map(function (c) { return c ? c.difference : null; }),
          intervals: cells.map(function (c) { return c ? c.ci : null; }),
          pValues: cells.map(function (c) { return c ? c.p_value : null; }),
          backgroundColor: COLOURS[(k + 1) % COLOURS.length]
        };
      });
      if (chart) chart.destroy();
      chart = new Chart(canvas, {
        type: "bar",
        data: { labels: bucketLabels(trait.buckets), datasets: datasets },
        plugins: [whiskers],
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          scales: { y: { title: { display: true, text: "difference in " + data.metric + " (points)" } },
                    x: { title: { display: true, text: trait.label } } },
          plugins: {
            legend: { position: "bottom" },
            tooltip: { callbacks: { afterLabel: function (item) {
              var ds = item.dataset, ci = ds.intervals[item.dataIndex], p = ds.pValues[item.dataIndex];
              if (!ci) return "";
              return "95% interval " + ci[0].toFixed(2) + " to " + ci[1].toFixed(2) + ", p = " + p.toFixed(3) +
                (p >= data.level ? " (not distinguishable)" : "");
            } } }
          }
        }
      });
      canvas.setAttribute("data-drawn", "true");
    }
    if (select) select.addEventListener("change", draw);
    draw();
  }

  // Selects of a form marked data-autosubmit show the new choice at once.
  function setUpAutosubmit() {
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function start() {
    setUpCompareForm();
    setUpAutosubmit();
    drawByTrait();
    drawComparison();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
