// bootforge dashboard: reads the management API (/api/v1) with the
// session cookie and keeps the page current. Every value from the server
// is put into the page as text (textContent), never as HTML.
"use strict";

const role = document.body.dataset.role;
const isAdmin = role === "admin";
const feedRows = 200; // rows kept in the live feed

// The latest event per MAC (lower case), for the hosts table.
const lastEvent = new Map();
let hosts = [], leases = [], oneshots = [];

// api calls /api/v1; writes carry the header the server requires of
// requests signed in by the cookie. A 401 means the token was revoked or
// the cookie is gone: back to the login form.
async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") {
    opts.headers["X-Bootforge"] = "1";
  }
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/api/v1" + path, opts);
  if (r.status === 401) {
    location.assign("/");
    throw new Error("signed out");
  }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { status: r.status, ok: r.ok, data };
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function row(values) {
  const tr = document.createElement("tr");
  for (const v of values) {
    tr.appendChild(v instanceof Node ? v : cell(v));
  }
  return tr;
}

function fill(id, rows) {
  document.getElementById(id).replaceChildren(...rows);
}

function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function resultClass(result) {
  if (!result) return "";
  return /^(ok|sent|served|booted|ack|offer|stored|set|cleared)/.test(result) ? "ok" : /fail|refus|not found|denied|drop|error/.test(result) ? "error" : "";
}

// --- live feed ---

function feedRow(e) {
  const tr = row([when(e.time), e.mac, e.ip, e.arch, e.profile, e.stage, e.protocol, e.file,
    cell(e.result, resultClass(e.result)), cell(e.reason, "reason")]);
  if (e.mac) tr.dataset.mac = e.mac.toLowerCase();
  tr.dataset.stage = e.stage || "";
  return tr;
}

// The profile each MAC last got, from the events that name one (DHCP
// answers and menus).
const lastProfile = new Map();

function remember(e) {
  if (!e.mac) return;
  const mac = e.mac.toLowerCase();
  const prev = lastEvent.get(mac);
  if (!prev || new Date(e.time) >= new Date(prev.time)) lastEvent.set(mac, e);
  if (e.profile) lastProfile.set(mac, e.profile);
}

// The live events shown, so that history does not repeat them.
const shown = new Set();
function eventKey(e) {
  return [Date.parse(e.time), e.mac, e.stage, e.file, e.result].join("|");
}

function addLive(e) {
  shown.add(eventKey(e));
  remember(e);
  const feed = document.getElementById("feed");
  const tr = feedRow(e);
  tr.classList.add("new");
  feed.prepend(tr);
  while (feed.children.length > feedRows) feed.lastChild.remove();
  renderHosts();
}

function startFeed() {
  const state = document.getElementById("feed-state");
  const src = new EventSource("/api/v1/events/stream");
  src.onopen = () => { state.textContent = "live"; state.className = "ok"; };
  src.onerror = () => {
    // The browser retries a dropped stream by itself; a refused one
    // (the boot log is off, too many feeds open, signed out) it closes.
    if (src.readyState === EventSource.CLOSED) {
      state.textContent = "unavailable (is the boot log on? reload to retry)";
      state.className = "error";
    } else {
      state.textContent = "reconnecting…";
      state.className = "pending";
    }
  };
  src.addEventListener("boot", (m) => {
    try { addLive(JSON.parse(m.data)); } catch (err) { /* a malformed event is skipped */ }
  });
  // The token was revoked while the feed was open: back to the login form.
  src.addEventListener("revoked", () => { src.close(); location.assign("/"); });
  src.addEventListener("dropped", (m) => {
    const p = document.getElementById("feed-dropped");
    try {
      p.textContent = JSON.parse(m.data).dropped + " events were not shown (this page read too slowly); the boot log has them all.";
      p.hidden = false;
    } catch (err) { /* ignore */ }
  });
}

// --- tables ---

function renderHosts() {
  const byMAC = new Map();
  const get = (mac) => {
    mac = mac.toLowerCase();
    if (!byMAC.has(mac)) byMAC.set(mac, { mac });
    return byMAC.get(mac);
  };
  // A host known by its UUID alone has a row of its own, keyed by it.
  const byUUID = [];
  for (const h of hosts) {
    for (const mac of h.macs || []) {
      const r = get(mac);
      r.name = h.name;
      r.profile = h.chosen_profile || h.profile;
    }
    if ((h.macs || []).length === 0) {
      byUUID.push({ mac: "", uuid: h.uuid || "", name: h.name, profile: h.chosen_profile || h.profile });
    }
  }
  for (const l of leases) {
    if (l.mac) { const r = get(l.mac); r.lease = l; }
  }
  for (const s of oneshots) get(s.mac).oneshot = s;
  for (const [mac, e] of lastEvent) get(mac).last = e;
  const rows = [...byMAC.values()].sort((a, b) => a.mac.localeCompare(b.mac)).concat(byUUID).map((h) => {
    const e = h.last || {};
    const tr = row([h.mac || "UUID " + h.uuid, h.name || "(not in inventory)", h.profile || lastProfile.get(h.mac), (h.lease && h.lease.ip) || e.ip,
      when(e.time), e.stage, cell(e.result, resultClass(e.result)),
      h.oneshot ? h.oneshot.entry + " (" + h.oneshot.state + ")" : "",
      h.lease ? h.lease.state : ""]);
    if (h.mac) tr.dataset.mac = h.mac;
    if (h.name) tr.dataset.host = h.name;
    return tr;
  });
  fill("hosts", rows);
}

