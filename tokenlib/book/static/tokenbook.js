// Draws every figure of the page with the book's own Vega bundle (window.vega, from _static).
// Each figure block carries its chart, compiled to Vega at build time in a wide and a narrow layout
// (tokenlib.book.figures.page_vega), in a <script type="application/json"> next to its container.
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

  // A layout's data entries name their values in the block's shared ``data`` (stored once for both layouts).
  function withData(vg, shared) {
    var out = Object.assign({}, vg);
    out.data = (vg.data || []).map(function (d) {
      if (!("tc_values" in d)) return d;
      var copy = Object.assign({}, d);
      copy.values = shared[d.tc_values];
      delete copy.tc_values;
      return copy;
    });
    return out;
  }

  function embed(el, vg) {
    el.textContent = "";
    var view = new window.vega.View(window.vega.parse(vg), { renderer: "svg", container: el, hover: true });
    return view.runAsync().then(function () {
      var signals = widthSignals(vg);
      return fit(el, view, signals).then(function () {
        if (drawnWidth(el) > el.clientWidth) trimEmptyRight(el);
        return { view: view, signals: signals };
      });
    });
  }

  function draw(el) {
    var specNode = document.getElementById(el.getAttribute("data-spec-id"));
    if (!specNode) {
      console.error("tokenbook: no spec for chart " + el.id);
      return;
    }
    // the chart compiled to Vega at build time, in its designed (wide) and its narrow layout
    var text = specNode.textContent, block = JSON.parse(text), controls = null;
    startControls(el, text, block)  // the chart's controls start where the page URL says
      .then(function (c) { controls = c; return embed(el, withData(block.wide, block.data)); })
      .then(function (drawn) {
        var avail = Math.floor(el.clientWidth);
        if (drawnWidth(el) <= avail) return drawn;
        drawn.view.finalize();  // does not fit even narrowed: draw the narrow layout instead
        window.tokenbookLayouts[el.id] = "narrow";
        return embed(el, withData(block.narrow, block.data));
      })
      .then(function (drawn) {
        var view = drawn.view, signals = drawn.signals;
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
    if (!window.vega || typeof window.vega.View !== "function") {
      console.error("tokenbook: the Vega bundle did not load (window.vega missing)");
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
