// Attachments in the page: the attach button, drag-and-drop onto the chat, pasted
// images; one upload per file through the JSON API (XMLHttpRequest, for its
// upload progress), each with a progress bar and a cancel button; the message
// box's text goes with the first file as its caption. The message itself comes
// back over the room's socket like any other. And the one lightbox of the page,
// for clicked thumbnails (Escape closes it: it is a modal <dialog>).
// Kept apart from app.js: it only reads the page, never the socket.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function room() {
    var section = document.querySelector("section.room[data-room]");
    return section ? section.getAttribute("data-room") : null;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  function clientId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "up-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // The message box's text, once: it captions the first file of what is sent now.
  function takeCaption() {
    var box = $("message-input");
    if (!box || !box.value.trim()) return "";
    var text = box.value;
    box.value = "";
    box.dispatchEvent(new Event("input", { bubbles: true }));
    return text;
  }

  function uploadAll(files) {
    var roomId = room();
    if (!roomId || !files || !files.length) return;
    var caption = takeCaption();
    Array.prototype.forEach.call(files, function (file, i) {
      upload(roomId, file, i === 0 ? caption : "");
    });
  }

  function upload(roomId, file, caption) {
    var list = $("uploads");
    if (!list) return;
    var item = document.createElement("li");
    item.className = "upload";
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name || "pasted image";
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + name.textContent);
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "upload-cancel";
    cancel.textContent = "Cancel";
    var status = document.createElement("span");
    status.className = "upload-status";
    item.append(name, bar, cancel, status);
    list.appendChild(item);

    var form = new FormData();
    form.append("file", file, file.name || "pasted-image.png");
    if (caption) form.append("text", caption);
    form.append("client_id", clientId());
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/rooms/" + roomId + "/attachments");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 201) {
        bar.value = 100;
        item.classList.add("done");
        setTimeout(function () { item.remove(); }, 1500);
        return;
      }
      var detail = "The upload failed (" + xhr.status + ").";
      try {
        var problem = JSON.parse(xhr.responseText);
        if (typeof problem.detail === "string") detail = problem.detail;
      } catch (e) { /* not JSON: keep the status */ }
      fail(detail);
    });
    xhr.addEventListener("error", function () { fail("The upload failed: no connection."); });
    cancel.addEventListener("click", function () {
      xhr.abort();
      item.remove();
    });
    function fail(text) {
      item.classList.add("failed");
      status.textContent = text;
      cancel.textContent = "Dismiss";
      cancel.onclick = function () { item.remove(); };
    }
    xhr.send(form);
  }

  function hasFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") >= 0;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("#attach-button")) {
      var input = $("attach-input");
      if (input) input.click();
      return;
    }
    var thumb = event.target.closest("a.attachment-image");
    if (thumb && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      openLightbox(thumb);
      return;
    }
    var box = $("lightbox");
    if (box && event.target === box) box.close(); // a click on the backdrop
  });

  document.addEventListener("change", function (event) {
    if (event.target.id !== "attach-input") return;
    uploadAll(event.target.files);
    event.target.value = "";
  });

  document.addEventListener("dragover", function (event) {
    if (!hasFiles(event) || !event.target.closest("section.room")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    event.target.closest("section.room").classList.add("dropping");
  });
  document.addEventListener("dragleave", function (event) {
    var section = event.target.closest && event.target.closest("section.room");
    if (section && !section.contains(event.relatedTarget)) section.classList.remove("dropping");
  });
  document.addEventListener("drop", function (event) {
    var section = event.target.closest && event.target.closest("section.room");
    if (!section || !hasFiles(event)) return;
    event.preventDefault();
    section.classList.remove("dropping");
    uploadAll(event.dataTransfer.files);
  });

  // A pasted image (a screenshot) is uploaded; pasted text stays text.
  document.addEventListener("paste", function (event) {
    if (!room() || !event.clipboardData) return;
    var files = Array.prototype.filter.call(event.clipboardData.files || [], function (f) {
      return f.type.indexOf("image/") === 0;
    });
    if (!files.length) return;
    event.preventDefault();
    uploadAll(files);
  });

  function openLightbox(link) {
    var box = $("lightbox");
    if (!box || !box.showModal) {
      window.open(link.href, "_blank", "noopener");
      return;
    }
    var image = $("lightbox-image");
    image.src = link.getAttribute("href");
    image.alt = link.getAttribute("data-name") || "";
    $("lightbox-open").href = link.getAttribute("href");
    box.showModal();
  }
})();
