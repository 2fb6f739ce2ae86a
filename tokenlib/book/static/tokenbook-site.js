// Every page: copy buttons of the citation blocks, and the version switcher in the footer.
(function () {
  "use strict";
  function copyText(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectIn(target); });
    } else {
      selectIn(target);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selection stays for Ctrl+C */ }
    }
  }
  function selectIn(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.tc-copy") : null;
    if (button) copyText(button);
  });

  // The site keeps each release at v<version>/ beside the latest at its root; versions.json at the
  // site root lists them. A page inside v<version>/ reads ../versions.json; elsewhere versions.json.
  function versions() {
    var holder = document.querySelector(".tc-versions");
    if (!holder || location.protocol === "file:") return;
    var rootAttr = document.documentElement.getAttribute("data-content_root") || "./";
    var contentRoot = new URL(rootAttr, location.href);
    var segments = contentRoot.pathname.replace(/\/$/, "").split("/");
    var inVersionDir = /^v\d+(\.\d+)*$/.test(segments[segments.length - 1] || "");
    var siteRoot = inVersionDir ? new URL("../", contentRoot) : contentRoot;
    var page = location.pathname.slice(contentRoot.pathname.length) || "index.html";
    fetch(new URL("versions.json", siteRoot).href, { cache: "no-cache" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.versions) return;
        var current = holder.getAttribute("data-version");
        var nav = document.createElement("nav");
        nav.className = "tc-version-switcher";
        nav.setAttribute("aria-label", "Versions of the book");
        nav.appendChild(document.createTextNode("Versions: "));
        var items = [];
        if (data.latest && data.versions.some(function (v) { return v.path; })) {
          items.push({ label: "latest (" + data.latest + ")", path: "" });
        }
        data.versions.forEach(function (v) { items.push({ label: v.version, path: v.path, version: v.version }); });
        items.forEach(function (item, i) {
          if (i) nav.appendChild(document.createTextNode(" · "));
          var a = document.createElement("a");
          a.href = new URL(item.path + page, siteRoot).href;
          a.textContent = item.label;
          a.className = "tc-version";
          if (item.version === current) a.setAttribute("aria-current", "page");
          nav.appendChild(a);
        });
        holder.textContent = "";
        holder.appendChild(nav);
      })
      .catch(function () { /* no list: the footer keeps its version line */ });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", versions);
  } else {
    versions();
  }
})();
