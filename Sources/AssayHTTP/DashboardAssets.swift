// The dashboard page and its assets, served by ``AdminServer`` at `/`, `/dashboard.js` and
// `/dashboard.css`. Everything the page needs is here: no CDN, no web font, no framework. The
// script builds the page from the JSON endpoints with DOM calls only (text is always set with
// textContent / createTextNode, never parsed as HTML), and draws the charts as inline SVG.
// The page's Content-Security-Policy (``DashboardResponse``) allows nothing but this server.

enum DashboardAssets {
    static let html = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Assay</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body data-state="loading">
<header>
<h1><a href="#/">Assay</a></h1>
<span class="muted">LLM application quality, per event-time window</span>
</header>
<div id="banner" class="banner" role="alert" hidden></div>
<main id="main"><p class="muted">Loading…</p></main>
<noscript><p>This dashboard needs JavaScript. The same data is at <a href="/api/status">/api/status</a> and <a href="/api/windows">/api/windows</a>.</p></noscript>
</body>
</html>
"""#

    static let stylesheet = #"""
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; --accent: #2563eb; --bad: #b42318; --good: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0; font-size: 20px; }
header h1 a { color: var(--fg); text-decoration: none; }
main { padding: 12px 20px 40px; }
h2 { font-size: 17px; margin: 22px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.warn { color: var(--bad); }
.empty { color: var(--muted); font-style: italic; }
.banner { margin: 10px 20px; padding: 10px 14px; border: 1px solid var(--bad); background: #fff4f2; border-radius: 6px; }
.token-form input { margin: 0 6px; padding: 3px 6px; }
.headline { padding: 8px 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; margin-right: 6px; color: #fff; }
.pill.running { background: var(--good); }
.pill.paused { background: var(--bad); }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; background: #eaeef2; }
.outcome-pass { background: #dafbe1; color: var(--good); }
.outcome-fail { background: #ffebe9; color: var(--bad); }
.outcome-error { background: #ffebe9; color: var(--bad); font-weight: 600; }
.outcome-not_applicable { background: #eaeef2; color: var(--muted); }
.chart-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
.chart-card { margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
.chart-card figcaption { margin-bottom: 4px; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .grid { stroke: #e5e7eb; stroke-width: 1; }
svg.chart .axis { fill: var(--muted); font-size: 11px; }
svg.chart .band { fill: var(--accent); fill-opacity: 0.16; stroke: none; }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg.chart .point { fill: var(--accent); stroke: #fff; stroke-width: 1.5; cursor: pointer; }
svg.chart .point:hover, svg.chart .point:focus { fill: #1e40af; r: 6; outline: none; }
.grid-table { border-collapse: collapse; width: 100%; font-size: 13px; }
.grid-table th, .grid-table td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
.grid-table th { background: var(--panel); font-weight: 600; white-space: nowrap; }
.grid-table td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid-table tr.total td { font-weight: 600; }
.window-cell { white-space: nowrap; background: #fbfcfd; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
@media (max-width: 1000px) { .columns { grid-template-columns: 1fr; } }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 360px; overflow: auto; font-size: 12px; }
.filters { margin: 6px 0; }
.traces .preview { max-width: 520px; overflow-wrap: anywhere; }
.assessments { margin: 0; padding-left: 16px; }
.assessments .scorer { font-weight: 600; }
.rationale { color: #3d444d; }
.detail { overflow-wrap: anywhere; }
.trace-link { font-family: ui-monospace, monospace; font-size: 12px; white-space: nowrap; }
.span-tree { border-left: 2px solid var(--line); padding-left: 8px; }
.span { border: 1px solid var(--line); border-radius: 4px; padding: 4px 8px; margin: 4px 0; }
.span-error { border-color: var(--bad); }
.span-name { font-weight: 600; }
.payload summary { cursor: pointer; color: var(--muted); }
.payload pre { margin: 2px 0 6px; max-height: 240px; }
"""#

    static let script = #"""
// Assay dashboard: reads /api/status, /api/windows, /api/windows/{start} and /api/traces/{id}
// and builds the page with DOM calls only. Every string from the server is set as text
// (textContent, createTextNode, setAttribute on SVG geometry), never parsed as HTML.
"use strict";
(function () {
  var SVG_NS = "http://www.w3.org/2000/svg";
  var TOKEN_KEY = "assay.admin-token";
  var REFRESH_MS = 15000;
  var CHART_WINDOWS = 30;
  var TABLE_WINDOWS = 10;
  var OPEN_SPANS = 40; // traces with at most this many spans show inputs and outputs unfolded
  var refreshTimer = null;
  var main = document.getElementById("main");
  var banner = document.getElementById("banner");

  // ---- DOM helpers ----------------------------------------------------------------------

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined) return;
        if (key === "text") node.textContent = String(value);
        else if (key === "class") node.className = value;
        else if (key === "onclick") node.addEventListener("click", value);
        else if (key === "dataset") Object.keys(value).forEach(function (name) { node.dataset[name] = String(value[name]); });
        else node.setAttribute(key, String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function link(hash, text, cls) { return el("a", { href: hash, text: text, class: cls }); }

  function windowHash(start) { return "#/window/" + encodeURIComponent(start); }
  function traceHash(id) { return "#/trace/" + encodeURIComponent(id); }

  // ---- Formatting -----------------------------------------------------------------------

  function pct(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + "%"; }
  function num(value) { return value === null || value === undefined ? "–" : String(value); }
  function clock(iso) { return typeof iso === "string" && iso.length >= 19 ? iso.slice(11, 19) : String(iso); }
  function day(iso) { return typeof iso === "string" ? iso.slice(0, 10) : ""; }
  function when(iso) { return iso ? String(iso).replace("T", " ").replace("Z", " UTC") : "–"; }
  function ms(value) { return value === null || value === undefined ? "–" : (value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(1) + " ms"); }

  function passCell(summary) {
    if (!summary.scored) return "–";
    return pct(summary.pass_rate) + " (" + pct(summary.wilson_lower) + "–" + pct(summary.wilson_upper) + ")";
  }

  function truncatedBlock(label, value, open) {
    if (!value) return null;
    var note = value.truncated ? " (first " + new TextEncoder().encode(value.text).length + " of " + value.bytes + " bytes)" : "";
    return el("details", { class: "payload", open: open ? "" : null },
      el("summary", { text: label + note }),
      el("pre", { text: value.text + (value.truncated ? " …" : "") }));
  }

  function shortText(value, max) {
    if (!value) return "";
    var text = value.text.length > max ? value.text.slice(0, max) + "…" : value.text;
    return value.truncated && text.slice(-1) !== "…" ? text + "…" : text;
  }

  function badge(outcome) { return el("span", { class: "badge outcome-" + String(outcome).replace(/[^a-z_]/g, ""), text: outcome }); }

  function valueText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(4)));
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // ---- API ------------------------------------------------------------------------------

  function AuthError(message) { this.message = message; }

  function api(path) {
    var headers = { "Accept": "application/json" };
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, { headers: headers, cache: "no-store", credentials: "omit" }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        if (response.status === 401 || response.status === 403) throw new AuthError((body && body.error) || "this server needs the admin token");
        if (!response.ok) throw new Error((body && body.error) || ("HTTP " + response.status));
        return body;
      });
    });
  }

  function showBanner(error) {
    clear(banner);
    banner.hidden = false;
    if (error instanceof AuthError) {
      var input = el("input", { type: "password", id: "token", autocomplete: "off", placeholder: "ASSAY_ADMIN_TOKEN" });
      var form = el("form", { class: "token-form" },
        el("label", { for: "token", text: error.message + " — token: " }), input, el("button", { type: "submit", text: "Use token" }));
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value); else sessionStorage.removeItem(TOKEN_KEY);
        banner.hidden = true;
        route();
      });
      append(banner, form);
    } else {
      append(banner, el("span", { text: "Could not load data: " + error.message }));
    }
    document.body.dataset.state = "error";
  }

  // ---- Router ---------------------------------------------------------------------------

  function route() {
    if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
    var hash = location.hash || "#/";
    var query = "";
    var q = hash.indexOf("?");
    if (q >= 0) { query = hash.slice(q + 1); hash = hash.slice(0, q); }
    var params = new URLSearchParams(query);
    document.body.dataset.state = "loading";
    var view;
    if (hash.indexOf("#/window/") === 0) view = windowView(decodeURIComponent(hash.slice(9)), params);
    else if (hash.indexOf("#/trace/") === 0) view = traceView(decodeURIComponent(hash.slice(8)));
    else view = overview();
    view.then(function () {
      banner.hidden = true;
      document.body.dataset.state = "ready";
    }, showBanner);
  }

  function render(nodes) {
    clear(main);
    append(main, nodes);
  }

  // ---- Overview -------------------------------------------------------------------------

  function overview() {
    return Promise.all([api("/api/status"), api("/api/windows?limit=" + CHART_WINDOWS)]).then(function (results) {
      var status = results[0], windows = results[1].windows.slice().reverse(); // oldest first
      render([
        headline(status),
        el("section", { id: "charts" }, el("h2", { text: "Pass rate per scorer (Wilson 95% band)" }), charts(windows, status)),
        el("div", { class: "columns" },
          el("section", { id: "config" }, el("h2", { text: "Monitor" }), configPanel(status)),
          el("section", { id: "pipeline" }, el("h2", { text: "Pipeline" }), pipelinePanel(status))),
        el("section", { id: "dead-letters" }, el("h2", { text: "Dead letters" }), deadLettersPanel(status.dead_letters)),
        el("section", { id: "windows" }, el("h2", { text: "Recent windows" }),
          el("p", { class: "muted", text: "Click a window for its sampled traces and their assessments." }),
          windowsTable(windows.slice(-TABLE_WINDOWS).reverse(), true)),
      ]);
      refreshTimer = setTimeout(function () { if (document.visibilityState !== "hidden") route(); else refreshTimer = setTimeout(route, REFRESH_MS); }, REFRESH_MS);
    });
  }

  function headline(status) {
    var monitor = status.monitor;
    var items = [];
    if (monitor) {
      items.push(el("span", { class: "pill " + (monitor.config.paused ? "paused" : "running"), text: monitor.config.paused ? "paused" : "running" }));
      items.push(el("strong", { text: monitor.config.name }), " version " + monitor.version);
    } else {
      items.push(el("span", { class: "pill paused", text: status.monitor_error ? "monitor unreadable" : "no monitor" }));
    }
    items.push(" · watermark " + when(status.watermark));
    items.push(" · " + status.windows.scored + " windows scored, " + status.windows.closed + " waiting");
    items.push(" · " + status.unscored_traces + " traces not yet handled");
    items.push(" · outbox backlog " + status.outbox.backlog);
    items.push(" · updated " + clock(status.now) + " UTC");
    return el("p", { class: "headline" }, items);
  }

  function scorerOrder(windows, status) {
    var names = [];
    if (status.monitor) status.monitor.config.scorers.forEach(function (s) { names.push(s.name); });
    windows.forEach(function (w) { w.scorers.forEach(function (s) { if (names.indexOf(s.scorer_name) < 0) names.push(s.scorer_name); }); });
    return names.filter(function (name) { return windows.some(function (w) { return w.scorers.some(function (s) { return s.scorer_name === name; }); }); });
  }

  function charts(windows, status) {
    var names = scorerOrder(windows, status);
    if (!names.length) return el("p", { class: "empty", text: "No window has been scored yet." });
    return el("div", { class: "chart-grid" }, names.map(function (name) { return chart(name, windows); }));
  }

  function chart(name, windows) {
    var W = 440, H = 190, left = 42, right = 12, top = 12, bottom = 30;
    var plotW = W - left - right, plotH = H - top - bottom;
    var n = windows.length;
    function x(i) { return n === 1 ? left + plotW / 2 : left + (i * plotW) / (n - 1); }
    function y(v) { return top + (1 - v) * plotH; }
    var points = windows.map(function (w, i) {
      var s = w.scorers.filter(function (t) { return t.scorer_name === name; })[0];
      return s && s.scored > 0 && s.pass_rate !== null ? { i: i, w: w, s: s } : null;
    });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img" });
    root.dataset.scorer = name;
    var title = svg("title", {});
    title.textContent = "Pass rate of " + name + " per window, with the Wilson 95% interval";
    root.appendChild(title);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }));
      var label = svg("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
      label.textContent = Math.round(v * 100) + "%";
      root.appendChild(label);
    });
    // Runs of consecutive windows with a value: one band and one line each.
    var runs = [], run = [];
    points.forEach(function (p) { if (p) run.push(p); else if (run.length) { runs.push(run); run = []; } });
    if (run.length) runs.push(run);
    runs.forEach(function (r) {
      if (r.length === 1) {
        var p = r[0];
        root.appendChild(svg("rect", { x: x(p.i) - 4, width: 8, y: y(p.s.wilson_upper), height: Math.max(1, y(p.s.wilson_lower) - y(p.s.wilson_upper)), class: "band" }));
        return;
      }
      var upper = r.map(function (p) { return x(p.i) + "," + y(p.s.wilson_upper); });
      var lower = r.slice().reverse().map(function (p) { return x(p.i) + "," + y(p.s.wilson_lower); });
      root.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), class: "band" }));
      root.appendChild(svg("polyline", { points: r.map(function (p) { return x(p.i) + "," + y(p.s.pass_rate); }).join(" "), class: "line" }));
    });
    points.forEach(function (p) {
      if (!p) return;
      var dot = svg("circle", { cx: x(p.i), cy: y(p.s.pass_rate), r: 4, class: "point", tabindex: 0 });
      dot.dataset.scorer = name;
      dot.dataset.window = p.w.window_start;
      dot.dataset.passRate = String(p.s.pass_rate);
      dot.dataset.wilsonLower = String(p.s.wilson_lower);
      dot.dataset.wilsonUpper = String(p.s.wilson_upper);
      dot.dataset.scored = String(p.s.scored);
      var tip = svg("title", {});
      tip.textContent = clock(p.w.window_start) + " UTC: " + pct(p.s.pass_rate) + " of " + p.s.scored + " (" + pct(p.s.wilson_lower) + "–" + pct(p.s.wilson_upper) + ")";
      dot.appendChild(tip);
      var go = function () { location.hash = windowHash(p.w.window_start); };
      dot.addEventListener("click", go);
      dot.addEventListener("keydown", function (event) { if (event.key === "Enter") go(); });
      root.appendChild(dot);
    });
    if (n > 0) {
      var ticks = n === 1 ? [0] : n === 2 ? [0, 1] : [0, Math.floor((n - 1) / 2), n - 1];
      ticks.forEach(function (i) {
        var label = svg("text", { x: x(i), y: H - 10, class: "axis", "text-anchor": n === 1 ? "middle" : i === 0 ? "start" : i === n - 1 ? "end" : "middle" });
        label.textContent = clock(windows[i].window_start);
        root.appendChild(label);
      });
    }
    var latest = points.filter(Boolean).slice(-1)[0];
    return el("figure", { class: "chart-card" },
      el("figcaption", {}, el("strong", { text: name }),
        latest ? " latest " + pct(latest.s.pass_rate) + " of " + latest.s.scored + " scored" : " no scored traces"),
      root);
  }

  var SUMMARY_HEADERS = ["scorer", "eligible", "sampled out", "filtered", "budget", "N/A", "errors", "scored", "passed", "pass rate (Wilson 95%)", "late", "judge p50 / tokens"];

  function summaryCells(s) {
    var judge = s.judge_latency_p50_ms !== null ? ms(s.judge_latency_p50_ms) : "";
    if (s.tokens) judge += (judge ? ", " : "") + s.tokens.total + " tokens";
    var traces = windowHash(s.window_start) + "?scorer=" + encodeURIComponent(s.scorer_name);
    return [
      el("td", {}, link(traces, s.scorer_name, "scorer-link")),
      el("td", { class: "n", text: s.eligible }), el("td", { class: "n", text: s.sampled_out }), el("td", { class: "n", text: s.filtered_out }),
      el("td", { class: "n", text: s.budget_skipped }), el("td", { class: "n", text: s.not_applicable }),
      el("td", { class: "n" + (s.errored ? " warn" : ""), text: s.errored }), el("td", { class: "n", text: s.scored }),
      el("td", { class: "n", text: s.passed }), el("td", { class: "n", text: passCell(s) }), el("td", { class: "n", text: s.late_scored }),
      el("td", { text: judge || "–" }),
    ];
  }

  function windowsTable(windows, withWindowColumn) {
    if (!windows.length) return el("p", { class: "empty", text: "No window has closed yet." });
    var head = el("tr", {}, withWindowColumn ? el("th", { text: "window (UTC)" }) : null, SUMMARY_HEADERS.map(function (h) { return el("th", { text: h }); }));
    var body = el("tbody");
    windows.forEach(function (w) {
      var rows = Math.max(1, w.scorers.length);
      var first = true;
      var windowCell = el("td", { rowspan: rows, class: "window-cell" },
        link(windowHash(w.window_start), day(w.window_start) + " " + clock(w.window_start) + "–" + clock(w.window_end), "window-link"),
        el("div", { class: "muted", text: "config v" + w.config_version + " · " + w.state + " · " + w.traces + " traces · " + w.late_traces + " late" }));
      if (!w.scorers.length) {
        body.appendChild(el("tr", { dataset: { window: w.window_start } }, withWindowColumn ? windowCell : null,
          el("td", { colspan: SUMMARY_HEADERS.length, class: "muted", text: "no summaries yet" })));
        return;
      }
      w.scorers.forEach(function (s) {
        body.appendChild(el("tr", { dataset: { window: w.window_start, scorer: s.scorer_name } },
          first && withWindowColumn ? windowCell : null, summaryCells(s)));
        first = false;
      });
    });
    return el("table", { class: "grid-table" }, el("thead", {}, head), body);
  }

  function configPanel(status) {
    if (status.monitor_error) return el("p", { class: "warn", text: status.monitor_error });
    var m = status.monitor;
    if (!m) return el("p", { class: "empty", text: "No monitor is configured: traces are stored, nothing is scored." });
    var c = m.config;
    var judge = c.judge ? c.judge.kind + (c.judge.model ? " " + c.judge.model : "") : "none";
    var facts = [
      ["name", c.name], ["version", m.version + " (written " + when(m.created_at) + (m.note ? " by " + m.note : "") + ")"],
      ["effective from", m.effective_from ? when(m.effective_from) : "the start of history"],
      ["status", c.paused ? "paused" : "running"], ["window", c.window + " (allowed lateness " + c.allowed_lateness + ")"],
      ["sample rate", c.sample_rate], ["judge", judge], ["destination", "schema " + c.destination.schema],
    ];
    return [
      el("dl", { class: "facts" }, facts.map(function (f) { return [el("dt", { text: f[0] }), el("dd", { text: num(f[1]) })]; })),
      el("table", { class: "grid-table" },
        el("thead", {}, el("tr", {}, ["scorer", "kind", "rate", "filter", "cap"].map(function (h) { return el("th", { text: h }); }))),
        el("tbody", {}, c.scorers.map(function (s) {
          return el("tr", {}, el("td", { text: s.name }), el("td", { text: s.kind }),
            el("td", { class: "n", text: s.sample_rate !== undefined ? s.sample_rate : c.sample_rate }),
            el("td", { text: s.filter || "" }), el("td", { class: "n", text: s.max_per_window !== undefined ? s.max_per_window : "" }));
        }))),
      el("details", {}, el("summary", { text: "monitor document (JSON)" }), el("pre", { text: JSON.stringify(c, null, 2) })),
    ];
  }

  function pipelinePanel(status) {
    var lag = status.consumer_lag;
    var lagNode = lag.known && !lag.partitions.length
      ? el("p", { id: "lag", class: "muted", text: "Consumer lag: this replica has no partitions assigned, or has not fetched from them yet." })
      : lag.known
      ? el("table", { class: "grid-table", id: "lag" },
          el("thead", {}, el("tr", {}, el("th", { text: "partition" }), el("th", { text: "lag (messages)" }))),
          el("tbody", {}, lag.partitions.map(function (p) { return el("tr", {}, el("td", { text: p.partition }), el("td", { class: "n", text: p.lag })); }),
            el("tr", { class: "total" }, el("td", { text: "total" }), el("td", { class: "n", text: lag.total }))))
      : el("p", { id: "lag", class: "muted", text: "Consumer lag: unknown (only a server with a Kafka consumer, assay serve, reports it)." });
    var offsets = {};
    status.committed_offsets.forEach(function (o) { offsets[o.partition] = (offsets[o.partition] ? offsets[o.partition] + ", " : "") + o.next_offset + (status.committed_offsets.length > status.partitions.length ? " (" + o.group + ")" : ""); });
    return [
      el("h3", { text: "Consumer lag" }),
      lag.known ? el("p", { class: "muted", text: "Messages not yet read, on the partitions this replica consumes." }) : null, lagNode,
      el("h3", { text: "Event time on " + status.traces_topic }),
      el("p", { class: "muted", text: "Watermark " + when(status.watermark) + " (partitions idle for " + status.idle_timeout_seconds + " s do not hold it back)." }),
      status.partitions.length
        ? el("table", { class: "grid-table" },
            el("thead", {}, el("tr", {}, ["partition", "newest event time", "advanced at", "next offset", ""].map(function (h) { return el("th", { text: h }); }))),
            el("tbody", {}, status.partitions.map(function (p) {
              return el("tr", {}, el("td", { class: "n", text: p.partition }), el("td", { text: when(p.max_event_time) }),
                el("td", { text: clock(p.advanced_at) }), el("td", { class: "n", text: offsets[p.partition] !== undefined ? offsets[p.partition] : "–" }),
                el("td", { class: "muted", text: p.idle ? "idle" : "" }));
            })))
        : el("p", { class: "empty", text: "No partition has been read yet." }),
      el("h3", { text: "Outbox" }),
      el("p", { text: status.outbox.backlog + " messages waiting for the broker" + (status.outbox.oldest_unpublished_at ? ", oldest from " + when(status.outbox.oldest_unpublished_at) : "") }),
    ];
  }

  function deadLettersPanel(letters) {
    if (!letters.total) return el("p", { class: "empty", id: "dead-letter-count", text: "No dead letters." });
    return [
      el("p", { id: "dead-letter-count" }, el("strong", { text: letters.total }), " messages could not be stored: ",
        letters.by_reason.map(function (r, i) { return [i ? ", " : "", el("span", { class: "badge", text: r.reason + " " + r.count })]; })),
      el("table", { class: "grid-table" },
        el("thead", {}, el("tr", {}, ["when", "where", "reason", "detail"].map(function (h) { return el("th", { text: h }); }))),
        el("tbody", {}, letters.latest.map(function (d) {
          return el("tr", {}, el("td", { text: when(d.created_at) }),
            el("td", { text: d.topic + "/" + d.partition + "@" + d.offset + (d.gap_end_offset !== null ? "–" + d.gap_end_offset : "") }),
            el("td", { text: d.reason }), el("td", { class: "detail", text: shortText(d.detail, 300) }));
        }))),
    ];
  }

  // ---- One window -----------------------------------------------------------------------

  function windowView(start, params) {
    var query = new URLSearchParams();
    ["scorer", "outcome", "offset"].forEach(function (k) { if (params.get(k)) query.set(k, params.get(k)); });
    var qs = query.toString();
    return api("/api/windows/" + encodeURIComponent(start) + (qs ? "?" + qs : "")).then(function (detail) {
      var w = detail.window;
      var scorer = el("select", { name: "scorer" }, el("option", { value: "", text: "all scorers" }),
        w.scorers.map(function (s) { return el("option", { value: s.scorer_name, text: s.scorer_name }); }));
      var outcome = el("select", { name: "outcome" }, el("option", { value: "", text: "any outcome" }),
        ["pass", "fail", "value", "not_applicable", "error"].map(function (o) { return el("option", { value: o, text: o }); }));
      scorer.value = detail.filter.scorer || "";
      outcome.value = detail.filter.outcome || "";
      var form = el("form", { class: "filters" }, "Show traces assessed by ", scorer, " with ", outcome, " ", el("button", { type: "submit", text: "Filter" }));
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var next = new URLSearchParams();
        if (scorer.value) next.set("scorer", scorer.value);
        if (outcome.value) next.set("outcome", outcome.value);
        var text = next.toString();
        location.hash = windowHash(w.window_start) + (text ? "?" + text : "");
      });
      var from = detail.filter.offset, to = from + detail.traces.length;
      var pager = el("p", { class: "muted" }, "Traces " + (detail.traces.length ? from + 1 : 0) + "–" + to + " of " + detail.matching_traces + " sampled");
      function page(offset, label) {
        var next = new URLSearchParams(query.toString());
        next.set("offset", String(offset));
        return [" ", link(windowHash(w.window_start) + "?" + next.toString(), label)];
      }
      if (from > 0) append(pager, page(Math.max(0, from - detail.filter.limit), "← previous"));
      if (to < detail.matching_traces) append(pager, page(to, "next →"));
      render([
        el("p", {}, link("#/", "← overview")),
        el("h2", { text: "Window " + day(w.window_start) + " " + clock(w.window_start) + " – " + clock(w.window_end) + " UTC" }),
        el("p", { class: "muted", text: "config v" + w.config_version + " · " + w.state + " · closed " + when(w.closed_at) + " · " + w.traces + " traces · " + w.late_traces + " late" }),
        windowsTable([w], false),
        el("h3", { text: "Sampled traces" }), form, pager,
        detail.traces.length ? el("table", { class: "grid-table traces", id: "sampled-traces" },
          el("thead", {}, el("tr", {}, ["trace", "request / response", "assessments"].map(function (h) { return el("th", { text: h }); }))),
          el("tbody", {}, detail.traces.map(sampledRow))) : el("p", { class: "empty", text: "No sampled trace matches." }),
      ]);
    });
  }

  function sampledRow(t) {
    return el("tr", { dataset: { trace: t.trace_id } },
      el("td", {}, link(traceHash(t.trace_id), t.trace_id, "trace-link"),
        el("div", { class: "muted", text: clock(t.request_time) + " · " + t.state + (t.duration_ms !== null ? " · " + t.duration_ms + " ms" : "") + (t.late ? " · late" : "") })),
      el("td", { class: "preview" }, el("div", { text: "→ " + shortText(t.request_preview, 160) }), el("div", { class: "muted", text: "← " + shortText(t.response_preview, 160) })),
      el("td", {}, el("ul", { class: "assessments" }, t.assessments.map(assessmentItem))));
  }

  function assessmentItem(a) {
    var value = valueText(a.value);
    return el("li", {}, el("span", { class: "scorer", text: a.scorer_name }), " ", badge(a.outcome),
      value && a.outcome !== "pass" && a.outcome !== "fail" ? " " + value : "",
      a.rationale ? el("span", { class: "rationale", text: " " + shortText(a.rationale, 400) }) : "",
      a.error_message ? el("span", { class: "warn", text: " " + (a.error_code || "error") + ": " + shortText(a.error_message, 300) }) : "");
  }

  // ---- One trace ------------------------------------------------------------------------

  function traceView(id) {
    return api("/api/traces/" + encodeURIComponent(id)).then(function (t) {
      var facts = [
        ["trace id", t.trace_id], ["state", t.state], ["request time", when(t.request_time)],
        ["duration", t.duration_ms !== null ? t.duration_ms + " ms" : "–"], ["format", t.format],
        ["source", t.source.topic + "/" + t.source.partition + "@" + t.source.offset + (t.deliveries > 1 ? " (" + t.deliveries + " deliveries)" : "")],
        ["stored", when(t.ingested_at) + (t.late ? " (late)" : "")], ["scored", when(t.scored_at)],
        ["spans", t.spans.length + " shown of " + t.spans_stored + " stored"],
      ];
      Object.keys(t.tags).forEach(function (k) { facts.push(["tag " + k, t.tags[k]]); });
      var windows = {};
      t.assessments.forEach(function (a) { windows[a.window_start] = true; });
      render([
        el("p", {}, link("#/", "← overview"), Object.keys(windows).map(function (s) { return [" · ", link(windowHash(s), "window " + clock(s))]; })),
        el("h2", { text: "Trace " + t.trace_id }),
        el("dl", { class: "facts" }, facts.map(function (f) { return [el("dt", { text: f[0] }), el("dd", { text: num(f[1]) })]; })),
        truncatedBlock("request preview", t.request_preview, true), truncatedBlock("response preview", t.response_preview, true),
        el("h3", { text: "Assessments" }),
        t.assessments.length ? el("table", { class: "grid-table", id: "trace-assessments" },
          el("thead", {}, el("tr", {}, ["window", "scorer", "span", "outcome", "value", "rationale", "source"].map(function (h) { return el("th", { text: h }); }))),
          el("tbody", {}, t.assessments.map(function (a) {
            var source = a.source_type + (a.source_id ? " " + a.source_id : "") + (a.judge_latency_ms !== null ? " · " + ms(a.judge_latency_ms) : "");
            return el("tr", {}, el("td", { text: clock(a.window_start) }), el("td", { text: a.scorer_name }), el("td", { text: a.span_id || "" }),
              el("td", {}, badge(a.outcome), a.late ? " late" : ""), el("td", { text: valueText(a.value) }),
              el("td", { class: "rationale" }, a.rationale ? a.rationale.text + (a.rationale.truncated ? " …" : "") : "",
                a.error_message ? el("div", { class: "warn", text: (a.error_code || "error") + ": " + a.error_message.text }) : null),
              el("td", { class: "muted", text: source }));
          }))) : el("p", { class: "empty", text: "No assessments: the trace was not sampled by any scorer." }),
        el("h3", { text: "Spans" }),
        t.spans_stored > t.spans.length ? el("p", { class: "muted", text: "Showing the first " + t.spans.length + " of " + t.spans_stored + " spans." }) : null,
        el("div", { class: "span-tree", id: "span-tree" }, t.spans.map(function (s) { return spanNode(s, t.spans.length <= OPEN_SPANS); })),
      ]);
    });
  }

  function spanNode(s, open) {
    var node = el("div", { class: "span" + (s.status_code === "ERROR" ? " span-error" : ""), dataset: { depth: s.depth, span: s.span_id } },
      el("div", { class: "span-head" },
        el("span", { class: "span-name", text: s.name }), " ",
        s.span_type ? el("span", { class: "badge", text: s.span_type }) : null, " ",
        el("span", { class: "muted", text: (s.duration_ms !== null ? ms(s.duration_ms) : "unfinished") + " · " + s.status_code + " · " + s.span_id })),
      s.status_message ? el("div", { class: "warn", text: s.status_message.text }) : null,
      s.events.length ? el("div", { class: "muted", text: "events: " + s.events.join(", ") }) : null,
      truncatedBlock("inputs", s.inputs, open), truncatedBlock("outputs", s.outputs, open), truncatedBlock("attributes", s.attributes, false));
    node.style.marginLeft = Math.min(s.depth, 24) * 18 + "px";
    return node;
  }

  window.addEventListener("hashchange", route);
  route();
})();
"""#
}
