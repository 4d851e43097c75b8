// Sorting and filtering for the static leaderboard. No dependencies.
// URL state (shareable links): ?sort=<column key>&dir=asc|desc sorts on load; ?click=<column key> (repeatable) clicks
// that header like a user would; ?fs, ?family, ?size, ?gpu, ?kind, ?status, ?validated preset the filters;
// ?metric=R@100 picks the metric; ?subsets=1|0 shows or hides the per-subset columns. Changing a control updates
// the URL.
(function () {
  "use strict";

  function cellValue(row, index, type) {
    var cell = row.cells[index];
    if (!cell) return type === "num" ? null : "";
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
    if (type === "num") {
      var v = parseFloat(raw);
      return isNaN(v) ? null : v;
    }
    return raw.trim().toLowerCase();
  }

  function sortTable(table, th, direction) {
    var headers = Array.prototype.slice.call(th.parentNode.children);
    var index = headers.indexOf(th);
    var type = th.getAttribute("data-type") || "text";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = direction === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type), y = cellValue(b, index, type);
      if (x === null && y === null) return 0;
      if (x === null || x === "") return 1;  // empty cells always last
      if (y === null || y === "") return -1;
      return x < y ? -sign : x > y ? sign : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
    table.setAttribute("data-sorted-by", th.getAttribute("data-sort") + ":" + direction);
  }

  function onHeaderClick(event) {
    var th = event.currentTarget;
    var table = th.closest("table");
    var current = th.getAttribute("aria-sort");
    var type = th.getAttribute("data-type") || "text";
    var direction = current ? (current === "descending" ? "ascending" : "descending")
                            : (type === "num" ? "descending" : "ascending");
    sortTable(table, th, direction);
  }

  function applyFilters() {
    var selects = document.querySelectorAll("select[data-filter]");
    var table = document.getElementById("board");
    if (!table) return;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var visible = true;
      Array.prototype.forEach.call(selects, function (select) {
        var want = select.value;
        if (want && row.getAttribute("data-" + select.getAttribute("data-filter")) !== want) visible = false;
      });
      row.hidden = !visible;
    });
  }

  // The controls' state lives in the URL (?fs=…&family=…&metric=…&subsets=1), so a filtered view can be shared.
  function saveState() {
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(document.querySelectorAll("#controls select[data-param]"), function (select) {
      var name = select.getAttribute("data-param");
      var isDefault = select.id === "metric" ? select.selectedIndex === 0 : !select.value;
      if (isDefault) params.delete(name); else params.set(name, select.value);
    });
    var table = document.getElementById("board");
    if (table && table.classList.contains("show-subsets")) params.set("subsets", "1"); else params.delete("subsets");
    var query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : "") + window.location.hash);
  }

  function fmt(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(2); }

  function applyMetric() {
    var select = document.getElementById("metric");
    var table = document.getElementById("board");
    if (!select || !table) return;
    var metric = select.value;
    Array.prototype.forEach.call(table.querySelectorAll("td[data-metrics]"), function (cell) {
      var values = JSON.parse(cell.getAttribute("data-metrics"));
      var v = values[metric];
      cell.setAttribute("data-value", v === null || v === undefined ? "" : String(v));
      var shown = cell.querySelector(".v");
      if (shown) shown.textContent = fmt(v);
      var ci = cell.querySelector(".ci");
      if (ci) ci.hidden = metric !== select.options[0].value;  // intervals are computed on the primary metric
    });
    var label = document.getElementById("metric-label");
    if (label) label.textContent = metric;
  }

  function toggleSubsets(on) {
    var table = document.getElementById("board");
    var button = document.getElementById("toggle-subsets");
    if (!table) return;
    var show = on === undefined ? !table.classList.contains("show-subsets") : on;
    table.classList.toggle("show-subsets", show);
    table.classList.toggle("hide-subsets", !show);
    if (button) button.setAttribute("aria-pressed", show ? "true" : "false");
  }

  // Traces are loaded when a reader opens "Model reasoning" (one small script per query) and rendered as text.
  window.harnessTraces = function (data) {
    var box = document.querySelector("details.traces[data-anchor='" + CSS.escape(data.anchor) + "'] .calls");
    if (!box) return;
    box.textContent = "";
    data.calls.forEach(function (call) {
      var wrap = document.createElement("div");
      wrap.className = "call";
      var head = document.createElement("div");
      head.className = "call-head";
      head.textContent = call.label + " · " + (call.output_tokens || 0) + " output tokens · " +
        Number(call.seconds || 0).toFixed(2) + " s" + (call.finish_reason ? " · " + call.finish_reason : "");
      var pre = document.createElement("pre");
      pre.className = "reasoning";
      pre.textContent = call.response + (call.cut ? "\n[… cut at " + call.response.length + " characters]" : "");
      wrap.appendChild(head);
      wrap.appendChild(pre);
      box.appendChild(wrap);
    });
  };

  function loadTraces(details) {
    if (!details.open || details.getAttribute("data-loaded")) return;
    details.setAttribute("data-loaded", "1");
    var script = document.createElement("script");
    script.src = details.getAttribute("data-src");
    script.onerror = function () {
      details.querySelector(".calls").textContent = "The traces file " + script.src + " could not be loaded.";
    };
    document.head.appendChild(script);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable th[data-sort]"), function (th) {
      th.addEventListener("click", onHeaderClick);
      th.setAttribute("tabindex", "0");
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") onHeaderClick(e); });
    });
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(document.querySelectorAll("#controls select[data-param]"), function (select) {
      var value = params.get(select.getAttribute("data-param"));
      if (value !== null) select.value = value;
      select.addEventListener("change", function () {
        if (select.id === "metric") applyMetric(); else applyFilters();
        saveState();
      });
    });
    var button = document.getElementById("toggle-subsets");
    if (button) {
      var wide = window.matchMedia("(min-width: 1400px)").matches;
      toggleSubsets(params.get("subsets") === "1" || (params.get("subsets") !== "0" && wide));
      button.addEventListener("click", function () { toggleSubsets(); saveState(); });
    }
    if (params.get("metric")) applyMetric();
    applyFilters();
    Array.prototype.forEach.call(document.querySelectorAll("details.traces[data-src]"), function (details) {
      details.addEventListener("toggle", function () { loadTraces(details); });
      loadTraces(details);
    });
    var key = params.get("sort");
    if (key) {
      var th = document.querySelector("table.sortable th[data-sort='" + CSS.escape(key) + "']");
      if (th) sortTable(th.closest("table"), th, params.get("dir") === "asc" ? "ascending" : "descending");
    }
    params.getAll("click").forEach(function (name) {
      var header = document.querySelector("table.sortable th[data-sort='" + CSS.escape(name) + "']");
      if (header) header.click();
    });
  });
})();
