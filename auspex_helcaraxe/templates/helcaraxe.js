// Sortable and filterable tables, no dependencies. A <th> click sorts its table's body by that
// column (numbers numerically, by data-sort when given); <input data-filter="TABLE_ID"> hides rows
// whose text does not contain what is typed.
(function () {
  function key(cell) {
    var t = cell.getAttribute("data-sort");
    if (t === null) t = cell.textContent.trim();
    if (t === "" || t === "\u2013" || t === "-") return [2, ""];  // empty: last either way
    var n = parseFloat(t);
    return (t !== "" && !isNaN(n) && /^[-+]?[\d.]/.test(t)) ? [0, n] : [1, t.toLowerCase()];
  }
  function cmp(a, b) {
    if (a[0] !== b[0]) return a[0] - b[0];
    return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var a = key(r.cells[col]), b = key(s.cells[col]);
          if (a[0] === 2 || b[0] === 2) return a[0] === b[0] ? 0 : a[0] === 2 ? 1 : -1;
          return asc ? cmp(a, b) : -cmp(a, b);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var count = document.getElementById(input.getAttribute("data-filter") + "-count");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase(), shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var hit = !q || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.hidden = !hit;
        if (hit) shown++;
      });
      if (count) count.textContent = shown;
    });
  });
})();
