// Draws every figure of the page with the book's own Vega bundle (window.vegaEmbed, from _static).
// Each figure block carries its spec in a <script type="application/json"> next to its container.
//
// Charts are drawn for the width they are shown at: a chart keeps the width it was designed at when
// its box has room, and otherwise its views are narrowed (the width signals of the compiled spec,
// re-run, not re-parsed) until the whole chart, axes and legends included, fits the box. Text keeps
// its size; nothing is scaled down. On a resize (rotation, a wider window) the fit is redone.
(function () {
  "use strict";
  window.tokenbookViews = window.tokenbookViews || {};
  window.tokenbookLayouts = window.tokenbookLayouts || {};  // which layout each chart was drawn in
  var WIDTH_SIGNAL = /(^|_)width$/;
  var MIN_FACTOR = 0.12;

  function widthSignals(spec) {
    // the top-level width and every constant view width (facets: child_width; concats: concat_N_width)
    var out = [];
    if (typeof spec.width === "number") out.push({ name: "width", value: spec.width });
    (spec.signals || []).forEach(function (s) {
      if (WIDTH_SIGNAL.test(s.name) && typeof s.value === "number" && !s.update && !s.on) {
        out.push({ name: s.name, value: s.value });
      }
    });
    return out;
  }

  function drawnWidth(el) {
    var svg = el.querySelector("svg");
    return svg ? svg.width.baseVal.value : 0;
  }

  function applyFactor(view, signals, k) {
    signals.forEach(function (s) {
      view.signal(s.name, Math.max(20, Math.floor(s.value * k)));
    });
    return view.runAsync();
  }

  // Narrow the chart until it fits ``avail`` px. The drawn width is close to linear in the factor
  // (views + fixed axes/legends), so two measurements give the factor; a few steps absorb the rest.
  function fit(el, view, signals) {
    var avail = Math.floor(el.clientWidth);
    return applyFactor(view, signals, 1).then(function () {
      var w1 = drawnWidth(el);
      if (!signals.length || w1 <= avail) return null;
      return applyFactor(view, signals, 0.5).then(function () {
        var wHalf = drawnWidth(el);
        var slope = (w1 - wHalf) / 0.5;
        var k = slope > 0 ? (avail - (w1 - slope)) / slope : 0.5;
        k = Math.min(1, Math.max(MIN_FACTOR, k));
        var tries = 0;
        function step() {
          return applyFactor(view, signals, k).then(function () {
            if (drawnWidth(el) <= avail || k <= MIN_FACTOR || tries++ > 14) return null;
            k = Math.max(MIN_FACTOR, k * Math.min(0.9, avail / drawnWidth(el)));
            return step();
          });
        }
        return step();
      });
    });
  }

  // A narrow layout of a Vega-Lite spec, for a box narrower than the chart's design: facets and
  // side-by-side views stacked, legends in one column, long axis and legend titles on several lines,
  // long labels limited. Text keeps its size.
  var CHANNELS = ["x", "y", "x2", "y2", "color", "fill", "stroke", "size", "shape", "strokeDash", "opacity"];
  function wrapText(text, maxChars) {
    if (typeof text !== "string" || text.length <= maxChars) return text;
    var lines = [], line = "";
    text.split(" ").forEach(function (word) {
      if (line && (line + " " + word).length > maxChars) { lines.push(line); line = word; }
      else { line = line ? line + " " + word : word; }
    });
    if (line) lines.push(line);
    return lines;
  }
  function narrowSpec(spec, avail) {
    var maxChars = Math.max(16, Math.floor((avail - 24) / 6.8));
    var labelLimit = Math.floor(avail * 0.5), labelChars = Math.floor(labelLimit / 7);
    var xChars = Math.max(14, Math.floor(avail * 0.45 / 6.8)), yChars = 40;
    function walk(node) {
      if (Array.isArray(node)) { node.forEach(walk); return; }
      if (!node || typeof node !== "object") return;
      if (node.facet && node.facet.column && !node.facet.row) { node.facet.row = node.facet.column; delete node.facet.column; }
      if (node.encoding && node.encoding.column && !node.encoding.row) {
        node.encoding.row = node.encoding.column; delete node.encoding.column;
      }
      [node.facet, node.encoding].forEach(function (f) {  // long facet headers on two or more lines
        var row = f && f.row;
        if (row && typeof row === "object") {
          row.header = Object.assign({}, row.header);
          if (!row.header.labelExpr) row.header.labelExpr = "split(datum.label, ', ')";
        }
      });
      if (node.hconcat) { node.vconcat = node.hconcat; delete node.hconcat; }
      if ((node.facet || node.concat) && typeof node.columns === "number") node.columns = 1;
      if (node.encoding) {
        CHANNELS.forEach(function (ch) {
          var def = node.encoding[ch];
          if (!def || typeof def !== "object") return;
          // an x title is centred under the plot, which is narrow now: lines of about half the box
          var chars = ch === "x" || ch === "x2" ? xChars : ch === "y" || ch === "y2" ? yChars : maxChars;
          if (typeof def.title === "string") def.title = wrapText(def.title, chars);
          if (def.legend && typeof def.legend === "object") {
            if (def.legend.columns) def.legend.columns = 1;
            def.legend.labelLimit = Math.min(def.legend.labelLimit || 1e9, avail - 40);
            if (typeof def.legend.title === "string") def.legend.title = wrapText(def.legend.title, maxChars);
          }
          if ((ch === "y" || ch === "x") && (def.type === "nominal" || def.type === "ordinal") && def.axis !== null) {
            def.axis = Object.assign({}, def.axis);  // long category labels: a line per comma-separated part
            if (!def.axis.labelExpr) {
              def.axis.labelExpr = "length(datum.label) > " + labelChars + " ? split(datum.label, ', ') : datum.label";
              if (ch === "y") tallerRows = true;
            }
          }
          if (def.axis && typeof def.axis === "object") {
            if (typeof def.axis.title === "string") def.axis.title = wrapText(def.axis.title, chars);
            def.axis.labelLimit = Math.min(def.axis.labelLimit || 1e9, labelLimit);
          }
        });
      }
      Object.keys(node).forEach(function (k) { if (k !== "data" && k !== "datasets") walk(node[k]); });
    }
    var out = JSON.parse(JSON.stringify(spec)), tallerRows = false;
    walk(out);
    if (tallerRows) {  // rows whose labels now take two lines get the room for them
      [out, out.spec].forEach(function (v) { if (v && typeof v.height === "number") v.height = Math.round(v.height * 1.6); });
    }
    var cfg = out.config = out.config || {};
    // one column per legend, and several legends stacked, not side by side
    cfg.legend = Object.assign({}, cfg.legend, {
      columns: 1, labelLimit: avail - 40, layout: { bottom: { anchor: "start", direction: "vertical", margin: 6 } },
    });
    cfg.axis = Object.assign({}, cfg.axis, { labelLimit: labelLimit });
    cfg.header = Object.assign({}, cfg.header, { labelLimit: avail - 20 });
    return out;
  }

  window.tokenbookNarrowSpec = narrowSpec;

  // Vega can reserve layout room no mark uses (facet headers, wrapped titles); when the drawn marks fit
  // the box, the empty right margin is cut so the chart fits (no mark is cut, nothing is scaled).
  function trimEmptyRight(el) {
    var svg = el.querySelector("svg");
    if (!svg) return;
    var box = svg.getBoundingClientRect(), right = 0;
    svg.querySelectorAll("text, path, rect, line, circle, image").forEach(function (n) {
      if (/background/.test(n.getAttribute("class") || "")) return;
      var b = n.getBoundingClientRect();
      if (b.width > 0 || b.height > 0) right = Math.max(right, b.right - box.left);
    });
    right = Math.ceil(right + 4);
    var w = svg.width.baseVal.value, vb = svg.viewBox && svg.viewBox.baseVal;
    if (right > 0 && right < w - 1 && right <= el.clientWidth) {
      svg.setAttribute("width", String(right));
      if (vb && vb.width) svg.setAttribute("viewBox", [vb.x, vb.y, vb.width * right / w, vb.height].join(" "));
    }
  }

  function embed(el, spec) {
    return window.vegaEmbed(el, spec, { renderer: "svg", actions: false }).then(function (result) {
      var signals = widthSignals(result.vgSpec || {});
      return fit(el, result.view, signals).then(function () {
        if (drawnWidth(el) > el.clientWidth) trimEmptyRight(el);
        return { result: result, signals: signals };
      });
    });
  }

  function draw(el) {
    var specNode = document.getElementById(el.getAttribute("data-spec-id"));
    if (!specNode) {
      console.error("tokenbook: no spec for chart " + el.id);
      return;
    }
    var text = specNode.textContent, spec = JSON.parse(text), controls = null;
    startControls(el, text, spec)  // the chart's controls start where the page URL says
      .then(function (c) { controls = c; return embed(el, spec); })
      .then(function (drawn) {
        var avail = Math.floor(el.clientWidth);
        if (drawnWidth(el) <= avail) return drawn;
        drawn.result.finalize();  // does not fit even narrowed: draw the narrow layout instead
        window.tokenbookLayouts[el.id] = "narrow";
        return embed(el, narrowSpec(spec, avail));
      })
      .then(function (drawn) {
        var view = drawn.result.view, signals = drawn.signals;
        window.tokenbookViews[el.id] = view;
        linkControls(el, view, text, controls);
        el.setAttribute("data-drawn", "true");
        var lastWidth = el.clientWidth, timer = null;
        if (window.ResizeObserver) {
          new ResizeObserver(function () {
            if (Math.abs(el.clientWidth - lastWidth) < 2) return;
            lastWidth = el.clientWidth;
            clearTimeout(timer);
            timer = setTimeout(function () { fit(el, view, signals); }, 150);
          }).observe(el);
        }
      })
      .catch(function (err) {
        console.error("tokenbook: chart " + el.id + " failed: " + err);
      });
  }

  // ------------------------------------------------------------------ what-if state in the page URL
  // Chart controls (Vega-Lite params bound to inputs) start where the page URL says and write their value
  // back as the reader moves them. The code for it (tokenbook-state.js) loads before drawing when the URL
  // holds settings, else when the reader first moves a control or asks for the link: pages stay light.
  var STATE_SRC = ((document.currentScript || {}).src || "_static/tokenbook.js").replace(/tokenbook\.js(\?.*)?$/, "tokenbook-state.js");
  var URL_SETTINGS = /=/.test(location.search + location.hash), statePromise = null;
  function loadState() {
    if (!statePromise) {
      statePromise = new Promise(function (ok, fail) {
        if (window.tokenbookState && window.tokenbookState.chartStart) { ok(window.tokenbookState); return; }
        var js = document.createElement("script");
        js.src = STATE_SRC;
        js.onload = function () { ok(window.tokenbookState); };
        js.onerror = fail;
        document.head.appendChild(js);
      });
    }
    return statePromise;
  }
  function startControls(el, text, spec) {
    if (!/"bind":\{[^{}]*"input"/.test(text)) return Promise.resolve(null);
    if (!URL_SETTINGS) return Promise.resolve({ lazy: true });
    return loadState().then(function (st) { return st.chartStart(el, spec); }, function () { return null; });
  }
  function linkControls(el, view, text, controls) {
    if (!controls) return;
    if (!controls.lazy) { window.tokenbookState.chartLink(el, view, controls); return; }
    var id = el.id.replace(/-chart$/, "") + "-state", linked = null;
    var bar = document.createElement("div"), button = document.createElement("button");
    bar.className = "tc-state"; bar.id = id;
    button.type = "button"; button.className = "tc-copy-link"; button.textContent = "Copy link to these settings";
    bar.appendChild(button);
    el.parentNode.insertBefore(bar, el.nextSibling);
    function link() {
      if (!linked) {
        linked = loadState().then(function (st) {
          bar.parentNode.removeChild(bar);
          var c = st.chartStart(el, JSON.parse(text));
          st.chartLink(el, view, c);
          c.items.forEach(function (item) { st.changed(item, view.signal(item.param.name)); });
          return st;
        });
      }
      return linked;
    }
    button.addEventListener("click", function () {
      link().then(function () { document.querySelector("#" + id + " .tc-copy-link").click(); });
    });
    JSON.parse(text, function (k, v) {  // every bound param, wherever it sits in the spec
      if (v && typeof v === "object" && v.name && v.bind && v.bind.input && !v.select) {
        view.addSignalListener(v.name, function () { if (!linked) link(); });
      }
      return v;
    });
  }

  function drawAll() {
    if (!document.querySelector(".tc-chart[data-spec-id]")) return;
    if (typeof window.vegaEmbed !== "function") {
      console.error("tokenbook: the Vega bundle did not load (vegaEmbed missing)");
      return;
    }
    document.querySelectorAll(".tc-chart[data-spec-id]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
