// What-if state in the page URL, for the chart controls (tokenbook.js) and the calculator
// (tokenbook-calc.js): read settings from the query string (or the fragment), write them back as the
// reader moves a control (one history entry, replaced), a "Copy link" button and a visible note when a
// link holds values a control cannot take. Nothing from the URL is ever inserted as HTML.
(function () {
  "use strict";
  var state = window.tokenbookState = window.tokenbookState || {};

  state.params = function () {
    var out = new URLSearchParams(location.search);
    var hash = location.hash.replace(/^#/, "");
    if (hash.indexOf("=") >= 0) {  // settings in the fragment too (#fig-04-whatif&util=0.6)
      hash.split("&").forEach(function (part) {
        var i = part.indexOf("=");
        if (i <= 0) return;
        try {
          var key = decodeURIComponent(part.slice(0, i));
          if (!out.has(key)) out.set(key, decodeURIComponent(part.slice(i + 1)));
        } catch (e) { /* a malformed escape: ignored */ }
      });
    }
    return out;
  };

  var pending = {}, writeTimer = null;
  // Set (value) or drop (null) keys of the query string, keeping the fragment; one history entry.
  state.write = function (key, value) {
    pending[key] = value;
    clearTimeout(writeTimer);
    writeTimer = setTimeout(state.flush, 120);
  };
  state.flush = function () {
    clearTimeout(writeTimer);
    var q = state.params();  // the query string and any settings in the fragment (query first)
    Object.keys(pending).forEach(function (k) {
      if (pending[k] === null || pending[k] === undefined) q.delete(k); else q.set(k, String(pending[k]));
    });
    pending = {};
    var search = q.toString();
    // settings move from the fragment into the query string; the fragment keeps only its anchor (if any)
    var anchors = location.hash.replace(/^#/, "").split("&").filter(function (p) { return p && p.indexOf("=") < 0; });
    var hash = anchors.length ? "#" + anchors.join("&") : "";
    history.replaceState(history.state, "", location.pathname + (search ? "?" + search : "") + hash);
  };

  // A number's text with thousands separators in its whole part ("50000" -> "50,000", "0.05" stays):
  // how every note and readout of the book writes a number (book/calculator.py: number_text)
  state.grouped = function (text) {
    var parts = String(text).split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  };

  function decimals(x) {
    var s = String(x), i = s.indexOf(".");
    return i < 0 ? 0 : s.length - i - 1;
  }
  // The value a binding takes for the URL text ``raw``: {ok, value, note}. Ranges: a finite number
  // within [min, max], put on the slider's step; menus and radios: one of the options.
  state.parse = function (bind, raw, fallback) {
    var input = bind.input;
    if (input === "range") {
      var min = typeof bind.min === "number" ? bind.min : 0, max = typeof bind.max === "number" ? bind.max : 100;
      var v = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
      if (!isFinite(v)) return { ok: false, note: "is not a number" };
      if (v < min || v > max) return { ok: false, note: "is outside " + state.grouped(min) + "\u2013" + state.grouped(max) };
      if (typeof bind.step === "number" && bind.step > 0) {
        var d = Math.max(decimals(bind.step), decimals(min));
        var snapped = Number((min + Math.round((v - min) / bind.step) * bind.step).toFixed(d));
        snapped = Math.min(max, Math.max(min, snapped));
        if (Math.abs(snapped - v) > 1e-9 * Math.max(1, Math.abs(v))) {
          return { ok: true, value: snapped, note: "is between the slider's steps: " + snapped + " is used" };
        }
        return { ok: true, value: snapped };
      }
      return { ok: true, value: v };
    }
    if (input === "checkbox") {
      if (raw === "true" || raw === "false") return { ok: true, value: raw === "true" };
      return { ok: false, note: "is not true or false" };
    }
    var options = bind.options || [];
    for (var i = 0; i < options.length; i++) {
      if (String(options[i]) === raw) return { ok: true, value: options[i] };
    }
    return { ok: false, note: "is not one of " + options.map(String).join(", ") };
  };
  state.format = function (bind, value) {
    if (bind.input === "range" && typeof value === "number" && typeof bind.step === "number") {
      return String(Number(value.toFixed(Math.max(decimals(bind.step), decimals(bind.min || 0)))));
    }
    return String(value);
  };

  // A line under the controls: "Copy link" and, when the URL held values that could not be used, why.
  state.bar = function (after, id) {
    var bar = document.getElementById(id);
    if (bar) return bar;
    bar = document.createElement("div");
    bar.className = "tc-state";
    bar.id = id;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "tc-copy-link";
    button.textContent = "Copy link to these settings";
    var note = document.createElement("p");
    note.className = "tc-url-note";
    note.setAttribute("role", "status");
    note.hidden = true;
    bar.appendChild(button);
    bar.appendChild(note);
    after.parentNode.insertBefore(bar, after.nextSibling);
    button.addEventListener("click", function () {
      state.flush();
      var anchor = bar.getAttribute("data-anchor");
      var url = location.origin + location.pathname + location.search + (anchor ? "#" + anchor : "");
      button.setAttribute("data-url", url);
      var done = function () {
        button.textContent = "Link copied";
        setTimeout(function () { button.textContent = "Copy link to these settings"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(url).then(done, function () { window.prompt("Link to these settings:", url); });
      } else {
        window.prompt("Link to these settings:", url);
      }
    });
    return bar;
  };
  // ``where``: a bar (its note) or a note element itself (the calculator's, at the top of its form)
  state.note = function (where, messages) {
    var note = where.classList.contains("tc-url-note") ? where : where.querySelector(".tc-url-note");
    if (!messages.length) { note.hidden = true; note.textContent = ""; return; }
    note.hidden = false;
    note.textContent = "From the link: " + messages.join("; ") + ".";
  };
  state.describe = function (key, raw, result, fallback) {
    var shown = raw.length > 40 ? raw.slice(0, 40) + "\u2026" : raw;
    return key + "=" + shown + " " + result.note + (result.ok ? "" : ", so the default " + fallback + " is used");
  };

  // Bound params of a chart (Vega-Lite params or compiled Vega signals, in both layouts of a block), wherever
  // they sit; a name bound in both layouts is the same control.
  function boundParams(spec) {
    var out = [];
    (function walk(node) {
      if (Array.isArray(node)) { node.forEach(walk); return; }
      if (!node || typeof node !== "object") return;
      (node.params || []).concat(node.signals || []).forEach(function (p) {
        if (p && p.name && p.bind && typeof p.bind === "object" && p.bind.input && !p.select) out.push(p);
      });
      ["layer", "hconcat", "vconcat", "concat", "spec", "wide", "narrow"].forEach(function (k) { if (node[k]) walk(node[k]); });
    })(spec);
    return out;
  }
  // URL keys: the param's name, or "<figure>.<name>" where two charts of the page bind the same name.
  var keyCounts = null;
  function urlKey(el, name) {
    if (keyCounts === null) {
      keyCounts = {};
      document.querySelectorAll(".tc-chart[data-spec-id]").forEach(function (c) {
        var node = document.getElementById(c.getAttribute("data-spec-id"));
        try {
          var seen = {};
          boundParams(JSON.parse(node.textContent)).forEach(function (p) {
            if (!seen[p.name]) keyCounts[p.name] = (keyCounts[p.name] || 0) + 1;
            seen[p.name] = true;
          });
        } catch (e) { /* drawn (and reported) by draw() */ }
      });
    }
    return keyCounts[name] > 1 ? el.id.replace(/^fig-/, "").replace(/-chart$/, "") + "." + name : name;
  }

  state.chartStart = function (el, spec) {
    var params = boundParams(spec), url = state.params(), notes = [], out = [], byName = {};
    params.forEach(function (p) {
      if (byName[p.name]) { byName[p.name].copies.push(p); return; }  // the same control in the other layout
      var key = urlKey(el, p.name), item = { param: p, key: key, fallback: p.value, copies: [p] };
      byName[p.name] = item;
      out.push(item);
    });
    out.forEach(function (item) {
      var p = item.param, key = item.key;
      if (!url.has(key)) return;
      var raw = url.get(key), r = state.parse(p.bind, raw, p.value);
      if (r.ok) item.copies.forEach(function (c) { c.value = r.value; });  // the spec the chart is drawn from starts there
      if (r.note) notes.push(state.describe(key, raw, r, state.format(p.bind, p.value)));
      if (!r.ok) state.write(key, null);
    });
    return { items: out, notes: notes };
  };

  state.chartLink = function (el, view, controls) {
    if (!controls.items.length) return;
    var bar = state.bar(el, el.id.replace(/-chart$/, "") + "-state");
    var figure = el.closest ? el.closest("figure[id]") : null;
    if (figure) bar.setAttribute("data-anchor", figure.id);
    state.note(bar, controls.notes);
    controls.items.forEach(function (item) {
      view.addSignalListener(item.param.name, function (name, value) { state.changed(item, value); });
    });
  };
  state.changed = function (item, value) {
    var text = state.format(item.param.bind, value);
    state.write(item.key, text === state.format(item.param.bind, item.fallback) ? null : text);
  };

})();
