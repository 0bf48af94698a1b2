// clawos companion app: pairing, chat (operator role) and phone features (node role)
// over the Gateway's WebSocket protocol v4. Plain ES2022, no dependencies.
const $ = (sel) => document.querySelector(sel);
const make = (tag, props = {}) => Object.assign(document.createElement(tag), props);
const CLIENT = { id: "clawos-app", displayName: "clawos app", version: "1", platform: navigator.platform?.trim() || "web", mode: "webchat" };
const WS_URL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const tokenKey = (role) => `clawos.deviceToken.${role}`;
const OUTBOX_KEY = "clawos.outbox";

// ---- small helpers ----
const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const esc = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fail = (code, message) => Object.assign(new Error(message), { code });
const offline = () => fail("OFFLINE", "not connected");
function toast(text) {
  const el = $("#toasts").appendChild(make("div", { className: "toast", textContent: text }));
  setTimeout(() => el.remove(), 5000);
}

// ---- device identity: an Ed25519 key pair kept in IndexedDB ----
const idb = (mode, fn) => new Promise((resolve, reject) => {
  const open = indexedDB.open("clawos", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("keys");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result, tx = db.transaction("keys", mode), req = fn(tx.objectStore("keys"));
    tx.oncomplete = () => { db.close(); resolve(req.result); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  };
});
async function loadDevice() {
  let d = await idb("readonly", (s) => s.get("device"));
  if (!d) { // the private key never leaves WebCrypto; the public key is exported once
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    d = { privateKey: pair.privateKey, publicKey: pair.publicKey, raw: await crypto.subtle.exportKey("raw", pair.publicKey) };
    await idb("readwrite", (s) => s.put(d, "device"));
  }
  const raw = new Uint8Array(d.raw);
  return { key: d.privateKey, id: hex(await crypto.subtle.digest("SHA-256", raw)), publicKey: b64url(raw) };
}
let devicePromise;
const device = () => (devicePromise ??= loadDevice());
// The connect params, signed by the device over the v3 payload.
async function connectParams(link, auth, { nonce, ts }) {
  const dev = await device();
  const token = auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? "";
  const platform = CLIENT.platform.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const payload = ["v3", dev.id, CLIENT.id, CLIENT.mode, link.role, link.scopes.join(","), ts, token, nonce, platform, ""].join("|");
  const sig = await crypto.subtle.sign("Ed25519", dev.key, new TextEncoder().encode(payload));
  return {
    minProtocol: 4, maxProtocol: 4, client: CLIENT, role: link.role, scopes: link.scopes, caps: [], commands: link.commands, auth,
    device: { id: dev.id, publicKey: dev.publicKey, signature: b64url(new Uint8Array(sig)), signedAt: ts, nonce },
  };
}

// ---- one WebSocket per role, reconnecting with backoff (1 s, 2 s, 4 s … 15 s) ----
const isAuthError = (e) => e.code === "NOT_PAIRED" || /^AUTH_/.test(e.details?.code ?? "");

class Link {
  constructor(role, scopes, commands) {
    Object.assign(this, { role, scopes, commands, ws: null, hello: null, pending: new Map(),
      n: 0, tries: 0, enabled: false, state: "offline", seen: 0, tick: 30000 });
  }
  start() { this.enabled = true; clearTimeout(this.timer); this.open(); }
  stop() { this.enabled = false; clearTimeout(this.timer); this.drop(); }
  set(state) { this.state = state; renderStatus(); }
  open() {
    if (this.ws) return;
    const auth = authFor(this.role);
    if (!auth) return this.set("offline");
    this.set("connecting");
    const ws = (this.ws = new WebSocket(WS_URL));
    this.seen = Date.now();
    ws.onmessage = (e) => this.receive(ws, e.data, auth);
    ws.onclose = () => this.drop(ws);
  }
  // Forget the socket (closed, refused, or silent too long) and plan the next attempt.
  drop(ws = this.ws) {
    if (!ws || ws !== this.ws) return;
    this.ws = this.hello = null;
    ws.close();
    for (const p of this.pending.values()) p.reject(offline());
    this.pending.clear();
    this.set("offline");
    if (this.enabled) this.timer = setTimeout(() => this.open(), Math.min(15000, 1000 * 2 ** this.tries++));
  }
  receive(ws, data, auth) {
    let f;
    try { f = JSON.parse(data); } catch { return; }
    this.seen = Date.now();
    if (f.type === "res") {
      const p = this.pending.get(f.id);
      this.pending.delete(f.id);
      if (p) f.ok ? p.resolve(f.payload ?? {}) : p.reject(Object.assign(new Error(f.error?.message || "request failed"), f.error));
    } else if (f.type === "event" && f.event === "connect.challenge") {
      this.handshake(ws, f.payload ?? {}, auth);
    } else if (f.type === "event" && this.hello) {
      this.onEvent?.(f.event, f.payload ?? {});
    }
  }
  async handshake(ws, challenge, auth) {
    try {
      const hello = await this.request("connect", await connectParams(this, auth, challenge), ws);
      if (ws !== this.ws) return;
      Object.assign(this, { hello, tries: 0, tick: hello.policy?.tickIntervalMs || 30000 });
      if (hello.auth?.deviceToken) localStorage.setItem(tokenKey(this.role), hello.auth.deviceToken);
      this.set("online");
      admitted(this, hello, auth);
    } catch (e) {
      if (ws !== this.ws || e.code === "OFFLINE") return;
      console.warn(`${this.role}: connect refused`, e);
      refused(this, e, auth);
      this.drop(ws);
    }
  }
  request(method, params = {}, ws = this.ws) {
    if (ws?.readyState !== WebSocket.OPEN || (!this.hello && method !== "connect")) return Promise.reject(offline());
    const id = `${this.role}-${++this.n}`;
    ws.send(JSON.stringify({ type: "req", id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
}
const operator = new Link("operator", ["operator.read", "operator.write"], []);
const node = new Link("node", [], ["camera.snap", "location.get", "canvas.present", "system.notify"]);
const links = [operator, node];
let pairCode = null; // the one-time setup code, while pairing
// A saved device token first; the setup code only while pairing.
function authFor(role) {
  const token = localStorage.getItem(tokenKey(role));
  return token ? { deviceToken: token } : pairCode ? { bootstrapToken: pairCode } : null;
}

// ---- screens, status, pairing ----
function renderStatus() {
  const s = !$("#pair").hidden && operator.state === "offline" ? "pairing" : operator.state;
  Object.assign($("#status"), { textContent: s }).dataset.state = s;
  Object.assign($("#node-status"), { title: `phone features: ${node.state}` }).dataset.state = node.state;
}
function showPairing(message = "") {
  $("#pair").hidden = false;
  $("#pair-again").hidden = true;
  $("#chat").hidden = true;
  $("#pair-error").textContent = message;
  $("#pair-button").disabled = false;
  $("#pair-cancel").hidden = !localStorage.getItem(tokenKey("operator"));
  renderStatus();
}
function showChat() {
  $("#pair").hidden = true;
  $("#chat").hidden = $("#pair-again").hidden = false;
  renderStatus();
}
function pair(raw) {
  const code = String(raw).replace(/[\s-]+/g, "").toUpperCase();
  if (!code) return showPairing("Enter the setup code.");
  links.forEach((l) => { localStorage.removeItem(tokenKey(l.role)); l.stop(); l.tries = 0; });
  pairCode = code;
  $("#pair-error").textContent = "";
  $("#pair-button").disabled = true;
  operator.start(); // the node role follows once the operator is paired
}
// hello-ok. Once the operator is paired, the node role pairs with the same code.
function admitted(link, hello, auth) {
  if (link === node) { if (auth.bootstrapToken) pairCode = null; return; }
  sessionKey = hello.snapshot?.sessionDefaults?.mainSessionKey || "main";
  sessionKeys.add(sessionKey);
  if (auth.bootstrapToken) {
    history.replaceState(null, "", location.pathname + location.search);
    node.start();
  }
  active.clear();
  updateStop();
  showChat();
  loadHistory().then(flushOutbox);
}
// A refused connect: a bad setup code or a dead device token means pairing again; the rest is retried.
function refused(link, e, auth) {
  if (!auth.bootstrapToken && !isAuthError(e)) return;
  if (auth.bootstrapToken) pairCode = null;
  localStorage.removeItem(tokenKey(link.role));
  link.enabled = false;
  const why = `${e.message}${e.details?.remediationHint ? ` ${e.details.remediationHint}` : ""}`;
  if (link === node) toast(`Phone features are off: ${why}`);
  else showPairing(`${auth.bootstrapToken ? "Pairing failed" : "Please pair again"}: ${why}`);
}

// ---- chat ----
let sessionKey = "main";
const sessionKeys = new Set(); // our session, as we name it and as the Gateway spells it
const myRuns = new Set(); // runs started from this app
const active = new Set(); // runs still streaming (for the Stop button)
const sending = new Set(); // outbox ids with a chat.send in flight
let photo = null; // {mimeType, fileName, content} waiting to be sent
let outbox = [];
try { outbox = JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]"); } catch { /* start empty */ }
function saveOutbox() {
  try { localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox)); } catch { // over quota: keep the words, drop photos
    localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox.map(({ image, ...m }) => m)));
  }
}
const textOf = (m) => Array.isArray(m?.content)
  ? m.content.filter((c) => c?.type === "text").map((c) => c.text).join("\n")
  : typeof m?.content === "string" ? m.content : "";
function scrollDown(force) {
  const list = $("#messages");
  if (force || list.scrollHeight - list.scrollTop - list.clientHeight < 120) list.scrollTop = list.scrollHeight;
}
function bubble(role, text, { image, ts } = {}) {
  const el = make("div", { className: `msg ${role}`, title: ts ? new Date(ts).toLocaleString() : "" });
  if (image) el.append(make("img", { className: "thumb", alt: "photo", src: image }));
  el.append(make("div", { className: "text", textContent: text }));
  $("#messages").append(el);
  return el;
}
function note(el, text) {
  el.querySelector(".note")?.remove();
  el.append(make("div", { className: "note", textContent: text }));
}
function userBubble(item) {
  const el = bubble("user", item.text, { image: item.image && `data:${item.image.mimeType};base64,${item.image.content}` });
  el.classList.add("pending");
  Object.assign(el.dataset, { id: item.id, state: "pending" });
  scrollDown(true);
}
// Mark the bubble of an outbox item once the Gateway answered.
function settle(id, state, error) {
  const el = document.querySelector(`#messages .msg.user[data-id="${CSS.escape(id)}"]`);
  if (!el) return;
  el.classList.remove("pending");
  el.classList.toggle("failed", state === "failed");
  el.dataset.state = state;
  if (error) note(el, `Not sent: ${error}`);
}
async function loadHistory() {
  try {
    const res = await operator.request("chat.history", { sessionKey });
    if (res.sessionKey) sessionKeys.add(res.sessionKey);
    $("#messages").replaceChildren();
    for (const m of res.messages ?? []) {
      if (m.role !== "user" && m.role !== "assistant") continue;
      const el = bubble(m.role, textOf(m), { ts: m.timestamp });
      if (m.role === "assistant") el.dataset.state = "final";
    }
    outbox.forEach(userBubble);
    scrollDown(true);
  } catch (e) {
    if (e.code !== "OFFLINE") toast(`Could not load the conversation: ${e.message}`);
  }
}
function sendMessage() {
  const field = $("#composer-text");
  const text = field.value.trim();
  if (!text && !photo) return;
  const item = { id: crypto.randomUUID(), text, ...(photo && { image: photo }) };
  field.value = field.style.height = "";
  setPhoto(null);
  outbox.push(item);
  saveOutbox();
  userBubble(item);
  deliver(item);
}
// Send one queued message. Offline, it stays queued; the idempotency key makes a resend safe.
async function deliver(item) {
  if (operator.state !== "online" || sending.has(item.id)) return;
  sending.add(item.id);
  const params = { sessionKey, message: item.text || "(photo)", idempotencyKey: item.id };
  if (item.image) params.attachments = [{ type: "image", ...item.image }];
  try {
    const res = await operator.request("chat.send", params);
    const runId = res.runId || item.id;
    myRuns.add(runId);
    if (res.sessionKey) sessionKeys.add(res.sessionKey);
    const done = /final|error|aborted/.test(assistantBubble(runId, false)?.dataset.state ?? "");
    if (!done) active.add(runId);
    updateStop();
    dequeue(item.id);
    settle(item.id, "sent");
  } catch (e) {
    if (e.code !== "OFFLINE") { dequeue(item.id); settle(item.id, "failed", e.message); }
  } finally {
    sending.delete(item.id);
  }
}
function dequeue(id) { outbox = outbox.filter((m) => m.id !== id); saveOutbox(); }
async function flushOutbox() { for (const item of [...outbox]) await deliver(item); }
function assistantBubble(runId, create = true) {
  let el = document.querySelector(`#messages .msg.assistant[data-run-id="${CSS.escape(runId)}"]`);
  if (!el && create) { el = bubble("assistant", ""); el.dataset.runId = runId; }
  return el;
}
// A `chat` event: one assistant bubble per run, its text replaced by the full text so far.
function onChat(p) {
  if (!p.runId || (!sessionKeys.has(p.sessionKey) && !myRuns.has(p.runId))) return;
  if (!["delta", "final", "error", "aborted"].includes(p.state)) return;
  const el = assistantBubble(p.runId), body = el.querySelector(".text");
  if (p.message) body.textContent = textOf(p.message);
  else if (p.state === "delta") body.textContent += p.deltaText ?? "";
  el.dataset.state = p.state === "delta" ? "streaming" : p.state;
  if (p.state === "delta") active.add(p.runId); else active.delete(p.runId);
  if (p.state === "error" || p.state === "aborted") note(el, p.errorMessage || (p.state === "aborted" ? "Stopped." : "Something went wrong."));
  updateStop();
  scrollDown(false);
}
operator.onEvent = (event, payload) => { if (event === "chat") onChat(payload); };
function updateStop() { $("#stop").hidden = active.size === 0; }
async function stopRun() {
  try {
    const res = await operator.request("chat.abort", { sessionKey });
    if (res.aborted === false) { active.clear(); updateStop(); } // nothing was running
  } catch (e) { toast(`Could not stop: ${e.message}`); }
}

// ---- photos (big camera photos are scaled down to 1600 px JPEG first) ----
async function shrink(file, max = 1600) {
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, max / Math.max(bmp.width, bmp.height));
  const c = new OffscreenCanvas(Math.round(bmp.width * scale), Math.round(bmp.height * scale));
  c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
  return c.convertToBlob({ type: "image/jpeg", quality: 0.85 });
}
async function readPhoto(file) {
  const blob = file.size > 1_000_000 ? (await shrink(file).catch(() => null)) ?? file : file;
  const url = await new Promise((resolve, reject) => {
    const r = Object.assign(new FileReader(), { onload: () => resolve(r.result), onerror: () => reject(r.error) });
    r.readAsDataURL(blob);
  });
  const fileName = blob === file ? file.name || "photo" : `${(file.name || "photo").replace(/\.[^.]*$/, "")}.jpg`;
  return { mimeType: blob.type || "image/jpeg", fileName, content: url.slice(url.indexOf(",") + 1) };
}
function setPhoto(p) {
  photo = p;
  $("#photo-preview").hidden = !p;
  if (p) $("#photo-preview img").src = `data:${p.mimeType};base64,${p.content}`;
}

