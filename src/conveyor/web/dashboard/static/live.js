// Conveyor dashboard: live updates over Server-Sent Events, and two small form helpers.
// Parts of a page marked data-fragment="URL" are fetched again (as server-rendered HTML)
// when an event whose type starts with one of data-refresh-on arrives; progress events
// move progress bars in place. A lost connection shows a banner; on reconnect the
// browser resends Last-Event-ID and every fragment is fetched again to catch up.
(function () {
  "use strict";

  var EVENT_TYPES = [
    "job.enqueued", "job.available", "job.started", "job.progress", "job.note",
    "job.artifact", "job.succeeded", "job.retrying", "job.discarded", "job.cancelled",
    "job.retried", "job.rescued", "job.edited", "queue.paused", "queue.resumed",
    "queue.changed", "schedule.fired", "schedule.skipped"
  ];
  var BANNER_DELAY = 1500;
  var REOPEN_DELAY = 3000;

  function Fragment(element) {
    this.element = element;
    this.url = element.getAttribute("data-fragment");
    this.prefixes = (element.getAttribute("data-refresh-on") || "").split(" ").filter(Boolean);
    this.throttle = parseInt(element.getAttribute("data-throttle") || "1000", 10);
    this.busy = false;
    this.again = false;
    this.timer = null;
    this.last = 0;
  }

  Fragment.prototype.wants = function (type) {
    return this.prefixes.some(function (prefix) { return type.indexOf(prefix) === 0; });
  };

  Fragment.prototype.request = function () {
    var self = this;
    if (self.busy) { self.again = true; return; }
    if (self.timer) { return; }
    var wait = Math.max(0, self.last + self.throttle - Date.now());
    self.timer = setTimeout(function () { self.timer = null; self.load(); }, wait);
  };

  Fragment.prototype.load = function () {
    var self = this;
    if (typing(self.element)) {
      self.again = false;
      self.timer = setTimeout(function () { self.timer = null; self.load(); }, 1000);
      return; // someone is typing in it: try again later
    }
    self.busy = true;
    self.last = Date.now();
    fetch(self.url, {
      headers: { "X-Dashboard-Fragment": "1" }, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html !== null) { replace(self.element, html); }
    }).catch(function () { /* the stream's banner tells about lost connections */ })
      .then(function () {
        self.busy = false;
        if (self.again) { self.again = false; self.request(); }
      });
  };

  function typing(element) {
    var active = document.activeElement;
    return Boolean(active && element.contains(active) && active.matches("input, select, textarea"));
  }

  function rowStates(element) {
    var states = {};
    element.querySelectorAll("tr[data-job]").forEach(function (row) {
      states[row.getAttribute("data-job")] = row.getAttribute("data-state");
    });
    return states;
  }

  function replace(element, html) {
    var before = rowStates(element);
    var opened = {};
    element.querySelectorAll("details[data-key]").forEach(function (d) {
      opened[d.getAttribute("data-key")] = d.open;
    });
    element.innerHTML = html;
    element.querySelectorAll("details[data-key]").forEach(function (d) {
      var key = d.getAttribute("data-key");
      if (key in opened) { d.open = opened[key]; }
    });
    var hadRows = Object.keys(before).length > 0;
    element.querySelectorAll("tr[data-job]").forEach(function (row) {
      var id = row.getAttribute("data-job");
      if (hadRows && before[id] !== row.getAttribute("data-state")) { row.classList.add("flash"); }
    });
  }

  function moveProgress(event) {
    var data = event.data || {};
    if (typeof data.progress !== "number") { return; }
    var percent = Math.max(0, Math.min(100, Math.round(data.progress * 100)));
    document.querySelectorAll('[data-progress-for="' + event.job_id + '"]').forEach(function (box) {
      var bar = box.querySelector("progress");
      var text = box.querySelector(".progress-text");
      if (bar) { bar.value = percent; bar.textContent = percent + "%"; }
      if (text) { text.textContent = percent + "%"; }
    });
    document.querySelectorAll('[data-progress-message-for="' + event.job_id + '"]').forEach(
      function (line) { line.textContent = data.message || ""; }
    );
  }

  function Stream(url, fragments) {
    this.url = url;
    this.fragments = fragments;
    this.banner = document.getElementById("live-banner");
    this.lastId = null;
    this.lost = false;
    this.bannerTimer = null;
    this.open();
  }

  Stream.prototype.open = function () {
    var self = this;
    var url = self.url;
    if (self.lastId) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(self.lastId);
    }
    var source = new EventSource(url);
    self.source = source;
    source.onopen = function () {
      if (self.lost) { self.fragments.forEach(function (f) { f.request(); }); }
      self.lost = false;
      self.showBanner(false);
      liveState("open");
    };
    source.onerror = function () {
      self.lost = true;
      liveState("lost");
      if (!self.bannerTimer) {
        self.bannerTimer = setTimeout(function () {
          self.bannerTimer = null;
          if (self.lost) { self.showBanner(true); }
        }, BANNER_DELAY);
      }
      if (source.readyState === EventSource.CLOSED) { // refused: try again, from where we were
        setTimeout(function () { self.open(); }, REOPEN_DELAY);
        self.fragments.forEach(function (f) { f.request(); }); // a 401 here goes to sign-in
      }
    };
    EVENT_TYPES.forEach(function (type) {
      source.addEventListener(type, function (message) { self.receive(type, message); });
    });
  };

  Stream.prototype.receive = function (type, message) {
    if (message.lastEventId) { this.lastId = message.lastEventId; }
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    if (type === "job.progress") { moveProgress(event); return; }
    this.fragments.forEach(function (f) { if (f.wants(type)) { f.request(); } });
  };

  Stream.prototype.showBanner = function (shown) {
    if (this.banner) { this.banner.hidden = !shown; }
  };

  function liveState(state) { document.body.setAttribute("data-live-state", state); }

  function formHelpers() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll(".js-hide").forEach(function (element) { element.hidden = true; });
    document.addEventListener("submit", function (event) {
      var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
      if (question && !window.confirm(question)) { event.preventDefault(); }
    });
  }

  function start() {
    formHelpers();
    var fragments = [];
    document.querySelectorAll("[data-fragment]").forEach(function (element) {
      var fragment = new Fragment(element);
      fragments.push(fragment);
      var every = parseInt(element.getAttribute("data-poll") || "0", 10);
      if (every > 0) { setInterval(function () { fragment.request(); }, every); }
    });
    var url = document.body.getAttribute("data-stream");
    if (url && window.EventSource) {
      window.conveyorLive = new Stream(url, fragments.filter(function (f) { return f.prefixes.length; }));
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
