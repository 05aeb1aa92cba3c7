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

  // The highest seq this page has applied: seqs number every change in a room
  // (new messages, edits, deletes), so it is the highest of the messages' own
  // seqs and revs (the seq of their latest change) and of #room-seq, where the
  // page load and each catch-up leave the seq they brought the room up to.
  function appliedSeq() {
    var top = 0;
    var mark = $("room-seq");
    if (mark) top = Number(mark.getAttribute("data-seq")) || 0;
    document.querySelectorAll("#messages [data-rev]").forEach(function (el) {
      top = Math.max(top, Number(el.getAttribute("data-rev")) || 0,
        Number(el.getAttribute("data-seq")) || 0);
    });
    return top;
  }

  // Every (re)connect of a room socket tells the server which changes we hold,
  // so it sends exactly the ones we missed: ?after=SEQ is part of the handshake.
  // (The home page's lobby socket carries no messages.)
  var createWebSocket = htmx.createWebSocket;
  htmx.createWebSocket = function (url) {
    var target = new URL(url, location.href);
    if (target.pathname.indexOf("/ws/rooms/") === 0) {
      target.searchParams.set("after", String(appliedSeq()));
    }
    return createWebSocket(target.toString());
  };

  // A changed message comes as its element alone, swapped in place of the one
  // with its id. One this page does not show (older than what it loaded) is
  // given a hidden stand-in to land on, removed after the swap: htmx reports an
  // out-of-band swap without a target as an error.
  var standIns = null;
  function standInForChanges(html) {
    if (html.indexOf("<article") !== 0) return; // new messages come in #messages
    var parsed = document.createElement("template");
    parsed.innerHTML = html;
    Array.prototype.forEach.call(parsed.content.children, function (el) {
      if (el.tagName !== "ARTICLE" || !el.id || $(el.id)) return;
      if (!standIns) {
        standIns = document.createElement("div");
        standIns.hidden = true;
        document.body.appendChild(standIns);
      }
      var slot = document.createElement("article");
      slot.id = el.id;
      standIns.appendChild(slot);
    });
  }
  function dropStandIns() {
    if (standIns) standIns.remove();
    standIns = null;
  }

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

  // Each message's "copy link": its permalink, added here so that a message is
  // still rendered once for every room it could be linked from.
  function addLinks(list) {
    var room = currentRoom();
    if (!room) return;
    // Not in the header: a message that follows its author's previous one hides it.
    list.querySelectorAll(".msg[data-seq]:not([data-linked]):not([data-deleted])").forEach(function (msg) {
      var link = document.createElement("a");
      link.className = "copy-link";
      link.href = "/rooms/" + room + "/messages/" + msg.getAttribute("data-seq");
      link.setAttribute("aria-label", "Copy link to this message");
      link.title = "Copy link";
      link.textContent = "🔗";
      msg.appendChild(link);
      msg.setAttribute("data-linked", "");
    });
  }

  // Each message's buttons (react; edit and delete, shown by the viewer's CSS
  // rules) are added here, not sent: the fragment every socket receives stays
  // as small as before. A changed message arrives without them and gets them again.
  function addTools(root) {
    root.querySelectorAll(".msg:not([data-tools]):not([data-deleted])").forEach(function (el) {
      el.setAttribute("data-tools", "");
      var actions = document.createElement("div");
      actions.className = "msg-actions";
      [["msg-edit", "Edit"], ["msg-delete", "Delete"]].forEach(function (kind) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = kind[0];
        button.textContent = kind[1];
        actions.appendChild(button);
      });
      var react = document.createElement("button");
      react.type = "button";
      react.className = "msg-react";
      react.setAttribute("aria-label", "Add a reaction");
      react.title = "Add a reaction";
      react.textContent = "☺+";
      el.appendChild(actions);
      el.appendChild(react);
    });
  }

  function decorate() {
    var list = messages();
    if (!list) return;
    localizeTimes(list);
    addLinks(list);
    addTools(list);
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
    var found = html.match(/id="(online|unread|activity)-\d+"/g);
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
    standInForChanges(event.detail.message);
    // A room was taken from (or given to) this user: fetch the room list again.
    if (event.detail.message.indexOf('id="rooms-changed"') !== -1 && $("rooms")) {
      htmx.trigger($("rooms"), "refresh");
    }
    var list = messages();
    wasAtBottom = !list || atBottom(list);
    seqBefore = lastSeq();
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    dropStandIns();
    decorate();
    if (wasAtBottom) {
      scrollToEnd();
    } else if (lastSeq() !== seqBefore) {
      showPill(true);
    }
    arrived(Number(seqBefore));
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
    if (list && pinned && !list.querySelector(".newer")) list.scrollTop = list.scrollHeight;
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

  // ---- Permalinks ----------------------------------------------------------

  // A permalink opens the room around one message: show it, marked, in the middle
  // of the list. Newer history loads below it as the reader scrolls down (the
  // "newer" sentinel); once none is left the room's socket connects and the list
  // goes on live from its last message (?after=, as on every connect).
  function showHighlighted() {
    var room = document.querySelector(".room[data-highlight]");
    var list = messages();
    if (!room || !list) return false;
    var seq = room.getAttribute("data-highlight");
    var target = list.querySelector('.msg[data-seq="' + CSS.escape(seq) + '"]');
    if (!target) return false;
    target.classList.add("highlight");
    target.setAttribute("aria-current", "true");
    pinned = false;
    target.scrollIntoView({ block: "center" });
    return true;
  }

  function goLiveWhenNewest() {
    var room = document.querySelector(".room[data-ws-later]");
    var list = messages();
    if (!room || !list || list.querySelector(".newer")) return;
    room.setAttribute("ws-connect", room.getAttribute("data-ws-later"));
    room.removeAttribute("data-ws-later");
    htmx.process(room);
  }

  var loadingNewer = false;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    loadingNewer = !!(target && target.classList.contains("newer"));
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!loadingNewer) return;
    loadingNewer = false;
    decorate();
    goLiveWhenNewest();
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
    typingSentAt = 0;
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
    if (event.target.id !== "message-input") return;
    updateCounter(event.target);
    suggestMentions(event.target);
    if (event.target.value.trim()) sayTyping();
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
      if (!showHighlighted()) scrollToEnd();
      watchSize();
      markCurrentRoom();
      var title = $("room-title");
      baseTitle = title ? title.textContent + " · talkroom" : "talkroom";
      roomOpened();
      if (window.matchMedia("(min-width: 701px)").matches) {
        var input = $("message-input");
        if (input) input.focus({ preventScroll: true });
      }
    } else if (target && target.id === "rooms") {
      markCurrentRoom();
      noteActivity(false);
      updateTitle();
    }
  });

  // The skip link goes to the message box, or to the rooms while none is open.
  document.addEventListener("click", function (event) {
    if (!event.target.closest(".skip")) return;
    event.preventDefault();
    var target = $("message-input") || document.querySelector("#rooms a");
    if (target) target.focus();
  });

  // ---- Frames of our own over the room's socket ---------------------------

  // The ws extension keeps its socket in the element's htmx data; a frame for it
  // goes only while it is open (a read or a typing note is worth nothing later).
  function sendFrame(frame) {
    var room = document.querySelector(".room[ws-connect]");
    var data = room && room["htmx-internal-data"];
    var wrapper = data && data.webSocket;
    if (!wrapper || !wrapper.socket || wrapper.socket.readyState !== 1) return false;
    wrapper.socket.send(JSON.stringify(frame));
    return true;
  }

  function highestSeq() {
    var top = 0;
    document.querySelectorAll("#messages [data-seq]").forEach(function (el) {
      top = Math.max(top, Number(el.getAttribute("data-seq")) || 0);
    });
    return top;
  }

  // ---- Unread: reading, badges, the title, the "new messages" line ---------

  var baseTitle = document.title;
  var readSent = 0;
  var readTimer = null;
  var seen = {}; // room id -> the newest message seq this page has heard of

  function openRoomId() {
    var id = currentRoom();
    return id === null ? null : String(id);
  }

  // The open room is read while the tab is visible: as messages arrive, when the
  // tab comes back, when the room opens.
  function readSoon() {
    if (readTimer) return;
    readTimer = setTimeout(function () {
      readTimer = null;
      if (document.visibilityState !== "visible") return;
      var seq = highestSeq();
      if (seq > readSent && sendFrame({ read: seq })) readSent = seq;
    }, 200);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") readSoon();
  });
  document.addEventListener("htmx:wsOpen", function () { readSoon(); });

  function updateTitle() {
    var total = 0;
    document.querySelectorAll("#rooms [data-unread]").forEach(function (el) {
      total += Number(el.getAttribute("data-unread")) || 0;
    });
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  }

  // Another room (or this one, while the tab is hidden) got a message: fetch the
  // room list again, with this user's exact counts.
  var REFRESH_EVERY = 2000; // ms
  var refreshTimer = null;
  var refreshedAt = 0;
  function noteActivity(refresh) {
    var open = document.visibilityState === "visible" ? openRoomId() : null;
    var moved = false;
    document.querySelectorAll("#activity [data-seq]").forEach(function (el) {
      var room = el.getAttribute("data-room");
      var seq = Number(el.getAttribute("data-seq")) || 0;
      if (seen[room] !== undefined && seq > seen[room] && room !== open) moved = true;
      seen[room] = Math.max(seq, seen[room] || 0);
    });
    if (refresh && moved && !refreshTimer) {
      // Soon, but at most once per REFRESH_EVERY: busy rooms must not make every
      // page ask for its counts several times a second.
      var wait = Math.max(300, refreshedAt + REFRESH_EVERY - Date.now());
      refreshTimer = setTimeout(function () {
        refreshTimer = null;
        refreshedAt = Date.now();
        if ($("rooms")) htmx.trigger($("rooms"), "refresh");
      }, wait);
    }
  }

  function unreadLine() {
    var room = document.querySelector(".room[data-read]");
    var list = messages();
    if (!room || !list || list.querySelector(".unread-line")) return;
    var read = Number(room.getAttribute("data-read")) || 0;
    var me = document.body.getAttribute("data-me");
    var first = Array.prototype.find.call(list.querySelectorAll(".msg[data-seq]"), function (el) {
      return Number(el.getAttribute("data-seq")) > read && el.getAttribute("data-author") !== me;
    });
    if (!first) return;
    var line = document.createElement("div");
    line.className = "unread-line";
    line.setAttribute("role", "separator");
    line.textContent = "New messages";
    list.insertBefore(line, first);
  }

  function roomOpened() {
    var room = document.querySelector(".room[data-read]");
    readSent = room ? Number(room.getAttribute("data-read")) || 0 : 0;
    typers = {};
    showTypers();
    unreadLine();
    regroup();
    readSoon();
    updateTitle();
  }

  // A mention in a hidden tab raises a browser notification, when allowed.
  var noted = null;
  function notifyMention() {
    var note = $("mention-note");
    var id = note && note.getAttribute("data-message");
    if (!id || id === noted) return;
    noted = id;
    if (!document.hidden || !window.Notification || Notification.permission !== "granted") return;
    var n = new Notification(note.getAttribute("data-author") + " mentioned you in #" +
      note.getAttribute("data-room-name"), {
      body: note.getAttribute("data-text"),
      tag: "talkroom-mention-" + id, // one per mention, however many tabs are open
    });
    n.onclick = function () { window.focus(); n.close(); };
  }

  function offerNotifications() {
    var button = $("notifications");
    if (!button || !window.Notification) return;
    button.hidden = Notification.permission !== "default";
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest("#notifications") || !window.Notification) return;
    Notification.requestPermission().then(offerNotifications);
  });

  // ---- Typing --------------------------------------------------------------

  var TYPING_SHOWN = 5000; // ms a "typing" note lasts without another
  var TYPING_EVERY = 2500; // ms between this page's own notes (the server allows one per 2 s)
  var typingSentAt = 0;
  var typers = {}; // username -> when their note expires
  var typersTimer = null;

  function sayTyping() {
    var now = Date.now();
    if (now - typingSentAt < TYPING_EVERY) return;
    if (sendFrame({ typing: true })) typingSentAt = now;
  }

  function showTypers() {
    var box = $("typing");
    var now = Date.now();
    var names = Object.keys(typers).filter(function (name) { return typers[name] > now; }).sort();
    Object.keys(typers).forEach(function (name) { if (typers[name] <= now) delete typers[name]; });
    if (box) {
      box.textContent = names.length === 0 ? "" :
        names.length === 1 ? names[0] + " is typing…" :
        names.length === 2 ? names[0] + " and " + names[1] + " are typing…" :
        "Several people are typing…";
    }
    if (typersTimer) clearTimeout(typersTimer);
    typersTimer = names.length ? setTimeout(showTypers, 1000) : null;
  }

  // Typing notes land in a hidden holder; a message from someone ends theirs.
  function arrived(seqBefore) {
    var me = document.body.getAttribute("data-me");
    var holder = $("typing-events");
    if (holder) {
      holder.querySelectorAll("[data-typing]").forEach(function (el) {
        var name = el.getAttribute("data-typing");
        if (name !== me) typers[name] = Date.now() + TYPING_SHOWN;
        el.remove();
      });
    }
    document.querySelectorAll("#messages .msg[data-seq]").forEach(function (el) {
      if (Number(el.getAttribute("data-seq")) > seqBefore) delete typers[el.getAttribute("data-author")];
    });
    showTypers();
    readSoon();
    noteActivity(true);
    updateTitle();
    notifyMention();
  }

  // ---- @mention autocomplete -----------------------------------------------

  var MENTION_AT = /(^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{0,32})$/;
  var suggestTimer = null;
  var asked = 0;

  function mentionToken(input) {
    var before = input.value.slice(0, input.selectionStart);
    var match = before.match(MENTION_AT);
    return match ? { start: before.length - match[2].length - 1, prefix: match[2] } : null;
  }

  function options() { return $("mention-options"); }

  function closeOptions() {
    var list = options();
    var input = $("message-input");
    if (list) { list.hidden = true; list.innerHTML = ""; }
    if (input) input.removeAttribute("aria-activedescendant");
  }

  function chooseOption(index) {
    var list = options();
    var input = $("message-input");
    if (!list || !input) return;
    var items = list.querySelectorAll("[role=option]");
    items.forEach(function (item, i) { item.setAttribute("aria-selected", String(i === index)); });
    if (items[index]) input.setAttribute("aria-activedescendant", items[index].id);
  }

  function selected() {
    var list = options();
    var items = list ? Array.prototype.slice.call(list.querySelectorAll("[role=option]")) : [];
    return { items: items, index: items.findIndex(function (i) { return i.getAttribute("aria-selected") === "true"; }) };
  }

  function insertMention(name) {
    var input = $("message-input");
    var token = input && mentionToken(input);
    if (!token) return closeOptions();
    var after = input.value.slice(input.selectionStart);
    var text = "@" + name + " ";
    input.value = input.value.slice(0, token.start) + text + after;
    var caret = token.start + text.length;
    input.setSelectionRange(caret, caret);
    closeOptions();
    updateCounter(input);
  }

  function suggestMentions(input) {
    var token = mentionToken(input);
    if (!token) return closeOptions();
    if (suggestTimer) clearTimeout(suggestTimer);
    suggestTimer = setTimeout(function () {
      var ask = ++asked;
      var url = input.getAttribute("data-suggest") + "?q=" + encodeURIComponent(token.prefix);
      fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          var list = options();
          if (ask !== asked || !list || !mentionToken(input)) return;
          list.innerHTML = html; // the server's fragment: escaped names in <li>s
          list.hidden = !list.children.length;
          if (!list.hidden) chooseOption(0);
        });
    }, 80);
  }

  // Before the Enter-sends handler: while suggestions show, the keys are theirs.
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "message-input" || event.isComposing) return;
    var list = options();
    if (!list || list.hidden) return;
    var pick = selected();
    if (!pick.items.length) return;
    var n = pick.items.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      chooseOption((pick.index + (event.key === "ArrowDown" ? 1 : n - 1)) % n);
    } else if (event.key === "Enter" || event.key === "Tab") {
      insertMention(pick.items[Math.max(pick.index, 0)].getAttribute("data-name"));
    } else if (event.key === "Escape") {
      closeOptions();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
  document.addEventListener("mousedown", function (event) {
    var option = event.target.closest && event.target.closest("#mention-options [role=option]");
    if (!option) return;
    event.preventDefault(); // keep the focus in the text box
    insertMention(option.getAttribute("data-name"));
  });
  document.addEventListener("focusout", function (event) {
    if (event.target.id === "message-input") setTimeout(closeOptions, 150);
  });

  // ---- Copy link, search box ------------------------------------------------

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on another host: the clipboard API is missing there.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".copy-link");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    var url = new URL(link.getAttribute("href"), location.href).toString();
    var status = $("chat-error");
    copyText(url).then(function () {
      link.setAttribute("data-copied", "");
      link.title = "Link copied";
      setTimeout(function () { link.removeAttribute("data-copied"); link.title = "Copy link"; }, 2000);
    }, function () {
      if (status) status.textContent = "Could not copy the link: " + url;
    });
  });

  // "/" anywhere but in a text field goes to the search box, as in most chats.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = $("search-input");
    if (!box) return;
    event.preventDefault();
    box.focus();
    box.select();
  });

  // ---- Edit and delete ----------------------------------------------------

  // Through the JSON API, with the session's CSRF token; the change comes back over
  // the room's socket to every page (this one too), swapped in place by id.
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  function changeMessage(method, id, body, refused) {
    var room = currentRoom();
    var headers = { "X-CSRF-Token": csrfToken() };
    if (body) headers["Content-Type"] = "application/json";
    return fetch("/api/rooms/" + room + "/messages/" + id, {
      method: method,
      headers: headers,
      credentials: "same-origin",
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      if (response.ok) return true;
      return response.json().then(function (problem) {
        var detail = problem && problem.detail;
        showError(typeof detail === "string" ? detail : refused || "That change was not saved.");
        return false;
      }, function () { showError("That change was not saved."); return false; });
    }, function () {
      showError("That change was not saved: the server did not answer.");
      return false;
    });
  }

  function showError(text) {
    var error = $("chat-error");
    if (error) error.textContent = text;
  }

  function messageId(article) { return article.id.replace("message-", ""); }

  function startEdit(article) {
    if (!article || article.classList.contains("editing") || article.hasAttribute("data-deleted")) return;
    var text = article.querySelector(".text");
    var form = document.createElement("form");
    form.className = "edit-form";
    var box = document.createElement("textarea");
    box.className = "edit-input";
    box.setAttribute("aria-label", "Edit message");
    var main = $("message-input");
    if (main && main.maxLength > 0) box.maxLength = main.maxLength;
    box.value = text ? text.textContent : ""; // what was typed: links and mentions are their text
    box.rows = Math.min(8, box.value.split("\n").length);
    var hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "Enter saves · Escape cancels";
    form.appendChild(box);
    form.appendChild(hint);
    article.classList.add("editing");
    article.appendChild(form);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function endEdit(article, refocus) {
    if (!article) return;
    var form = article.querySelector(".edit-form");
    if (form) form.remove();
    article.classList.remove("editing");
    var main = $("message-input");
    if (refocus && main) main.focus({ preventScroll: true });
  }

  function saveEdit(article) {
    var box = article.querySelector(".edit-input");
    var text = box ? box.value.trim() : "";
    var before = article.querySelector(".text");
    if (!text || (before && text === before.textContent)) return endEdit(article, true);
    box.disabled = true;
    changeMessage("PATCH", messageId(article), { text: text }).then(function (saved) {
      // The swapped-in element ends the edit; a refused one stays open to fix.
      if (saved) endEdit(article, true);
      else box.disabled = false;
    });
  }

  function lastOwnMessage() {
    var me = document.body.getAttribute("data-me");
    var mine = Array.prototype.filter.call(
      document.querySelectorAll("#messages .msg[data-author]:not([data-deleted])"),
      function (el) { return el.getAttribute("data-author") === me; });
    return mine.length ? mine[mine.length - 1] : null;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.isComposing) return;
    if (target.id === "message-input" && event.key === "ArrowUp" && !target.value) {
      var last = lastOwnMessage();
      if (last) {
        event.preventDefault();
        startEdit(last);
      }
    } else if (target.classList && target.classList.contains("edit-input")) {
      var article = target.closest(".msg");
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        endEdit(article, true);
      } else if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        saveEdit(article);
      }
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".msg-edit, .msg-delete");
    if (!button) return;
    var article = button.closest(".msg");
    if (button.classList.contains("msg-edit")) {
      startEdit(article);
    } else if (window.confirm("Delete this message? Everyone in the room will see it was deleted.")) {
      changeMessage("DELETE", messageId(article));
    }
  });

  // ---- Reactions -----------------------------------------------------------

  // The fragment lists who reacted (data-reactors, rendered once for everybody);
  // whether the viewer did is read from it here, and shown by a CSS rule.
  var PICKER = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];

  function react(article, emoji, on) {
    var path = messageId(article) + "/reactions/" + encodeURIComponent(emoji);
    // The server decides what one emoji is (422 otherwise): no second list here.
    return changeMessage(on ? "PUT" : "DELETE", path, undefined,
      "That is not one emoji: type (or paste) a single emoji.");
  }

  // One's own reaction with this emoji on the message toggles; any other adds it.
  function reactWith(article, emoji) {
    var existing = article.querySelector('.reaction[data-emoji="' + CSS.escape(emoji) + '"]');
    return react(article, emoji, !(existing && reacted(existing)));
  }

  function reacted(button) {
    var me = document.body.getAttribute("data-me");
    return (" " + (button.getAttribute("data-reactors") || "") + " ").indexOf(" " + me + " ") !== -1;
  }

  var picker = null;
  function closePicker(refocus) {
    if (!picker) return;
    var opener = picker.opener;
    picker.remove();
    picker = null;
    if (refocus && opener && document.contains(opener)) opener.focus();
  }

  function openPicker(opener) {
    closePicker(false);
    var article = opener.closest(".msg");
    picker = document.createElement("div");
    picker.className = "reaction-picker";
    picker.setAttribute("role", "menu");
    picker.setAttribute("aria-label", "React with");
    picker.opener = opener;
    picker.messageId = article.id;
    PICKER.forEach(function (emoji) {
      var choice = document.createElement("button");
      choice.type = "button";
      choice.className = "pick";
      choice.setAttribute("role", "menuitem");
      choice.setAttribute("data-emoji", emoji);
      choice.textContent = emoji;
      picker.appendChild(choice);
    });
    // Any other emoji: typed, pasted or from the system's emoji keyboard.
    var other = document.createElement("form");
    other.className = "pick-other";
    var input = document.createElement("input");
    input.type = "text";
    input.className = "pick-input";
    input.placeholder = "Any emoji";
    input.setAttribute("aria-label", "React with any emoji");
    input.autocomplete = "off";
    input.maxLength = 32; // app.reactions.MAX_EMOJI: a longer one is refused anyway
    other.appendChild(input);
    picker.appendChild(other);
    article.appendChild(picker);
    picker.firstChild.focus();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest(".reaction-picker .pick-other");
    if (!form) return;
    event.preventDefault();
    var emoji = form.querySelector(".pick-input").value.trim();
    var article = picker && $(picker.messageId);
    if (!emoji || !article) return;
    reactWith(article, emoji).then(function (saved) {
      if (saved) closePicker(false);
    });
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) return;
    var pick = target.closest(".reaction-picker .pick");
    if (pick) {
      var article = $(picker.messageId);
      if (article) reactWith(article, pick.getAttribute("data-emoji"));
      closePicker(false);
      return;
    }
    var opener = target.closest(".msg-react");
    if (opener) {
      if (picker && picker.opener === opener) closePicker(true);
      else openPicker(opener);
      return;
    }
    var reaction = target.closest(".msg .reaction");
    if (reaction) {
      react(reaction.closest(".msg"), reaction.getAttribute("data-emoji"), !reacted(reaction));
      return;
    }
    if (picker && !target.closest(".reaction-picker")) closePicker(false);
  });
  document.addEventListener("keydown", function (event) {
    if (picker && event.key === "Escape") {
      event.preventDefault();
      closePicker(true);
    }
  });

  // ---- Start -------------------------------------------------------------

  // Your own messages are set apart by one style rule keyed on your name, so
  // every message is rendered once for everybody (and so is the who-is-here
  // list, whose "Message" button is not offered by your own name).
  function styleOwnMessages() {
    var me = document.body.getAttribute("data-me");
    if (!me || !window.CSSStyleSheet || !document.adoptedStyleSheets) return;
    var sheet = new CSSStyleSheet();
    var name = CSS.escape(me);
    var actions = document.body.hasAttribute("data-admin")
      // Admins delete anyone's message, and edit their own.
      ? ".msg:not(.editing) .msg-actions { display: flex; }\n" +
        '.msg:not([data-author="' + name + '"]) .msg-edit { display: none; }\n'
      : '.msg[data-author="' + name + '"]:not(.editing) .msg-actions { display: flex; }\n';
    sheet.replaceSync('.msg[data-author="' + name + '"] { ' +
      "align-self: flex-end; background: var(--mine); border-color: var(--mine-line); }\n" +
      '.mention[data-mention="' + name + '"] { background: var(--mention-me); color: var(--mention-me-text); font-weight: 600; }\n' +
      '.members li[data-person="' + name + '"] .message-person { display: none; }\n' +
      '.reaction[data-reactors~="' + name + '"] { background: var(--mention); border-color: var(--accent); color: var(--mention-fg); }\n' +
      actions);
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
  }

  function start() {
    styleOwnMessages();
    decorate();
    localizeTimes(document.querySelector(".search-results") || document.createElement("div"));
    if (!showHighlighted()) scrollToEnd();
    watchSize();
    markCurrentRoom();
    noteActivity(false);
    offerNotifications();
    roomOpened();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