// ---- node commands ----
async function snap(params) {
  const facingMode = params.facing === "front" ? "user" : "environment";
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode }, audio: false }).catch((e) => {
    throw ["NotAllowedError", "SecurityError"].includes(e.name) ? fail("CAMERA_DENIED", "camera permission denied") : fail("CAMERA_UNAVAILABLE", e.message);
  });
  try {
    const video = make("video", { srcObject: stream, muted: true, playsInline: true });
    await video.play();
    await new Promise((r) => setTimeout(r, 300)); // let exposure settle
    if (!video.videoWidth) throw fail("CAMERA_UNAVAILABLE", "the camera gave no picture");
    const scale = Math.min(1, (Number(params.maxWidth) || 1600) / video.videoWidth);
    const canvas = make("canvas", { width: Math.round(video.videoWidth * scale), height: Math.round(video.videoHeight * scale) });
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const quality = Math.min(1, Math.max(0.1, Number(params.quality) || 0.85));
    const base64 = canvas.toDataURL("image/jpeg", quality).split(",")[1];
    return { mimeType: "image/jpeg", base64, width: canvas.width, height: canvas.height };
  } finally {
    stream.getTracks().forEach((t) => t.stop());
  }
}
function locate(params) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) return reject(fail("LOCATION_UNAVAILABLE", "no geolocation in this browser"));
    navigator.geolocation.getCurrentPosition(
      ({ coords }) => resolve({ lat: coords.latitude, lon: coords.longitude, accuracy: coords.accuracy }),
      (e) => reject(e.code === 1 ? fail("LOCATION_DENIED", "location permission denied") : fail("LOCATION_UNAVAILABLE", e.message)),
      { enableHighAccuracy: true, maximumAge: params.maxAgeMs ?? 30000, timeout: params.timeoutMs ?? 15000 });
  });
}
// A small, safe Markdown subset: everything is escaped first, then a few known tags are added.
const emphasis = (s) => s
  .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
  .replace(/\*([^*\s](?:[^*]*[^*\s])?)\*/g, "<em>$1</em>")
  .replace(/(^|\W)_([^_\s](?:[^_]*[^_\s])?)_(?=\W|$)/g, "$1<em>$2</em>");
