// Draws every figure of the page with the book's own Vega bundle (window.vega, from _static).
// Each figure block carries its Vega spec (compiled from Vega-Lite when the book was built) in a
// <script type="application/json"> next to its container.
//
// Charts are drawn for the width they are shown at: a chart keeps the width it was designed at when
// its box has room, and otherwise its views are narrowed (the width signals of the compiled spec,
// re-run, not re-parsed) until the whole chart, axes and legends included, fits the box. Text keeps
// its size; nothing is scaled down. On a resize (rotation, a wider window) the fit is redone.
(function () {
  "use strict";
  window.tokenbookViews = window.tokenbookViews || {};
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
            if (drawnWidth(el) <= avail || k <= MIN_FACTOR || tries++ > 6) return null;
            k = Math.max(MIN_FACTOR, k * Math.min(0.97, avail / drawnWidth(el)));
            return step();
          });
        }
        return step();
      });
    });
  }

  function draw(el) {
    var specNode = document.getElementById(el.getAttribute("data-spec-id"));
    if (!specNode) {
      console.error("tokenbook: no spec for chart " + el.id);
      return;
    }
    var spec = JSON.parse(specNode.textContent);
    var signals = widthSignals(spec);
    var view;
    try {
      view = new window.vega.View(window.vega.parse(spec), { renderer: "svg", container: el, hover: true });
    } catch (err) {
      console.error("tokenbook: chart " + el.id + " failed: " + err);
      return;
    }
    view.runAsync()
      .then(function () { return fit(el, view, signals); })
      .then(function () {
        window.tokenbookViews[el.id] = view;
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

  function drawAll() {
    if (!window.vega || typeof window.vega.View !== "function") {
      console.error("tokenbook: the Vega bundle did not load (vega missing)");
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