function renderOneshots() {
  fill("oneshots", oneshots.map((s) => {
    const actions = document.createElement("td");
    if (isAdmin) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Clear";
      b.className = "oneshot-clear";
      b.addEventListener("click", () => clearOneshot(s.mac).catch((err) => say("could not reach the server: " + err.message, false)));
      actions.appendChild(b);
    }
    const tr = row([s.mac, s.entry, s.state, s.always ? "yes" : "", when(s.expires), actions]);
    tr.dataset.mac = s.mac.toLowerCase();
    return tr;
  }));
}

function renderProfiles(profiles) {
  fill("profiles", profiles.map((p) => row([p.name, p.priority || "", p.rules, (p.entries || []).join(", "),
    p.default, p.secure_boot ? "yes" : "", p.source])));
  const list = document.getElementById("entries");
  if (list) {
    const names = new Set();
    for (const p of profiles) for (const e of p.entries || []) names.add(e);
    list.replaceChildren(...[...names].sort().map((n) => { const o = document.createElement("option"); o.value = n; return o; }));
  }
}

function renderLeases() {
  fill("leases", leases.map((l) => row([l.ip, l.mac, l.hostname, l.state, when(l.expires)])));
}

function renderImages(images) {
  if (images.length === 0) {
    fill("images", [row([cell("no image versions built", "muted")])]);
    return;
  }
  fill("images", images.map((i) => {
    const v = i.verify || {};
    let text = v.status;
    if (v.status === "drift") text = "drift: " + (v.drifts || []).join("; ");
    if (v.status === "error") text = "error: " + v.error;
    const cls = v.status === "ok" ? "ok" : v.status === "pending" ? "pending" : "error";
    const tr = row([i.name, i.version, i.state, when(i.built), cell(text, cls + " reason"), when(v.checked)]);
    tr.dataset.image = i.name + "@" + i.version;
    return tr;
  }));
}

function renderHealth(r) {
  const p = document.getElementById("health");
  if (r.ok) {
    p.textContent = "ready" + (r.data && r.data.store ? " — store " + r.data.store : "");
    p.className = "ok";
  } else {
    const problems = (r.data && r.data.problems) || [];
    p.textContent = "not ready: " + (problems.join("; ") || (r.data && r.data.message) || "status " + r.status);
    p.className = "error";
  }
}

// refresh reloads everything but the feed.
async function refresh() {
  const status = document.getElementById("status");
  try {
    const [health, h, p, n, l, i] = await Promise.all([api("GET", "/health"), api("GET", "/hosts"),
      api("GET", "/profiles"), api("GET", "/next-boot"), api("GET", "/leases"), api("GET", "/images")]);
    renderHealth(health);
    if (h.ok) hosts = h.data;
    if (n.ok) oneshots = n.data;
    if (l.ok) leases = l.data;
    if (p.ok) renderProfiles(p.data);
    if (i.ok) renderImages(i.data);
    renderOneshots();
    renderLeases();
    renderHosts();
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "muted";
  } catch (err) {
    status.textContent = "could not reach the server: " + err.message;
    status.className = "error";
  }
}

// history fills the feed with the last hour's events, newest first,
// below what the live feed already showed (skipping those it showed).
async function history() {
  const r = await api("GET", "/events?since=1h&limit=" + feedRows);
  if (!r.ok) return;
  const rows = [];
  for (const e of r.data) {
    if (shown.has(eventKey(e))) continue;
    remember(e);
    rows.unshift(feedRow(e));
  }
  document.getElementById("feed").append(...rows);
  renderHosts();
}

// --- one-shots (admin) ---

function say(text, ok) {
  const p = document.getElementById("oneshot-result");
  p.textContent = text;
  p.className = ok ? "ok" : "error";
}

async function setOneshot(ev) {
  ev.preventDefault();
  const mac = document.getElementById("oneshot-mac").value.trim();
  const body = { entry: document.getElementById("oneshot-entry").value.trim() };
  const expires = document.getElementById("oneshot-expires").value.trim();
  if (expires) body.expires = expires;
  if (document.getElementById("oneshot-always").checked) body.always = true;
  const r = await api("PUT", "/next-boot/" + encodeURIComponent(mac), body);
  if (r.ok) {
    say("next boot of " + r.data.mac + ": " + r.data.entry + (r.data.note ? " — " + r.data.note : ""), true);
  } else {
    say("refused: " + ((r.data && r.data.message) || "status " + r.status) + (r.data && r.data.field ? " (" + r.data.field + ")" : ""), false);
  }
  refresh();
}

async function clearOneshot(mac) {
  const r = await api("DELETE", "/next-boot/" + encodeURIComponent(mac));
  if (r.ok) say("cleared the one-shot of " + r.data.mac, true);
  else say("refused: " + ((r.data && r.data.message) || "status " + r.status), false);
  refresh();
}

startFeed();
history().catch(() => { /* the live feed still runs; refresh reports a dead server */ });
refresh();
setInterval(refresh, 10000);
const form = document.getElementById("oneshot-form");
if (form) {
  form.addEventListener("submit", (ev) => setOneshot(ev).catch((err) => say("could not reach the server: " + err.message, false)));
}
