// The calculator page (appendix/calculator): cost per million tokens and the inverse answers, computed
// in the reader's browser from the inputs the build embedded (tokenlib.analysis.calculator.payload),
// term for term what tokenlib.analysis.calculator.results computes (a browser test checks both against
// the kernel). Settings live in the page URL (?model=...&chip=...&util=...), read at load and written
// back as the reader moves a control; values a control cannot take fall back to the default, with a note.
(function () {
  "use strict";
  function main() {
  var root = document.querySelector(".tc-calc[data-payload-id]");
  if (!root) return;
  var P = JSON.parse(document.getElementById(root.getAttribute("data-payload-id")).textContent);
  var K = P.k, D = P.defaults, R = P.ranges, F = P.error.max_factor, M = P.error.median_pct / 100.0;
  var form = root.querySelector("form");
  var field = function (name) { return form.elements[name]; };
  var byId = function (list, id) { for (var i = 0; i < list.length; i++) if (list[i].id === id) return list[i]; return null; };
  var placeName = {}, chipName = {};
  P.places.forEach(function (p) { placeName[p.id] = p.name; });
  P.chips.forEach(function (c) { chipName[c.id] = c.name; });

  // ---------------------------------------------------------------- the closed form (calculator.results)
  // [CNY/kWh, PUE] a setting prices power at (calculator.electricity_and_pue)
  function elecAndPue(chipId, place, elec) {
    if (elec !== null) return [elec, K.pue];
    if (place) { var pl = byId(P.places, place); return [pl.elec[byId(P.chips, chipId).origin], pl.pue]; }
    return [K.elec_default, K.pue];
  }
  function hourCost(chipId, place, elec, priceUsd) {
    var ch = byId(P.chips, chipId);
    var price = priceUsd === null ? ch.price : priceUsd;
    var mult = priceUsd === null || ch.price !== null ? ch.mult : K.mult;
    var ep = elecAndPue(chipId, place, elec), e = ep[0], pue = ep[1];
    if (price === null) return K.rent * K.fx;
    var host = K.host * ch.watts / 1000.0 / K.hours_month;  // colocation is sold per kW of rated power
    return (price * mult * K.crf / K.hours + host) * K.fx + ch.watts / 1000.0 * K.load * pue * e;
  }
  function perMtok(hour, tps, util) { return hour / (tps * 3600.0 * util) * 1e6; }
  // output tokens/s per chip at the setup's batch, or at the largest batch meeting the speed (null: none does)
  function outTps(s, chip) {
    var t = P.tps[s.model][chip];
    return s.speed === null ? t.output : t.at_speed[String(s.speed)];
  }
  function typical(v) { return [v / (1 + M), v / (1 - M)]; }
  function worst(v) { return [v / F, v * F]; }
  // calculator.results: where no batch gives every user the chosen speed (reachable false), the answers that
  // need output tokens are null; the chip-hour and input costs and the cheapest-first grid still exist
  function results(s) {
    var tps = P.tps[s.model], t = tps[s.chip], tOut = outTps(s, s.chip);
    if (tOut === undefined) tOut = null;
    var h = hourCost(s.chip, s.place, s.elec, s.price);
    var inp = perMtok(h, t.input, s.util);
    var grid = [];
    P.places.forEach(function (pl) {
      Object.keys(tps).forEach(function (c) {
        var tc = outTps(s, c);
        if (tc === null || tc === undefined) return;
        grid.push({ place: pl.id, chip: c, cost: perMtok(hourCost(c, pl.id, null, null), tc, s.util) });
      });
    });
    grid.sort(function (a, b) {  // cost, then place, then chip (calculator.cheapest)
      return a.cost - b.cost || (a.place < b.place ? -1 : a.place > b.place ? 1 : 0) || (a.chip < b.chip ? -1 : a.chip > b.chip ? 1 : 0);
    });
    var r = {
      hour: h, input: inp, cached: inp * K.cached, tps_input: t.input, cheapest: grid, n_total: grid.length,
      n_under: grid.filter(function (g) { return g.cost <= s.target; }).length, reachable: tOut !== null,
      output: null, tps_output: null, user_speed: null, breakeven_util: null, margin_price: null,
      band: { output: null, breakeven_util: null, margin_price: null },
      worst: { output: null, breakeven_util: null, margin_price: null },
    };
    if (tOut === null) return r;
    var out = perMtok(h, tOut, s.util), be = perMtok(h, tOut, 1.0) / s.list, mp = out / (1.0 - s.margin);
    r.output = out; r.tps_output = tOut; r.user_speed = s.speed === null ? t.user_speed : s.speed;
    r.breakeven_util = be; r.margin_price = mp;
    r.band = { output: typical(out), breakeven_util: typical(be), margin_price: typical(mp) };
    r.worst = { output: worst(out), breakeven_util: worst(be), margin_price: worst(mp) };
    return r;
  }

  // ---------------------------------------------------------------- how numbers read (book/calculator.py: number_text & co.)
  var UNREACHABLE = "\u2014 (speed not reachable)";
  function grouped(text) { return window.tokenbookState.grouped(text); }  // tokenbook-state.js loads first
  // below 100: `digits` decimals; from 100: 4 significant figures, thousands separated from 1,000
  function num(x, digits) {
    if (!isFinite(x)) return String(x);
    var a = Math.abs(x);
    if (a < 100) return x.toFixed(digits);
    if (a < 1000) return x.toFixed(1);
    var n = Math.floor(Math.log10(a)) + 1, step = Math.pow(10, n - 4);
    var v = Math.round(x / step) * step;
    return (v < 0 ? "-" : "") + grouped(Math.abs(v).toFixed(0));
  }
  function utilText(u) { return u <= 1 ? (100 * u).toFixed(1) + "%" : "never (above 100%)"; }
  function utilBandText(lo, hi) {
    if (lo > 1) return "never";
    if (hi > 1) return (100 * lo).toFixed(1) + "% to never";
    return (100 * lo).toFixed(1) + "\u2013" + (100 * hi).toFixed(1) + "%";
  }
  function elecText(s) {
    if (s.elec !== null) return s.elec.toFixed(3);
    var e = elecAndPue(s.chip, s.place, null)[0].toFixed(3);
    return s.place ? "place's price (" + e + ")" : "kernel default (" + e + ")";
  }
  window.tokenbookCalc = { results: results, hourCost: hourCost, payload: P, num: num, utilBandText: utilBandText };

  // ---------------------------------------------------------------- settings <-> controls <-> URL
  var state = window.tokenbookState;
  var NUMBERS = { util: "util", elec: "elec", price: "price", list: "list", target: "target", margin: "margin" };
  function defaults() {
    return { model: D.model, chip: D.chip, place: D.place, speed: null, util: D.util, elec: null, price: null,
             list: D.list_price, target: D.target, margin: D.margin };
  }
  // The settings a URL asks for, and a note for each value that could not be used.
  function fromURL() {
    var s = defaults(), notes = [];
    if (!state) return { settings: s, notes: notes };  // the page loads tokenbook-state.js first (sphinxext)
    var q = state.params();
    // the note names choices and defaults as the menus do; the bad value stays as typed (shown as text)
    function bad(key, raw, note, fallback) { notes.push(state.describe(key, raw, { ok: false, note: note }, fallback)); }
    var modelName = {};
    P.models.forEach(function (m) { modelName[m.id] = m.name; });
    var chipsOf = function (m) { return Object.keys(P.tps[m]); };
    if (q.has("model")) {
      if (P.tps[q.get("model")]) s.model = q.get("model");
      else bad("model", q.get("model"), "is not one of the models (" + Object.keys(P.tps).map(function (m) { return modelName[m]; }).join(", ") + ")", modelName[D.model]);
    }
    if (!P.tps[s.model][s.chip]) s.chip = chipsOf(s.model)[0];
    if (q.has("chip")) {
      if (P.tps[s.model][q.get("chip")]) s.chip = q.get("chip");
      else bad("chip", q.get("chip"), "is not a chip " + modelName[s.model] + " is costed on (" + chipsOf(s.model).map(function (c) { return chipName[c]; }).join(", ") + ")", chipName[s.chip]);
    }
    if (q.has("place")) {
      var pl = q.get("place");
      if (pl === "none") s.place = "";
      else if (byId(P.places, pl)) s.place = pl;
      else bad("place", pl, "is not one of the places (" + P.places.map(function (p) { return p.name; }).join(", ") + ", No place)", D.place ? placeName[D.place] : "No place");
    }
    if (q.has("speed")) {
      var sp = q.get("speed");
      if (sp === "setup") s.speed = null;
      else if (P.speeds.map(String).indexOf(sp) >= 0) s.speed = Number(sp);
      else bad("speed", sp, "is not one of the speeds (the setup's batch, " + P.speeds.join(", ") + " tokens/s or faster)", "setup's batch");
    }
    if (s.speed !== null && outTps(s, s.chip) === null) {
      bad("speed", String(s.speed), "is more than the " + chipName[s.chip] + " reaches for this model at its setup", "setup's batch");
      s.speed = null;
    }
    Object.keys(NUMBERS).forEach(function (key) {
      if (!q.has(key)) return;
      var r = state.parse({ input: "range", min: R[key][0], max: R[key][1] }, q.get(key));  // no step: any value in range
      var target = key === "list" ? "list" : key;
      if (r.ok) s[target] = r.value;
      else bad(key, q.get(key), r.note, fallbackText(key, s));
    });
    return { settings: s, notes: notes };
  }
  function toURL(s) {
    var d = defaults();
    var put = function (k, v, dv) { if (state) state.write(k, v === dv ? null : String(v)); };
    put("model", s.model, d.model);
    put("chip", s.chip, d.chip);
    put("place", s.place || "none", d.place || "none");
    put("speed", s.speed === null ? "setup" : s.speed, "setup");
    ["util", "elec", "price", "list", "target", "margin"].forEach(function (k) { put(k, s[k], d[k]); });
  }
  // the value a setting falls back to, in words that follow "the default" ("sourced price (12,000 USD)", "8")
  function fallbackText(key, s) {
    if (key === "elec") return s.place ? "place's price" : "kernel price (" + K.elec_default.toFixed(3) + ")";
    if (key === "price") {
      var ch = byId(P.chips, s.chip);
      return ch.price !== null ? "sourced price (" + grouped(Math.round(ch.price).toFixed(0)) + " USD)" : "rental rate ($" + K.rent + "/chip-hour)";
    }
    var d = defaults()[key];
    return String(Number(d.toFixed(3)));
  }
  function validOrNull(v, name) { return v !== null && isFinite(v) && v >= R[name][0] && v <= R[name][1] ? v : null; }
  function fillChips(model, chip) {
    var sel = field("chip");
    sel.textContent = "";
    Object.keys(P.tps[model]).forEach(function (c) {
      var o = document.createElement("option");
      o.value = c; o.textContent = chipName[c]; o.selected = c === chip;
      sel.appendChild(o);
    });
  }
  function writeControls(s, editing) {
    var set = function (name, value) { if (field(name) !== editing) field(name).value = value; };
    field("model").value = s.model;
    if (field("chip").getAttribute("data-model") !== s.model) {
      fillChips(s.model, s.chip);
      field("chip").setAttribute("data-model", s.model);
    }
    field("chip").value = s.chip;
    field("place").value = s.place || "none";
    field("speed").value = s.speed === null ? "setup" : String(s.speed);
    set("util", String(s.util));
    field("elecset").checked = s.elec !== null;
    set("elec", String(s.elec !== null ? s.elec : elecAndPue(s.chip, s.place, null)[0]));
    field("elec").disabled = s.elec === null;
    set("price", s.price === null ? "" : String(s.price));
    var ch = byId(P.chips, s.chip);
    field("price").placeholder = ch.price !== null ? Math.round(ch.price).toLocaleString("en") + " (sourced price)" : "rented: $" + K.rent + "/chip-hour";
    set("list", String(s.list));
    set("target", String(s.target));
    set("margin", String(s.margin));
  }

  function show(key, value, digits) {
    var node = root.querySelector('[data-out="' + key + '"]');
    if (!node) return;
    node.setAttribute("data-value", value === null ? "" : String(value));
    node.textContent = value === null ? UNREACHABLE : num(value, digits);
    var unit = root.querySelector('[data-unit="' + key + '"]');
    if (unit) unit.hidden = value === null;
  }
  function band(key, pair, digits, kind) {
    var node = root.querySelector('[data-' + (kind || "band") + '="' + key + '"]');
    node.setAttribute("data-low", pair === null ? "" : String(pair[0]));
    node.setAttribute("data-high", pair === null ? "" : String(pair[1]));
    node.textContent = pair === null ? "\u2014" : key === "breakeven_util" ? utilBandText(pair[0], pair[1]) :
      num(pair[0], digits) + "\u2013" + num(pair[1], digits);
  }
  function render(s) {
    var r = results(s);
    var miss = root.querySelector(".tc-unreachable");
    // a chip that cannot give every user that speed: say so; every answer that needs it reads "not reachable"
    miss.hidden = r.reachable;
    miss.textContent = r.reachable ? "" : "The " + chipName[s.chip] + " does not reach " + s.speed + " tokens/s per user for this model at its setup (at most " +
      P.tps[s.model][s.chip].user_speed.toFixed(1) + " at the setup's batch; fewer sequences per chip are not enough). Choose a lower speed or another chip.";
    ["output", "input", "hour"].forEach(function (k) { show(k, r[k], 3); });
    show("cached", r.cached, 4);
    show("tps_output", r.tps_output, 1);
    show("tps_input", r.tps_input, 1);
    show("user_speed", r.user_speed, 1);
    show("margin_price", r.margin_price, 3);
    ["band", "worst"].forEach(function (kind) {
      ["output", "breakeven_util", "margin_price"].forEach(function (k) { band(k, r[kind][k], 3, kind); });
    });
    var be = root.querySelector('[data-out="breakeven_util"]');
    be.setAttribute("data-value", r.breakeven_util === null ? "" : String(r.breakeven_util));
    be.textContent = r.breakeven_util === null ? UNREACHABLE : utilText(r.breakeven_util);
    var first = r.cheapest[0];
    root.querySelector('[data-out="cheapest"]').textContent = first ? placeName[first.place] + ", " + chipName[first.chip] :
      "no place and chip reaches this speed per user";
    show("cheapest_cost", first ? first.cost : null, 3);
    show("n_under", r.n_under, 0);
    show("n_total", r.n_total, 0);
    var list = root.querySelector('[data-out="cheapest_list"]');
    list.textContent = "";
    r.cheapest.slice(0, P.cheapest_shown).forEach(function (g) {
      var li = document.createElement("li");
      li.textContent = placeName[g.place] + ", " + chipName[g.chip] + ": " + num(g.cost, 3);
      list.appendChild(li);
    });
    var m = byId(P.models, s.model);
    root.querySelector('[data-show="setup"]').textContent = m.setup + ".";
    root.querySelector('[data-show="util"]').textContent = s.util.toFixed(3);
    root.querySelector('[data-show="elec"]').textContent = elecText(s);
    root.querySelector('[data-show="margin"]').textContent = (100 * s.margin).toFixed(0) + "%";
    root.setAttribute("data-ready", "true");
  }
  // a typed number no control can take: the field keeps it, a note under it says which value is used instead
  function fieldNotes(s) {
    ["price", "list", "target"].forEach(function (name) {
      var node = root.querySelector('[data-note="' + name + '"]');
      if (!node) return;
      var raw = field(name).value;
      var r = raw === "" ? { ok: true } : state.parse({ input: "range", min: R[name][0], max: R[name][1] }, raw);
      node.hidden = r.ok;
      node.textContent = r.ok ? "" : raw + " " + r.note + ", so the default " + fallbackText(name, s) + " is used";
    });
  }

  var start = fromURL(), s = start.settings;
  writeControls(s);
  render(s);
  if (state) {
    var bar = state.bar(form, "tc-calc-state");  // "Copy link" under the form
    bar.setAttribute("data-anchor", root.id);
    // the note on a link's bad values sits at the top of the calculator, by the first control (a phone
    // would put the bar's own note screens below); the bar's note stays empty
    var top = root.querySelector(".tc-link-note");
    state.note(top || bar, start.notes);
    if (start.notes.length) toURL(s);  // the bad values leave the URL
  }
  // A moved control changes its own setting only (the others keep their exact values, not the DOM's
  // rounding of them); a number being typed that a control cannot take counts as its default meanwhile.
  function update(event) {
    var t = event.target, name = t.name, ns = {};
    Object.keys(s).forEach(function (k) { ns[k] = s[k]; });
    if (name === "model") {
      ns.model = t.value;
      if (!P.tps[ns.model][ns.chip]) ns.chip = Object.keys(P.tps[ns.model])[0];
    } else if (name === "chip") ns.chip = t.value;
    else if (name === "place") ns.place = t.value === "none" ? "" : t.value;
    else if (name === "speed") ns.speed = t.value === "setup" ? null : Number(t.value);
    else if (name === "elecset") ns.elec = t.checked ? validOrNull(Number(field("elec").value), "elec") || elecAndPue(ns.chip, ns.place, null)[0] : null;
    else if (NUMBERS[name]) {
      var v = validOrNull(t.value === "" ? null : Number(t.value), name);
      var fallback = { util: D.util, elec: null, price: null, list: D.list_price, target: D.target, margin: D.margin }[name];
      ns[name] = v === null ? fallback : v;
    } else return;
    s = ns;
    fieldNotes(s);
    writeControls(s, t);
    render(s);
    toURL(s);
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
