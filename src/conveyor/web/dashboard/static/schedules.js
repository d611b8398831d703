// Conveyor dashboard, schedules: shows times in the browser's time zone (kept in the
// conveyor_tz cookie the server reads), builds cron expressions from simple choices,
// and previews the expression as it is typed (the server explains it and lists the
// next runs, with the code the scheduler itself uses). Without JavaScript the pages
// show UTC and the form is checked when it is sent.
(function () {
  "use strict";

  var ZONE_COOKIE = "conveyor_tz";
  var ZONE_NAME = /^[A-Za-z0-9_+\-\/]{1,64}$/;
  var PREVIEW_DELAY = 250;

  function cookie(name) {
    var found = document.cookie.split("; ").filter(function (part) {
      return part.indexOf(name + "=") === 0;
    })[0];
    return found ? found.slice(name.length + 1) : null;
  }

  function browserZone() {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      return zone && ZONE_NAME.test(zone) ? zone : null;
    } catch (e) { return null; }
  }

  // Remember the browser's zone; reload once when this page was drawn in another one
  // that the viewer did not ask for (?tz= in the URL wins).
  function keepZone() {
    var zone = browserZone();
    if (!zone) { return; }
    if (cookie(ZONE_COOKIE) !== zone) {
      document.cookie = ZONE_COOKIE + "=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
    var shown = document.querySelector("[data-zone-shown]");
    var explicit = document.querySelector("[data-zone-explicit]");
    if (shown && !explicit && shown.getAttribute("data-zone-shown") !== zone &&
        cookie(ZONE_COOKIE) === zone && remember("conveyor-zone-reloaded", "1") === null) {
      window.location.reload(); // once: the flag stops a loop if the server disagrees
      return;
    }
    remember("conveyor-zone-reloaded", null);
    var form = document.getElementById("schedule-form");
    var field = document.getElementById("field-timezone");
    if (form && field && form.getAttribute("data-default-zone") === field.value) {
      field.value = zone; // a new schedule starts in the viewer's zone
    }
  }

  // Set (or, with null, clear) a flag for this tab; its value before, or null.
  function remember(key, value) {
    try {
      var before = window.sessionStorage.getItem(key);
      if (value === null) { window.sessionStorage.removeItem(key); }
      else { window.sessionStorage.setItem(key, value); }
      return before;
    } catch (e) { return "unavailable"; } // no storage: never reload
  }

  // -- the cron builder ---------------------------------------------------------------

  // The expressions the builder makes, with the range of each number they hold.
  var PATTERNS = [
    ["minutes", /^\*\/(\d+) \* \* \* \*$/, [[1, 59]]],
    ["hourly", /^(\d+) \* \* \* \*$/, [[0, 59]]],
    ["daily", /^(\d+) (\d+) \* \* \*$/, [[0, 59], [0, 23]]],
    ["weekly", /^(\d+) (\d+) \* \* ([0-7](?:,[0-7])*)$/, [[0, 59], [0, 23]]],
    ["monthly", /^(\d+) (\d+) (\d+) \* \*$/, [[0, 59], [0, 23], [1, 31]]]
  ];

  function fits(match, ranges) {
    return ranges.every(function (range, index) {
      var value = parseInt(match[index + 1], 10);
      return value >= range[0] && value <= range[1];
    });
  }

  function Builder(root, cronField, onChange) {
    this.root = root;
    this.cron = cronField;
    this.onChange = onChange;
    this.mode = root.querySelector("#cb-mode");
    this.step = root.querySelector("#cb-step");
    this.minute = root.querySelector("#cb-minute");
    this.time = root.querySelector("#cb-time");
    this.day = root.querySelector("#cb-day");
    this.days = Array.prototype.slice.call(root.querySelectorAll("[data-cb-day]"));
  }

  Builder.prototype.start = function () {
    var self = this;
    self.root.hidden = false;
    self.read(self.cron.value);
    self.root.addEventListener("input", function (event) {
      if (event.target === self.mode) { return; }
      self.write();
    });
    self.root.addEventListener("change", function () { self.showControls(); self.write(); });
    self.cron.addEventListener("input", function () { self.read(self.cron.value); });
  };

  Builder.prototype.showControls = function () {
    var mode = this.mode.value;
    this.root.querySelectorAll("[data-cb-for]").forEach(function (control) {
      control.hidden = control.getAttribute("data-cb-for").split(" ").indexOf(mode) < 0;
    });
  };

  // Set the controls from an expression typed by hand (anything else is "custom").
  Builder.prototype.read = function (expression) {
    var text = expression.trim().split(/\s+/).join(" ");
    var mode = "custom";
    var self = this;
    PATTERNS.some(function (pattern) {
      var match = pattern[1].exec(text);
      if (!match || !fits(match, pattern[2])) { return false; }
      mode = pattern[0];
      self.fill(mode, match);
      return true;
    });
    self.mode.value = mode;
    self.showControls();
  };

  Builder.prototype.fill = function (mode, match) {
    if (mode === "minutes") { this.step.value = match[1]; return; }
    if (mode === "hourly") { this.minute.value = match[1]; return; }
    this.time.value = pad(match[2]) + ":" + pad(match[1]);
    if (mode === "weekly") {
      var chosen = match[3].split(",").map(function (d) { return d === "7" ? "0" : d; });
      this.days.forEach(function (box) { box.checked = chosen.indexOf(box.value) >= 0; });
    }
    if (mode === "monthly") { this.day.value = match[3]; }
  };

  Builder.prototype.expression = function () {
    var mode = this.mode.value;
    var parts = (this.time.value || "00:00").split(":");
    var at = String(parseInt(parts[1], 10) || 0) + " " + String(parseInt(parts[0], 10) || 0);
    if (mode === "minutes") { return "*/" + (this.step.value || "15") + " * * * *"; }
    if (mode === "hourly") { return (this.minute.value || "0") + " * * * *"; }
    if (mode === "daily") { return at + " * * *"; }
    if (mode === "weekly") {
      var days = this.days.filter(function (box) { return box.checked; })
        .map(function (box) { return box.value; });
      return at + " * * " + (days.length ? days.join(",") : "*");
    }
    if (mode === "monthly") { return at + " " + (this.day.value || "1") + " * *"; }
    return null;
  };

  Builder.prototype.write = function () {
    var expression = this.expression();
    if (expression === null || expression === this.cron.value) { return; }
    this.cron.value = expression;
    this.onChange();
  };

  function pad(number) { return ("0" + parseInt(number, 10)).slice(-2); }

  // -- the preview --------------------------------------------------------------------

  function Preview(box, cronField, zoneField) {
    this.box = box;
    this.cron = cronField;
    this.zone = zoneField;
    this.url = box.getAttribute("data-preview-url");
    this.timer = null;
    this.sent = 0;
  }

  Preview.prototype.request = function () {
    var self = this;
    clearTimeout(self.timer);
    self.timer = setTimeout(function () { self.load(); }, PREVIEW_DELAY);
  };

  Preview.prototype.load = function () {
    var self = this;
    var number = ++self.sent;
    var query = new URLSearchParams({ cron: self.cron.value, timezone: self.zone.value });
    self.box.setAttribute("aria-busy", "true");
    fetch(self.url + "?" + query.toString(), {
      headers: { "X-Dashboard-Fragment": "1" }, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null || number !== self.sent) { return; } // a later answer is coming
      self.box.innerHTML = html;
      self.mark();
    }).catch(function () { /* kept as it was; the form is checked when sent */ })
      .then(function () { if (number === self.sent) { self.box.removeAttribute("aria-busy"); } });
  };

  // Flag the field the server named, as the form does after a refused submit.
  Preview.prototype.mark = function () {
    var problem = this.box.querySelector("[data-valid=false]");
    var field = problem ? problem.getAttribute("data-field") : null;
    [this.cron, this.zone].forEach(function (input) {
      if (input.name === field) { input.setAttribute("aria-invalid", "true"); }
      else { input.removeAttribute("aria-invalid"); }
    });
  };

  function startForm() {
    var box = document.getElementById("cron-preview");
    var cronField = document.getElementById("field-cron");
    var zoneField = document.getElementById("field-timezone");
    if (!box || !cronField || !zoneField) { return; }
    var preview = new Preview(box, cronField, zoneField);
    cronField.addEventListener("input", function () { preview.request(); });
    zoneField.addEventListener("input", function () { preview.request(); });
    var builder = document.getElementById("cron-builder");
    if (builder) { new Builder(builder, cronField, function () { preview.request(); }).start(); }
    if (cronField.value) { preview.request(); }
  }

  function start() {
    keepZone();
    startForm();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
