// The upload page: sends the chosen files to POST /api/v1/uploads with the user's own credential
// (HTTP Basic over TLS, never stored), shows what is held and what was not, and finds printers.
"use strict";

function basic(user, pin) {
  // btoa takes Latin-1 only: encode UTF-8 first, so any user name works.
  const bytes = new TextEncoder().encode(user + ":" + pin);
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return "Basic " + btoa(binary);
}

function item(list, text, kind) {
  const li = document.createElement("li");
  li.textContent = text;
  if (kind) li.className = kind;
  list.appendChild(li);
}

function randomKey() {
  // No crypto.randomUUID (secure contexts only); getRandomValues works everywhere.
  const values = new Uint32Array(4);
  crypto.getRandomValues(values);
  return Array.from(values, (v) => v.toString(16).padStart(8, "0")).join("");
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  const message = document.getElementById("message");
  const results = document.getElementById("results");
  const send = document.getElementById("send");
  const guest = document.getElementById("guest");  // only where the site takes guests' uploads
  const userLabel = document.getElementById("user-label");
  const memberLabel = userLabel.textContent;
  if (guest) {
    guest.addEventListener("change", () => {
      document.getElementById("pin-field").hidden = guest.checked;
      userLabel.textContent = guest.checked ? userLabel.dataset.guest : memberLabel;
      form.user.type = guest.checked ? "email" : "text";
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    results.replaceChildren();
    const user = form.user.value.trim();
    const pin = form.pin.value;
    const files = form.file.files;
    const asGuest = Boolean(guest && guest.checked);
    if (asGuest ? (!user.includes("@") || files.length === 0) : (!user || !pin || files.length === 0)) {
      message.textContent = asGuest ? "Type your email address, and choose at least one document."
        : "Type your user name and PIN, and choose at least one document.";
      return;
    }
    const body = new FormData();
    for (const file of files) body.append("file", file, file.name);
    body.append("copies", form.copies.value || "1");
    body.append("sides", form.sides.value);
    body.append("color", form.color.value);
    send.disabled = true;
    message.textContent = "Sending…";
    try {
      const answer = await fetch("/api/v1/uploads", {
        method: "POST", body: body, credentials: "omit",
        headers: asGuest ? {"X-Pullprint-Guest": user, "Idempotency-Key": randomKey()}
          : {"Authorization": basic(user, pin), "Idempotency-Key": randomKey()},
      });
      const data = await answer.json().catch(() => ({}));
      if (!answer.ok && !(data.refused && data.refused.length)) {
        message.textContent = data.message || ("The upload failed (" + answer.status + ").");
        return;
      }
      const held = data.held || [];
      message.textContent = !held.length ? "Nothing could be held."
        : asGuest ? "Held. The release code of each document is on its way to " + data.codes_sent_to
          + ": type it at any printer (\"A release code from a mail?\")."
        : "Held for you: badge in at any printer to print " + (held.length === 1 ? "it." : "them.");
      held.forEach((job) => item(results, "Held: " + job.title
        + (job.pages ? " (" + job.pages + (job.pages === 1 ? " page)" : " pages)") : ""), "held"));
      (data.refused || []).forEach((r) => item(results, "Not printed: " + r.title + ": " + r.reason, "refused"));
      form.pin.value = "";
      form.file.value = "";
    } catch (error) {
      message.textContent = "The print service could not be reached; try again.";
    } finally {
      send.disabled = false;
    }
  });

  const find = document.getElementById("find-form");
  const printers = document.getElementById("printers");
  find.addEventListener("submit", async (event) => {
    event.preventDefault();
    printers.replaceChildren();
    const answer = await fetch("/api/v1/printers?q=" + encodeURIComponent(find.q.value), {credentials: "omit"});
    const data = await answer.json().catch(() => ({printers: []}));
    if (!data.printers || data.printers.length === 0) item(printers, "No printer matches.");
    (data.printers || []).forEach((p) => item(printers, p.id + " — " + (p.location || "")
      + (p.tags && p.tags.length ? " (" + p.tags.join(", ") + ")" : "")));
  });
});
