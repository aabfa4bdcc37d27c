// gnomon rank: table sorting and filtering, benchmark columns, charts, the comparison picker and
// (in the static site) the in-page sample search. Works the same served or opened from files.
"use strict";

function drawCharts() {
  if (typeof Plotly === "undefined") return;
  document.querySelectorAll("div.chart[data-spec]").forEach((el) => {
    const spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
    Plotly.newPlot(el, spec.data, spec.layout, { displaylogo: false, responsive: true });
  });
}

function cellValue(row, col, numeric) {
  const raw = row.cells[col].dataset.value;
  if (!numeric) return raw;
  return raw === "" ? null : Number(raw);
}

function sortTable(table, th) {
  const col = Number(th.dataset.col);
  const numeric = th.classList.contains("num");
  const current = th.getAttribute("aria-sort");
  let dir = current === "descending" ? "ascending" : "descending";
  if (current === "none" && !numeric) dir = "ascending";
  if (current === "none" && col === 0) dir = "ascending";
  // a lower-is-better column (perplexity, TER) puts its best first: ascending
  if (current === "none" && th.dataset.lower === "1") dir = "ascending";
  table.querySelectorAll("th.sortable").forEach((h) => h.setAttribute("aria-sort", "none"));
  th.setAttribute("aria-sort", dir);
  const sign = dir === "ascending" ? 1 : -1;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, col, numeric);
    const y = cellValue(b, col, numeric);
    if (x === null && y === null) return 0;
    if (x === null) return 1; // a missing score sorts last either way: never read as zero
    if (y === null) return -1;
    if (x < y) return -sign;
    if (x > y) return sign;
    return 0;
  });
  rows.forEach((r) => body.appendChild(r));
}

function setupBoard() {
  const table = document.getElementById("board");
  if (!table) return;
  table.querySelectorAll("th.sortable").forEach((th) => {
    th.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      sortTable(table, th);
    });
  });
  const filter = document.getElementById("model-filter");
  const complete = document.getElementById("complete-only");
  const empty = document.getElementById("filter-empty");
  const apply = () => {
    const text = filter.value.trim().toLowerCase();
    let shown = 0;
    Array.from(table.tBodies[0].rows).forEach((row) => {
      const ok = row.dataset.name.includes(text) && (!complete.checked || row.dataset.complete === "1");
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    empty.hidden = shown > 0;
  };
  filter.addEventListener("input", apply);
  complete.addEventListener("change", apply);
  const toggle = document.getElementById("toggle-benches");
  toggle.addEventListener("click", () => {
    const show = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(show));
    toggle.textContent = show ? "Hide benchmarks" : "Show benchmarks";
    table.classList.toggle("show-benches", show);
  });
}

function setupComparePicker() {
  const form = document.querySelector("form.compare-picker");
  if (!form) return;
  const pairsEl = document.getElementById("compare-pairs");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let a = form.elements.a.value;
    let b = form.elements.b.value;
    if (a === b) {
      alert("Pick two different models to compare.");
      return;
    }
    if (pairsEl) {
      const pairs = JSON.parse(pairsEl.textContent);
      const has = (x, y) => pairs.some((p) => p[0] === x && p[1] === y);
      if (!has(a, b)) {
        if (has(b, a)) {
          [a, b] = [b, a];
        } else {
          alert("This static site holds comparisons among the top models only; gnomon rank serve compares any two.");
          return;
        }
      }
    }
    const url = form.dataset.pattern.replace("{a}", encodeURIComponent(a)).replace("{b}", encodeURIComponent(b));
    window.location.href = url;
  });
}

function setupStaticSearch() {
  if (document.body.dataset.static !== "1") return;
  const form = document.querySelector("form.search");
  const table = document.getElementById("samples");
  if (!form || !table) return;
  const input = form.elements.q;
  const empty = document.getElementById("search-empty");
  const apply = () => {
    const text = input.value.trim().toLowerCase();
    let shown = 0;
    Array.from(table.tBodies[0].rows).forEach((row) => {
      const ok = row.textContent.toLowerCase().includes(text);
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    empty.hidden = shown > 0;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  input.addEventListener("input", apply);
}

document.addEventListener("DOMContentLoaded", () => {
  setupBoard();
  setupComparePicker();
  setupStaticSearch();
  drawCharts();
});
