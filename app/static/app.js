// talkroom's page behaviour, on top of htmx and its ws extension. No inline
// scripts anywhere, so a strict Content-Security-Policy can apply. Nothing
// here renders messages: the server renders each one once, for everybody;
// this file only decorates what htmx swapped in (local times, grouping).
(function () {
  "use strict";

  var NEAR_BOTTOM = 48; // px: closer than this to the end counts as "at the end"
  var GROUP_GAP = 5 * 60 * 1000; // ms: a pause longer than this starts a new group
  var COUNTER_FROM = 200; // characters left when the counter appears

  function $(id) { return document.getElementById(id); }
  function messages() { return $("messages"); }

  function lastSeq() {
    var items = document.querySelectorAll("#messages [data-seq]");
    return items.length ? items[items.length - 1].getAttribute("data-seq") : "0";
  }

  // Every (re)connect of a room socket tells the server which messages we hold,
  // so it sends exactly the ones we missed: ?after=SEQ is part of the handshake.
  // (The home page's lobby socket carries no messages.)
  var createWebSocket = htmx.createWebSocket;
  htmx.createWebSocket = function (url) {
    var target = new URL(url, location.href);
    if (target.pathname.indexOf("/ws/rooms/") === 0) {
      target.searchParams.set("after", lastSeq());
    }
    return createWebSocket(target.toString());
  };

  // Reconnect soon after a drop, backing off to a few seconds ("equal jitter":
  // never immediately, so a restarted server is not hit by everyone at once).
  htmx.config.wsReconnectDelay = function (retries) {
    var cap = Math.min(500 * Math.pow(2, retries), 5000);
    return cap / 2 + Math.random() * cap / 2;
  };

  // crypto.randomUUID needs a secure context; getRandomValues does not.
  function clientId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // ---- Messages: local times and grouping -------------------------------

  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  var dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
  var fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

  function localizeTimes(root) {
    var today = new Date().toDateString();
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var text = timeFormat.format(when);
      if (when.toDateString() !== today) text = dayFormat.format(when) + ", " + text;
      el.textContent = text;
      el.title = fullFormat.format(when);
      el.setAttribute("data-local", "");
    });
  }

  function stamp(msg) {
    var time = msg.querySelector("time[datetime]");
    return time ? Date.parse(time.getAttribute("datetime")) : NaN;
  }

  // Consecutive messages from one author, close in time, form a group: only
  // the first shows the name. Done here because a message is rendered before
  // anyone knows what it will follow on each page.
  function regroup() {
    var list = messages();
    if (!list) return;
    var prev = null;
    for (var el = list.firstElementChild; el; el = el.nextElementSibling) {
      if (!el.classList.contains("msg")) {
        prev = null;
        continue;
      }
      var follows = prev !== null &&
        prev.getAttribute("data-author") === el.getAttribute("data-author") &&
        stamp(el) - stamp(prev) < GROUP_GAP;
      el.classList.toggle("follows", follows);
      prev = el;
    }
  }

  function decorate() {
    var list = messages();
    if (!list) return;
    localizeTimes(list);
    regroup();
  }

  // ---- Scrolling ---------------------------------------------------------

  function atBottom(list) {
    return list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM;
  }

  function scrollToEnd() {
    var list = messages();
    if (list) list.scrollTop = list.scrollHeight;
    showPill(false);
  }

  function showPill(show) {
    var pill = $("new-messages");
    if (pill) pill.hidden = !show;
  }

  // Online counts come for every room, also ones created since this page
  // loaded: give their badge somewhere to land (htmx reports an out-of-band
  // swap without a target as an error), and fetch the fresh room list.
  function adoptNewRooms(html) {
    var rooms = $("rooms");
    var found = html.match(/id="online-\d+"/g);
    if (!rooms || !found) return;
    var missing = found.map(function (attr) { return attr.slice(4, -1); })
      .filter(function (id) { return !$(id); });
    if (!missing.length) return;
    var holder = document.createElement("div");
    holder.hidden = true;
    missing.forEach(function (id) {
      var slot = document.createElement("span");
      slot.id = id;
      holder.appendChild(slot);
    });
    rooms.appendChild(holder);
    htmx.trigger(rooms, "refresh");
  }

  // Measured just before a frame is swapped in: stick to the end only when
  // the reader was already there; otherwise say that something new arrived.
  var wasAtBottom = true;
  var seqBefore = "0";
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    adoptNewRooms(event.detail.message);
    var list = messages();
    wasAtBottom = !list || atBottom(list);
    seqBefore = lastSeq();
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    decorate();
    if (wasAtBottom) {
      scrollToEnd();
    } else if (lastSeq() !== seqBefore) {
      showPill(true);
    }
  });

  // A reader at the end stays there when the list gets shorter: a phone's
  // keyboard opening, the text box growing by a line, the window resized.
  var pinned = true;
  document.addEventListener("scroll", function (event) {
    if (event.target.id !== "messages") return;
    pinned = atBottom(event.target);
    if (pinned) showPill(false);
  }, true);
  var resized = window.ResizeObserver && new ResizeObserver(function () {
    var list = messages();
    if (list && pinned) list.scrollTop = list.scrollHeight;
  });
  function watchSize() {
    var list = messages();
    if (!resized || !list) return;
    resized.disconnect();
    resized.observe(list);
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("#new-messages")) {
      scrollToEnd();
      var input = $("message-input");
      if (input) input.focus({ preventScroll: true });
    }
  });

  // Older history replaces the sentinel at the top of the list. Keep the
  // distance from the bottom, so what the reader looks at stays in place.
  var fromBottom = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var list = messages();
    fromBottom = target && target.classList.contains("older") && list
      ? list.scrollHeight - list.scrollTop
      : null;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = messages();
    if (fromBottom !== null && list && list.contains(event.target)) {
      decorate();
      list.scrollTop = list.scrollHeight - fromBottom;
    }
  });

  // ---- Sending -----------------------------------------------------------

  // A fresh id per frame makes a resent frame idempotent on the server; an id
  // baked into the form would be shared by two messages queued while offline.
  document.addEventListener("htmx:wsConfigSend", function (event) {
    event.detail.parameters.client_id = clientId();
    delete event.detail.headers;
    var error = $("chat-error");
    if (error) error.textContent = "";
  });

  document.addEventListener("htmx:wsAfterSend", function (event) {
    var input = event.target.querySelector("[name=message]");
    if (input) {
      input.value = "";
      input.focus();
      updateCounter(input);
    }
    scrollToEnd(); // your own message is what you want to see next
  });

  // Enter sends, Shift+Enter makes a new line; nothing is sent while offline
  // (the text stays in the box).
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (input.id !== "message-input" || event.key !== "Enter" || event.shiftKey || event.isComposing) {
      return;
    }
    event.preventDefault();
    var button = input.form.querySelector("button[type=submit]");
    if (input.value.trim() && !(button && button.disabled)) {
      input.form.requestSubmit();
    }
  });

  function updateCounter(input) {
    var counter = $("message-counter");
    if (!counter) return;
    var left = input.maxLength - input.value.length;
    var show = input.maxLength > 0 && left <= COUNTER_FROM;
    counter.hidden = !show;
    counter.textContent = show ? left + " characters left" : "";
    counter.classList.toggle("low", show && left <= 20);
  }
  document.addEventListener("input", function (event) {
    if (event.target.id === "message-input") updateCounter(event.target);
  });

  // ---- Connection state --------------------------------------------------

  function setConnected(socketElt, connected, text) {
    var banner = socketElt.querySelector("#connection");
    if (banner) {
      banner.hidden = connected;
      if (text) banner.textContent = text;
    }
    var button = socketElt.querySelector("#send-form button[type=submit]");
    if (button) button.disabled = !connected;
  }
  document.addEventListener("htmx:wsOpen", function (event) {
    setConnected(event.target, true);
  });
  document.addEventListener("htmx:wsClose", function (event) {
    var code = event.detail.event && event.detail.event.code;
    // 1008: signed out, or the room is gone; htmx does not retry that.
    setConnected(event.target, false, code === 1008
      ? "You are disconnected (signed out, or the room was removed). Reload the page."
      : "Connection lost. Reconnecting…");
  });

  // ---- Rooms -------------------------------------------------------------

  function currentRoom() {
    var room = document.querySelector(".room[data-room]");
    return room ? room.getAttribute("data-room") : null;
  }

  function markCurrentRoom() {
    var id = currentRoom();
    document.querySelectorAll("[data-room-link]").forEach(function (link) {
      if (link.getAttribute("data-room-link") === id) {
        link.setAttribute("aria-current", "page");
      } else {
        link.removeAttribute("aria-current");
      }
    });
  }

  function setDrawer(open) {
    var toggle = document.querySelector(".rooms-toggle");
    var rooms = $("rooms");
    if (!toggle || !rooms) return;
    toggle.setAttribute("aria-expanded", String(open));
    rooms.classList.toggle("open", open);
  }

  // The room list collapses behind a button on narrow screens.
  document.addEventListener("click", function (event) {
    if (!event.target.closest(".rooms-toggle")) return;
    var open = !$("rooms").classList.contains("open");
    setDrawer(open);
    if (open) {
      var first = document.querySelector("#rooms a");
      if (first) first.focus();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && $("rooms") && $("rooms").classList.contains("open")) {
      setDrawer(false);
      document.querySelector(".rooms-toggle").focus();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "chat") {
      // A room opened: start at its newest message.
      setDrawer(false);
      decorate();
      pinned = true;
      scrollToEnd();
      watchSize();
      markCurrentRoom();
      var title = $("room-title");
      if (title) document.title = title.textContent + " · talkroom";
      if (window.matchMedia("(min-width: 701px)").matches) {
        var input = $("message-input");
        if (input) input.focus({ preventScroll: true });
      }
    } else if (target && target.id === "rooms") {
      markCurrentRoom();
    }
  });

  // The skip link goes to the message box, or to the rooms while none is open.
  document.addEventListener("click", function (event) {
    if (!event.target.closest(".skip")) return;
    event.preventDefault();
    var target = $("message-input") || document.querySelector("#rooms a");
    if (target) target.focus();
  });

  // ---- Start -------------------------------------------------------------

  // Your own messages are set apart by one style rule keyed on your name, so
  // every message is rendered once for everybody.
  function styleOwnMessages() {
    var me = document.body.getAttribute("data-me");
    if (!me || !window.CSSStyleSheet || !document.adoptedStyleSheets) return;
    var sheet = new CSSStyleSheet();
    sheet.replaceSync('.msg[data-author="' + CSS.escape(me) + '"] { ' +
      "align-self: flex-end; background: var(--mine); border-color: var(--mine-line); }");
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
  }

  function start() {
    styleOwnMessages();
    decorate();
    scrollToEnd();
    watchSize();
    markCurrentRoom();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
