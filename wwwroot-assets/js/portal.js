// ReviewerPortal: small browser helpers called from Blazor components.
window.reviewerPortal = window.reviewerPortal || {};

// Queue keyboard: j/k move, Enter opens, a/r open ready to approve/reject. Ignored while typing in a field.
window.reviewerPortal.queueKeys = function (dotnet) {
  if (window.reviewerPortal._queueHandler) {
    document.removeEventListener("keydown", window.reviewerPortal._queueHandler);
  }
  const handler = function (e) {
    const target = e.target || document.body;
    const tag = target.tagName || "";
    if (e.ctrlKey || e.metaKey || e.altKey || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") {
      return;
    }
    // Only on the page itself or in the queue: Enter on the menu, a filter, a link or a button keeps its own meaning.
    const inQueue = target === document.body || target === document.documentElement
      || (target.closest && target.closest("[data-testid=queue]"));
    if (!inQueue || (e.key === "Enter" && tag === "A")) {
      return;
    }
    if (!document.querySelector("[data-testid=queue]")) {
      document.removeEventListener("keydown", handler);
      return;
    }
    if (["j", "k", "a", "r", "Enter"].includes(e.key)) {
      e.preventDefault();
      dotnet.invokeMethodAsync("OnQueueKey", e.key);
    }
  };
  window.reviewerPortal._queueHandler = handler;
  document.addEventListener("keydown", handler);
};

// Focus an element by id (used after opening an approval with a/r).
window.reviewerPortal.focus = function (id) {
  const el = document.getElementById(id);
  if (el) { el.focus(); }
};

// Browser notifications (opt-in): asks for permission once; true when granted.
window.reviewerPortal.enableNotifications = async function () {
  if (!("Notification" in window)) { return false; }
  if (Notification.permission === "granted") { return true; }
  if (Notification.permission === "denied") { return false; }
  return (await Notification.requestPermission()) === "granted";
};

window.reviewerPortal.notify = function (title, body, url) {
  if (!("Notification" in window) || Notification.permission !== "granted") { return; }
  const n = new Notification(title, { body: body, icon: "/assets/icons/logo.svg", tag: url });
  n.onclick = function () { window.focus(); window.location.href = url; };
};

// The reader's IANA time zone (asked when the rp-tz cookie was not there yet when the page was rendered).
window.reviewerPortal.timeZone = function () {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { return null; }
};

// The theme chosen in the top bar, for pages shown before sign-in (the account keeps it too).
window.reviewerPortal.rememberTheme = function (value) {
  document.cookie = "rp-theme=" + encodeURIComponent(value) + "; path=/; max-age=31536000; samesite=lax" +
    (location.protocol === "https:" ? "; secure" : "");
};
// The top bar's menus (the phone menu and the theme menu, each a <details>): close when a destination or choice is
// picked, on a click elsewhere and on Escape.
document.addEventListener("click", function (e) {
  document.querySelectorAll("details.rp-menu[open]").forEach(function (menu) {
    if (!menu.contains(e.target) || (e.target.closest && e.target.closest(".rp-menu-panel a, .rp-menu-panel button"))) {
      menu.open = false;
    }
  });
});
document.addEventListener("keydown", function (e) {
  if (e.key !== "Escape") { return; }
  const menu = document.querySelector("details.rp-menu[open]");
  if (menu) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});