// Inline: code spans and links are cut out first, so nothing inside them is reformatted.
const inline = (s) => s.split(/(`[^`]+`|\[[^\]]+\]\([^)\s]+\))/).map((part, i) => {
  if (i % 2 === 0) return emphasis(esc(part));
  if (part[0] === "`") return `<code>${esc(part.slice(1, -1))}</code>`;
  const [, text, url] = part.match(/^\[([^\]]+)\]\(([^)\s]+)\)$/);
  return /^(https?:|mailto:)/i.test(url) ? `<a href="${esc(url)}" target="_blank" rel="noopener noreferrer">${emphasis(esc(text))}</a>` : esc(part);
}).join("");
function markdown(src) {
  const out = [];
  let para = [], list = null, code = null;
  const flush = () => { // close the open paragraph or list
    if (para.length) out.push(`<p>${inline(para.join(" "))}</p>`);
    if (list) out.push(`</${list}>`);
    [para, list] = [[], null];
  };
  for (const line of src.replace(/\r\n?/g, "\n").split("\n")) {
    let m;
    if (code && /^\s*```/.test(line)) { out.push(`<pre><code>${esc(code.join("\n"))}</code></pre>`); code = null; }
    else if (code) code.push(line);
    else if (/^\s*```/.test(line)) { flush(); code = []; }
    else if ((m = line.match(/^(#{1,6})\s+(.*)$/))) { flush(); out.push(`<h${m[1].length}>${inline(m[2])}</h${m[1].length}>`); }
    else if ((m = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/))) {
      const tag = /\d/.test(m[1]) ? "ol" : "ul";
      if (list !== tag) { flush(); out.push(`<${tag}>`); list = tag; }
      out.push(`<li>${inline(m[2])}</li>`);
    } else if (!line.trim()) flush();
    else { if (list) flush(); para.push(line.trim()); }
  }
  if (code) out.push(`<pre><code>${esc(code.join("\n"))}</code></pre>`);
  flush();
  return out.join("");
}
function present({ kind, content = "", title = "", mimeType }) {
  content = String(content);
  let el;
  if (kind === "markdown") el = make("div", { className: "md", innerHTML: markdown(content) });
  else if (kind === "html") {
    el = make("iframe", { title: title || "canvas", srcdoc: content });
    el.setAttribute("sandbox", ""); // no scripts, forms, popups or same-origin access
  } else if (kind === "image") {
    const src = /^(data:image\/|https?:|\/)/i.test(content) ? content : `data:${mimeType || "image/png"};base64,${content}`;
    el = make("img", { src, alt: title || "image" });
  } else el = make("pre", { textContent: content });
  $("#canvas-body").replaceChildren(el);
  $("#canvas-title").textContent = title;
  $("#canvas").hidden = false;
  return { shown: true };
}
async function notify({ title = "clawos", body = "" }) {
  [title, body] = [String(title), String(body)];
  if ("Notification" in window && Notification.permission === "granted") {
    try { // Android only allows notifications through the service worker
      const reg = await navigator.serviceWorker?.getRegistration();
      if (reg) await reg.showNotification(title, { body, icon: "/app/icon.svg" });
      else new Notification(title, { body, icon: "/app/icon.svg" });
      return { shown: true };
    } catch { /* fall back to the toast */ }
  }
  toast(body ? `${title}: ${body}` : title);
  return { shown: true };
}
const COMMANDS = {
  "camera.snap": snap,
  "location.get": locate,
  "canvas.present": present,
  "canvas.clear": () => { $("#canvas").hidden = true; $("#canvas-body").replaceChildren(); return { cleared: true }; },
  "system.notify": notify,
};
node.onEvent = async (event, p) => {
  if (event !== "node.invoke.request") return;
  const reply = { id: p.id, nodeId: p.nodeId };
  try {
    const params = (typeof p.paramsJSON === "string" ? JSON.parse(p.paramsJSON) : p.params) ?? {};
    const run = COMMANDS[p.command];
    if (!run) throw fail("UNSUPPORTED_COMMAND", `unsupported command: ${p.command}`);
    Object.assign(reply, { ok: true, payloadJSON: JSON.stringify(await run(params)) });
  } catch (e) {
    Object.assign(reply, { ok: false, error: { code: e.code || "COMMAND_FAILED", message: e.message || String(e) } });
  }
  node.request("node.invoke.result", reply).catch((e) => console.warn("node.invoke.result", e));
};

// ---- start ----
function wire() {
  $("#pair-form").onsubmit = (e) => {
    e.preventDefault();
    if (window.Notification?.permission === "default") Notification.requestPermission().catch(() => {});
    pair($("#pair-code").value);
  };
  $("#pair-again").onclick = () => showPairing();
  $("#pair-cancel").onclick = showChat;
  $("#composer").onsubmit = (e) => { e.preventDefault(); sendMessage(); };
  $("#composer-text").onkeydown = (e) => { // Enter sends, Shift+Enter starts a new line
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendMessage(); }
  };
  $("#composer-text").oninput = ({ target }) => { target.style.height = ""; target.style.height = `${target.scrollHeight}px`; };
  $("#stop").onclick = stopRun;
  $("#photo").onchange = async ({ target }) => {
    const file = target.files?.[0];
    if (file) try { setPhoto(await readPhoto(file)); } catch { toast("Could not read that photo."); }
    target.value = "";
  };
  $("#photo-remove").onclick = () => setPhoto(null);
  $("#canvas-close").onclick = () => { $("#canvas").hidden = true; };
  // Back online, or back on screen: reconnect now rather than wait out the backoff.
  const nudge = () => links.forEach((l) => { if (l.enabled && !l.ws) { clearTimeout(l.timer); l.tries = 0; l.open(); } });
  addEventListener("online", nudge);
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && nudge());
  // A socket that has heard nothing, not even a tick, for 2.5 tick intervals is dead.
  setInterval(() => links.forEach((l) => { if (l.hello && Date.now() - l.seen > 2.5 * l.tick) l.drop(); }), 5000);
}
// The QR code of `clawos devices pair` opens /app#code=XXXXXXXX.
function pairFromHash() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (!code) return false;
  $("#pair-code").value = code;
  showPairing();
  pair(code);
  return true;
}
async function main() {
  wire();
  outbox.forEach(userBubble);
  // Scope /app (not just /app/) needs the Service-Worker-Allowed header; else fall back to /app/.
  navigator.serviceWorker?.register("/app/sw.js", { scope: "/app" })
    .catch(() => navigator.serviceWorker.register("/app/sw.js")).catch(() => {});
  try {
    if (!window.isSecureContext) throw new Error("this page needs HTTPS (or localhost)");
    await device();
  } catch (e) {
    showPairing(`This browser cannot keep a device key here: ${e.message}.`);
    $("#pair-button").disabled = true;
    return;
  }
  addEventListener("hashchange", pairFromHash);
  if (pairFromHash()) return;
  if (localStorage.getItem(tokenKey("operator"))) {
    showChat();
    operator.start();
    if (localStorage.getItem(tokenKey("node"))) node.start();
  } else showPairing();
}
main();
