// ReviewerPortal: tells the server the reader's time zone and colour-scheme preference, in two cookies read when a page
// is rendered on the server, so the next page already shows local times and the right theme. Runs first, in <head>.
(function () {
  function remember(name, value) {
    var pair = name + "=" + encodeURIComponent(value);
    if (document.cookie.split("; ").indexOf(pair) < 0) {
      document.cookie = pair + "; path=/; max-age=31536000; samesite=lax" + (location.protocol === "https:" ? "; secure" : "");
    }
  }
  try {
    remember("rp-tz", Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  } catch (e) { /* no Intl: the server shows UTC */ }
  if (window.matchMedia) {
    remember("rp-dark", window.matchMedia("(prefers-color-scheme: dark)").matches ? "1" : "0");
  }
})();
