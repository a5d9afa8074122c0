// Wayline dashboard: progressive enhancement only. Pages are complete without it.
// - [data-poll]: re-fetch a fragment every data-poll-ms while the page is visible; stop once
//   the fragment carries data-final (a finished run). Swaps only when the HTML changed.
// - select[data-autosubmit]: filters apply on change.
// - form[data-confirm]: ask before an action; form[data-once]: submitted once only.
// - textarea[data-json-editor]: inline JSON syntax check as you type; Ctrl/Cmd+Enter sends.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var banner = document.getElementById("banner");
  var failures = 0;

  function setBanner(text) {
    if (!banner) return;
    banner.textContent = text || "";
    banner.hidden = !text;
  }

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-poll-ms") || "1500", 10);
    if (live) live.hidden = false;
    function tick() {
      if (document.hidden) { setTimeout(tick, every); return; }
      fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (res) {
          if (!res.ok) throw new Error("HTTP " + res.status);
          return res.text();
        })
        .then(function (html) {
          if (failures) setBanner("Reconnected");
          if (failures) setTimeout(function () { setBanner(""); }, 2000);
          failures = 0;
          if (html.trim() !== el.innerHTML.trim()) {
            el.innerHTML = html;
            el.setAttribute("aria-busy", "false");
          }
          if (el.querySelector("[data-final]")) {
            el.removeAttribute("data-poll");
            if (live) live.hidden = true;
            return;
          }
          setTimeout(tick, every);
        })
        .catch(function () {
          failures += 1;
          setBanner("Live updates lost — reconnecting…");
          setTimeout(tick, Math.min(every * (failures + 1), 10000));
        });
    }
    setTimeout(tick, every);
  }

  function checkJson(area) {
    var out = document.getElementById(area.getAttribute("aria-describedby"));
    var text = area.value.trim();
    var message = "";
    if (text) {
      try {
        var value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          message = "data must be a JSON object, e.g. {\"user_id\": \"u1\"}";
        }
      } catch (err) {
        message = err.message;
      }
    }
    if (out) out.textContent = message;
    area.setAttribute("aria-invalid", message ? "true" : "false");
    var button = area.form && area.form.querySelector("button[type=submit]");
    if (button) button.disabled = !!message;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
    // Delegated: forms that arrive in a polled fragment (a run that just finished gets
    // Rerun / Redrive) ask too.
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!(form instanceof HTMLFormElement)) return;
      if (form.hasAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
        ev.preventDefault();
        return;
      }
      if (form.hasAttribute("data-once")) {
        if (form.getAttribute("data-sent")) { ev.preventDefault(); return; }
        form.setAttribute("data-sent", "1");  // a double click makes one new run, not two
        var button = form.querySelector("button[type=submit]");
        if (button) setTimeout(function () { button.disabled = true; }, 0);
      }
    });
    document.querySelectorAll("textarea[data-json-editor]").forEach(function (area) {
      var timer = null;
      area.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { checkJson(area); }, 200);
      });
      area.form.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
          ev.preventDefault();
          checkJson(area);
          if (area.getAttribute("aria-invalid") !== "true") area.form.submit();
        }
      });
    });
  });
})();
