// Sorting and filtering for the static leaderboard. No dependencies.
// Hooks (used by the browser test, handy for links): ?sort=<column key>&dir=asc|desc sorts on load;
// ?click=<column key> (repeatable) clicks that header like a user would; ?fs=<first stage> and ?size=<model size>
// preset the filters.
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

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable th[data-sort]"), function (th) {
      th.addEventListener("click", onHeaderClick);
      th.setAttribute("tabindex", "0");
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") onHeaderClick(e); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("select[data-filter]"), function (select) {
      select.addEventListener("change", applyFilters);
    });

    var params = new URLSearchParams(window.location.search);
    var fs = params.get("fs"), size = params.get("size");
    var fsSelect = document.getElementById("filter-first-stage");
    var sizeSelect = document.getElementById("filter-size");
    if (fs !== null && fsSelect) fsSelect.value = fs;
    if (size !== null && sizeSelect) sizeSelect.value = size;
    if (fs !== null || size !== null) applyFilters();
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
