// Draws every figure of the page with the book's own Vega bundle (window.vegaEmbed, from _static).
// Each figure block carries its spec in a <script type="application/json"> next to its container.
(function () {
  "use strict";
  window.tokenbookViews = window.tokenbookViews || {};
  function draw(el) {
    var specNode = document.getElementById(el.getAttribute("data-spec-id"));
    if (!specNode) {
      console.error("tokenbook: no spec for chart " + el.id);
      return;
    }
    var spec = JSON.parse(specNode.textContent);
    window.vegaEmbed(el, spec, { renderer: "svg", actions: false })
      .then(function (result) {
        window.tokenbookViews[el.id] = result.view;
        el.setAttribute("data-drawn", "true");
      })
      .catch(function (err) {
        console.error("tokenbook: chart " + el.id + " failed: " + err);
      });
  }
  function drawAll() {
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
