// What a reader sees of a page's layout, measured in the browser (run by test_book_pages.py).
// Returns plain data; the Python test decides what fails.
() => {
  const vw = window.innerWidth;
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  };
  const out = {
    vw,
    scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    charts: [], cellSpills: [], visibleCode: 0, printedTables: [], controls: [],
    markers: document.documentElement.outerHTML.includes("NBVAL_"),
    theme: document.documentElement.dataset.theme || "",
    themeSwitches: [...document.querySelectorAll(".theme-switch-button")].filter(visible).length,
  };
  // charts: the drawn width against the shown width, and the smallest text as rendered on screen
  for (const c of document.querySelectorAll(".tc-chart")) {
    const svg = c.querySelector("svg");
    if (!svg || !visible(svg)) continue;
    const drawnW = svg.width.baseVal.value;
    const shown = svg.getBoundingClientRect();
    let minFont = Infinity, minText = "";
    for (const t of svg.querySelectorAll("text")) {
      if (!t.textContent.trim() || !visible(t)) continue;
      const m = t.getScreenCTM();  // includes any CSS scaling of the SVG
      const k = m ? Math.sqrt(Math.abs(m.a * m.d - m.b * m.c)) : 1;
      const size = parseFloat(t.getAttribute("font-size") || getComputedStyle(t).fontSize) * k;
      if (size < minFont) { minFont = size; minText = t.textContent.trim().slice(0, 40); }
    }
    const box = c.getBoundingClientRect();
    // how far the views were narrowed: each width signal against its designed value in the layout drawn
    let viewFactor = 1;
    const view = (window.tokenbookViews || {})[c.id], node = document.getElementById(c.getAttribute("data-spec-id") || "");
    if (view && node) {
      const block = JSON.parse(node.textContent);
      const layout = (window.tokenbookLayouts || {})[c.id] === "narrow" ? block.narrow : block.wide;
      for (const s of (layout && layout.signals) || []) {
        if (/(^|_)width$/.test(s.name) && typeof s.value === "number" && !s.update && s.value > 0) {
          viewFactor = Math.min(viewFactor, view.signal(s.name) / s.value);
        }
      }
    }
    out.charts.push({
      id: c.id, scale: drawnW ? shown.width / drawnW : 1, minFont, minText,
      drawnW, boxW: box.width, right: shown.right, boxRight: box.right, viewFactor,
    });
  }
  // table cells: what a cell holds must stay inside its own box, and no two cells of a row overlap
  for (const table of document.querySelectorAll("main table")) {
    if (!visible(table)) continue;
    const name = (table.className || "table").split(" ")[0];
    for (const row of table.rows) {
      const cells = [...row.cells].filter(visible);
      const rects = cells.map((td) => td.getBoundingClientRect());
      for (let i = 0; i < cells.length; i++) {
        const range = document.createRange();
        range.selectNodeContents(cells[i]);
        let right = -Infinity, left = Infinity;
        for (const r of range.getClientRects()) {
          if (r.width > 0) { right = Math.max(right, r.right); left = Math.min(left, r.left); }
        }
        const spill = Math.max(right - rects[i].right, rects[i].left - left);
        if (spill > 1.5) {
          out.cellSpills.push(`${name} row ${row.rowIndex}: "${cells[i].textContent.trim().slice(0, 30)}" runs ${Math.round(spill)} px out of its cell`);
        }
        for (let j = i + 1; j < cells.length; j++) {
          const a = rects[i], b = rects[j];
          const ox = Math.min(a.right, b.right) - Math.max(a.left, b.left);
          const oy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (ox > 1.5 && oy > 1.5) out.cellSpills.push(`${name} row ${row.rowIndex}: cells ${i} and ${j} overlap`);
        }
      }
    }
  }
  // figure captions, credits and download lines: each block must fit the figure's width (a wider one is cut
  // off by the output's own scroller, which the page-level sideways-scroll check cannot see)
  for (const fig of document.querySelectorAll(".tc-figure")) {
    if (!visible(fig)) continue;
    const box = fig.getBoundingClientRect();
    for (const el of fig.querySelectorAll("figcaption > *, .tc-downloads, .tc-sources")) {
      if (!visible(el)) continue;
      const r = el.getBoundingClientRect();
      const spill = Math.max(r.right - box.right, box.left - r.left);
      if (spill > 1.5) out.cellSpills.push(`${fig.id || "figure"}: ${el.tagName.toLowerCase()}.${el.className || ""} "${el.textContent.trim().slice(0, 30)}" runs ${Math.round(spill)} px out of the figure`);
    }
  }
  // tables shown as cards on a phone (a long text column, tokenlib.book.tables): nothing scrolls sideways
  if (vw <= 600) {
    for (const t of document.querySelectorAll("table.tc-cards")) {
      if (!visible(t)) continue;
      const box = t.closest(".output") || t.parentElement;
      if (box.scrollWidth > box.clientWidth + 1 || getComputedStyle(t).display !== "block") {
        out.cellSpills.push(`cards table "${(t.caption ? t.caption.textContent : t.textContent).trim().slice(0, 30)}" is not laid out as cards (${box.scrollWidth} px wide in a ${box.clientWidth} px box)`);
      }
    }
  }
  for (const el of document.querySelectorAll(".cell_input")) if (visible(el)) out.visibleCode++;
  // printed tables: stdout with two or more lines of space-aligned columns
  for (const el of document.querySelectorAll(".cell_output .output.stream, .cell_output pre")) {
    if (!visible(el)) continue;
    const lines = el.textContent.split("\n").filter((l) => l.trim());
    if (lines.filter((l) => /\S {2,}\S/.test(l.trim())).length >= 2) out.printedTables.push(lines[0].trim().slice(0, 60));
  }
  // controls of interactive charts and of the calculator (and their "Copy link" buttons): a touch target
  // of at least 24 x 24 CSS px, inside the viewport
  for (const el of document.querySelectorAll(".tc-chart input, .tc-chart select, .tc-calc input, .tc-calc select, .tc-state button")) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    let [l, t, rt, b] = [r.left, r.top, r.right, r.bottom];
    const label = el.id ? document.querySelector(`label[for="${el.id}"]`) : el.closest("label");
    if (label && (el.type === "radio" || el.type === "checkbox")) {  // the label is part of the target
      const q = label.getBoundingClientRect();
      [l, t, rt, b] = [Math.min(l, q.left), Math.min(t, q.top), Math.max(rt, q.right), Math.max(b, q.bottom)];
    }
    out.controls.push({name: `${el.name || el.type}${el.type === "radio" ? "=" + el.value : ""}`, w: rt - l, h: b - t, right: rt});
  }
  return out;
}
