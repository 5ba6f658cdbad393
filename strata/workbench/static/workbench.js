// Strata workbench: charts from data attributes, and a live list that never steals the user's
// place. No inline script anywhere (the pages run under a strict Content-Security-Policy).
(function () {
  "use strict";
  var lang = document.documentElement.getAttribute("lang") === "en" ? "EN" : "ZH";

  function drawCharts(root) {
    if (!window.echarts) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var option = JSON.parse(el.getAttribute("data-chart"));
      option.aria = option.aria || { enabled: true };
      option.aria.enabled = true;
      option.aria.label = { enabled: true, description: el.getAttribute("aria-label") || undefined };
      var chart = window.echarts.init(el, null, { locale: lang, renderer: "canvas" });
      chart.setOption(option);
      el.dataset.drawn = "1";
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (evt) { drawCharts(evt.target); });

  // The live signals list refreshes itself; not while the user is typing or choosing in it.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var el = evt.detail.elt;
    if (!el || !el.hasAttribute || !el.hasAttribute("data-live")) return;
    var target = document.getElementById(el.getAttribute("data-live"));
    if (target && target.contains(document.activeElement) && document.activeElement !== document.body) {
      evt.preventDefault();
    }
  });

  // A button that asks first (data-confirm), without inline script.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      evt.preventDefault();
      evt.stopImmediatePropagation();
    }
  }, true);

  // Forms that submit on change (filters), keeping keyboard users in control: only selects.
  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el.matches && el.matches("select[data-autosubmit]")) {
      if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
    }
  });
})();
