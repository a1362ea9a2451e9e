// Keeps every "… ago" current while the page stays open (a published page
// is read long after it was written). Nothing else; no request.
(function () {
  function words(s) {
    if (s < 60) return Math.max(0, Math.floor(s)) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 172800) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.ago").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(at)) t.textContent = words((now - at) / 1000) + " ago";
    });
  }
  tick();
  setInterval(tick, 30000);
})();
