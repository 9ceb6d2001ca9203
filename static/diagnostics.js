// EgoMask leaderboard: a submission's diagnostics, drawn with Chart.js (static/vendor/chart.js) from the JSON the
// page embeds (#diagnostics-data: what GET /api/v1/submissions/<id>/diagnostics/ answers). The page's tables carry
// the same numbers without this file; each chart also describes itself in words for screen readers.
(function () {
  "use strict";

  var source = document.getElementById("diagnostics-data");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  if (!data.available) return;

  var css = getComputedStyle(document.documentElement);
  function color(name, fallback) { return (css.getPropertyValue(name) || "").trim() || fallback; }
  var ACCENT = color("--accent", "#3451d1");
  var TEXT = color("--text", "#1d2330");
  var MUTED = color("--muted", "#5d6678");
  var GRID = color("--border", "#dde1e8");
  var BAD = color("--bad", "#b3261e");
  var WARN = color("--warn", "#8a5a00");
  var OK = color("--ok", "#1d7a46");
  var BASELINE_COLORS = ["#8d96a8", "#2a9d8f", "#c77d2e", "#9b5de5", "#6c757d", "#e76f51"];

  Chart.defaults.color = TEXT;
  Chart.defaults.borderColor = GRID;
  Chart.defaults.font.family = css.getPropertyValue("font-family") || Chart.defaults.font.family;
  Chart.defaults.animation = false;  // drawn at once: nothing moves for readers who prefer less motion

  function pct(value) { return typeof value === "number" ? value.toFixed(1) : "–"; }

  // --- the four metrics by bucket of one trait: this submission beside each baseline ---------------------

  var traitSelect = document.getElementById("diag-trait");
  var metricSelect = document.getElementById("diag-metric");
  var traitCanvas = document.getElementById("diag-traits-chart");
  var traitText = document.getElementById("diag-traits-text");
  var traitChart = null;

  function traitOf(name) {
    for (var i = 0; i < data.traits.length; i++) if (data.traits[i].name === name) return data.traits[i];
    return null;
  }

  function rowsOf(byTrait, name) {
    var found = {};
    (byTrait[name] || []).forEach(function (row) { found[row.bucket] = row; });
    return found;
  }

  function traitView(name, metric) {
    var trait = traitOf(name);
    var own = rowsOf(data.by_trait, name);
    var others = data.baselines.map(function (b) { return rowsOf(b.by_trait, name); });
    var labels = trait.buckets.concat(["none"]).filter(function (label) {
      return own[label] || others.some(function (o) { return o[label]; });
    });
    var series = [{ label: "This submission", rows: own, color: ACCENT }].concat(data.baselines.map(function (b, i) {
      return { label: b.method + " (baseline)", rows: others[i], color: BASELINE_COLORS[i % BASELINE_COLORS.length] };
    }));
    return { trait: trait, labels: labels, series: series, metric: metric };
  }

  function countOf(view, label) {
    for (var i = 0; i < view.series.length; i++) if (view.series[i].rows[label]) return view.series[i].rows[label].n;
    return 0;
  }

  function describeTraits(view) {
    var parts = view.labels.map(function (label) {
      return label + " (" + countOf(view, label) + " expressions): " + view.series.map(function (s) {
        var row = s.rows[label];
        return s.label + " " + (row ? pct(row[view.metric]) : "not shown");
      }).join(", ");
    });
    return view.metric + " by " + view.trait.label + ", percent. " + (parts.join("; ") || "No bucket shown.") + ".";
  }

  function drawTraits() {
    var view = traitView(traitSelect.value, metricSelect.value);
    var config = {
      type: "bar",
      data: {
        labels: view.labels.map(function (label) { return [label, "n = " + countOf(view, label)]; }),
        datasets: view.series.map(function (s) {
          return {
            label: s.label, backgroundColor: s.color, borderColor: s.color, borderWidth: 1,
            data: view.labels.map(function (label) { return s.rows[label] ? s.rows[label][view.metric] : null; })
          };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false,
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + pct(item.raw) + " %"; } } }
        },
        scales: {
          x: { title: { display: true, text: view.trait.label + (view.trait.unit ? " (" + view.trait.unit + ")" : "") } },
          y: { min: 0, max: 100, title: { display: true, text: view.metric + " (%)" } }
        }
      }
    };
    if (traitChart) traitChart.destroy();
    traitChart = new Chart(traitCanvas, config);
    var words = describeTraits(view);
    traitCanvas.setAttribute("aria-label", words);
    traitCanvas.setAttribute("data-trait", view.trait.name);
    if (traitText) traitText.textContent = words;
  }

  if (traitSelect && metricSelect && traitCanvas && data.traits.length) {
    traitSelect.addEventListener("change", drawTraits);
    metricSelect.addEventListener("change", drawTraits);
    drawTraits();
  }

  // --- error types per split ---------------------------------------------------------------------------

  var errorsCanvas = document.getElementById("diag-errors-chart");
  var splits = Object.keys(data.errors || {});
  if (errorsCanvas && splits.length) {
    var kinds = [["missed_pct", "missed (% of object frames)", BAD], ["hallucinated_pct", "hallucinated (% of predicted frames)", WARN],
                 ["low_iou_pct", "low IoU (% of frames with both)", MUTED]];
    new Chart(errorsCanvas, {
      type: "bar",
      data: {
        labels: splits,
        datasets: kinds.map(function (k) {
          return { label: k[1], backgroundColor: k[2], data: splits.map(function (s) { return data.errors[s][k[0]]; }) };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false,
        plugins: { legend: { position: "bottom" } },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "% of frames" } } }
      }
    });
    errorsCanvas.setAttribute("aria-label", "Error types per split, percent. " + splits.map(function (s) {
      var e = data.errors[s];
      return s + ": missed " + pct(e.missed_pct) + ", hallucinated " + pct(e.hallucinated_pct) + ", low IoU " + pct(e.low_iou_pct);
    }).join("; ") + ".");
  }

  // --- one expression's timeline (phases that show per-frame details) -----------------------------------

  var expressionSelect = document.getElementById("diag-expression");
  var timelineCanvas = document.getElementById("diag-timeline-chart");
  var timelineText = document.getElementById("diag-timeline-text");
  var timelineChart = null;

  function positions(ranges) {
    var out = [];
    ranges.forEach(function (r) { for (var p = r[0]; p < r[1]; p++) out.push(p); });
    return out;
  }

  function rangesText(ranges) {
    if (!ranges.length) return "none";
    return ranges.map(function (r) { return r[1] - r[0] === 1 ? String(r[0]) : r[0] + "–" + (r[1] - 1); }).join(", ");
  }

  function drawTimeline(t) {
    var n = t.n, gt = {}, pred = {}, iou = {}, below = typeof t.low_iou_below === "number" ? t.low_iou_below : 0.5;
    positions(t.gt).forEach(function (p) { gt[p] = true; });
    positions(t.pred).forEach(function (p) { pred[p] = true; });
    t.hits.forEach(function (h) { iou[h[0]] = h[1]; });
    var frames = [];
    for (var p = 0; p < n; p++) frames.push(p);
    var config = {
      data: {
        labels: frames,
        datasets: [
          { type: "line", label: "object visible (G)", showLine: false, pointStyle: "rect", pointRadius: 6,
            backgroundColor: OK, borderColor: OK, data: frames.map(function (f) { return gt[f] ? 1.16 : null; }) },
          { type: "line", label: "mask predicted (P)", showLine: false, pointStyle: "rect", pointRadius: 6,
            backgroundColor: ACCENT, borderColor: ACCENT, data: frames.map(function (f) { return pred[f] ? 1.06 : null; }) },
          { type: "bar", label: "IoU where both (amber: below " + below + ")", data: frames.map(function (f) { return f in iou ? iou[f] : null; }),
            backgroundColor: frames.map(function (f) { return f in iou && iou[f] < below ? WARN : MUTED; }) }
        ]
      },
      options: {
        responsive: true, maintainAspectRatio: false,
        plugins: { legend: { position: "bottom" } },
        scales: {
          x: { title: { display: true, text: "frame (position in the video)" } },
          y: { min: 0, max: 1.22, title: { display: true, text: "IoU" },
               ticks: { stepSize: 0.25, callback: function (v) { return v <= 1 ? v : ""; } } }
        }
      }
    };
    if (timelineChart) timelineChart.destroy();
    timelineChart = new Chart(timelineCanvas, config);
    var ious = t.hits.map(function (h) { return h[1]; });
    var mean = ious.length ? ious.reduce(function (a, b) { return a + b; }, 0) / ious.length : null;
    var low = ious.filter(function (v) { return v < below; }).length;
    var words = t.expression + ": " + n + " frames. Object visible in frames " + rangesText(t.gt) +
      "; mask predicted in frames " + rangesText(t.pred) + "; " + ious.length + " frames with both" +
      (mean === null ? "" : ", mean IoU " + mean.toFixed(2) + ", " + low + " below " + below) + ".";
    timelineCanvas.setAttribute("aria-label", words);
    timelineCanvas.setAttribute("data-expression", t.expression);
    if (timelineText) timelineText.textContent = words;
  }

  function loadTimeline() {
    var key = expressionSelect.value;
    timelineText.textContent = "Loading " + key + "…";
    fetch(data.timelines_url + "?expression=" + encodeURIComponent(key),
          { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        if (expressionSelect.value !== key) return;  // another one was chosen meanwhile
        if (answer.ok) drawTimeline(answer.body);
        else timelineText.textContent = answer.body.error || "The timeline could not be loaded.";
      })
      .catch(function () { timelineText.textContent = "The timeline could not be loaded; try again."; });
  }

  if (expressionSelect && timelineCanvas && data.timelines_url) {
    expressionSelect.addEventListener("change", loadTimeline);
    loadTimeline();
  }
})();
