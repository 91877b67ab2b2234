// Relative times ("3 minutes ago") are written here, in the browser, from the absolute time of
// each <time data-rt-ago datetime="…">, in the page's language (<html lang>): nothing a live
// region sends depends on the clock, so an unchanged page keeps answering 304 (utilities/live.py).
(function () {
  "use strict";
  var UNITS = [
    ["year", 31536000],
    ["month", 2592000],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  var format = null;

  function words(seconds, element) {
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1]) {
        format = format || new Intl.RelativeTimeFormat(document.documentElement.lang || "en", {numeric: "auto"});
        return format.format(Math.trunc(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return element.getAttribute("data-rt-now");  // under a minute: "just now", translated
  }

  function refresh() {
    var now = Date.now();
    document.querySelectorAll("time[data-rt-ago]").forEach(function (element) {
      var at = Date.parse(element.getAttribute("datetime"));
      if (isNaN(at)) return;
      var text = words((at - now) / 1000, element);
      if (element.textContent !== text) element.textContent = text;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", refresh);
  else refresh();
  // A poll swaps regions in with their absolute times only.
  document.addEventListener("htmx:oobAfterSwap", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  setInterval(refresh, 15000);
})();
