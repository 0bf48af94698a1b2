// clawos admin UI: plain JavaScript, no framework, no build step. Every piece of data comes
// from the Gateway's /api endpoints with the admin token; live events come over /ws.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "class") e.className = v;
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const time = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");
const pretty = (v) => el("pre", {}, JSON.stringify(v, null, 2));

// ---- token ---------------------------------------------------------------------------
const TOKEN_KEY = "clawos-admin-token";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
{
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const res = await fetch(path, {
    ...opts,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json", ...(opts.headers || {}) },
  });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (res.status === 401) {
    showLogin("The token was refused.");
    throw new Unauthorized(body.error);
  }
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  start();
});

// ---- views ---------------------------------------------------------------------------
const views = {};
let current = "events";

function show(name) {
  current = name;
  for (const b of $$("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const s of $$(".view")) s.hidden = s.id !== "view-" + name;
  views[name]().catch(report);
}
for (const b of $$("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));

function report(e) {
  if (e instanceof Unauthorized) return;
  console.error(e);
  const note = $("#view-" + current + " .note") || $("#events-note");
  note.textContent = "error: " + e.message;
}

// ---- event log -----------------------------------------------------------------------
let head = 0;
let nextBefore = null;
let newest = 0;

function filterQuery() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData($("#filters"))) if (v.trim()) p.set(k, v.trim());
  return p;
}

// The one-line summary of a payload, as the server writes it for a page.
function summaryOf(payload) {
  if (!payload) return "";
  const k = ["text", "reason", "summary", "prompt", "tool", "branch", "channel"].find((k) => typeof payload[k] === "string");
  const line = k ? `${k}: ${payload[k]}` : JSON.stringify(payload);
  return line.length > 160 ? line.slice(0, 160) + "…" : line;
}

function eventRow(e) {
  return el("tr", { "data-seq": e.seq, on: { click: () => openEvent(e.seq) } },
    el("td", {}, e.seq), el("td", {}, time(e.ts_ms)), el("td", {}, e.kind),
    el("td", {}, e.stream), el("td", {}, e.summary));
}

async function loadEvents(more) {
  const p = filterQuery();
  if (more && nextBefore) p.set("before", nextBefore);
  const page = await api("/api/events?" + p);
  setHead(page.head);
  const body = $("#events tbody");
  if (!more) {
    body.replaceChildren();
    newest = page.head;
  }
  for (const e of page.events) body.append(eventRow(e));
  nextBefore = page.next_before;
  $("#older").hidden = !nextBefore;
  $("#events-note").textContent = `${body.children.length} shown; ${page.scanned} examined in this page`;
}
views.events = () => loadEvents(false);
$("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadEvents(false).catch(report); });
$("#older").addEventListener("click", () => loadEvents(true).catch(report));

function link(seq) {
  return el("a", { on: { click: () => { show("events"); openEvent(seq); } } }, "#" + seq);
}

function linkList(title, rows) {
  if (!rows || rows.length === 0) return null;
  return el("div", {}, el("h4", {}, title),
    el("ul", {}, rows.map((r) => el("li", {}, link(r.seq), " ", r.kind, " ", el("span", { class: "note" }, r.summary)))));
}

async function openEvent(seq) {
  const e = await api("/api/events/" + seq);
  for (const tr of $$("#events tr.sel")) tr.classList.remove("sel");
  const row = $(`#events tr[data-seq="${seq}"]`);
  if (row) row.classList.add("sel");
  const envelope = { ...e };
  for (const k of ["payload", "caused_by", "caused", "correlated"]) delete envelope[k];
  $("#event-detail").replaceChildren(
    el("h3", {}, `#${e.seq} ${e.kind}`),
    el("p", { class: "note" }, `stream ${e.stream} v${e.stream_version} · ${time(e.ts_ms)}`),
    el("h4", {}, "payload"), pretty(e.payload ?? e.decode_error),
    el("h4", {}, "envelope"), pretty(envelope),
    e.caused_by ? linkList("caused by", [e.caused_by]) : null,
    linkList("caused", e.caused),
    linkList("same correlation", e.correlated));
}

function setHead(h) {
  head = Math.max(head, h);
  $("#head").textContent = "head " + head;
}

// Live: new events arrive over /ws `events.subscribe`; unfiltered lists get them at the top.
let socket = null;
let ready = false;          // the socket's connect was accepted
const waiting = new Map();  // request id → {resolve, reject}
let nextRequest = 0;

// One request over /ws, answered by its response.
function rpc(method, params) {
  if (!socket || !ready) return Promise.reject(new Error("not connected to /ws yet"));
  const id = "r" + (++nextRequest);
  socket.send(JSON.stringify({ type: "req", id, method, params: params || {} }));
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}
function follow() {
  if (socket) return;
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  socket = ws;
  ws.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === "event" && f.event === "connect.challenge") {
      // The admin token is the shared token; the admin UI needs no device identity.
      ws.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params: {
        minProtocol: 3, maxProtocol: 4, role: "operator",
        client: { id: "clawos-admin", version: "1", platform: navigator.platform || "web", mode: "ui" },
        scopes: ["operator.admin"], auth: { token } } }));
    } else if (f.type === "res" && waiting.has(f.id)) {
      const w = waiting.get(f.id);
      waiting.delete(f.id);
      if (f.ok) w.resolve(f.payload); else w.reject(new Error(f.error?.message || "refused"));
    } else if (f.type === "event" && f.event === "chat") {
      chatEvent(f.payload);
    } else if (f.type === "event" && f.event.startsWith("device.pair.")) {
      if (current === "devices") views.devices().catch(report);
    } else if (f.type === "res" && f.id === "connect" && f.ok) {
      ws.send(JSON.stringify({ type: "req", id: "subscribe", method: "events.subscribe", params: { fromSeq: head + 1 } }));
      $("#live").classList.add("on");
      $("#live").textContent = "live";
      ready = true;
    } else if (f.type === "event" && f.event === "log") {
      setHead(f.payload.seq);
      sessionChanged(f.payload.stream);
      const filtered = [...filterQuery().keys()].length > 0;
      if (!filtered && $("#follow").checked && f.payload.seq > newest) {
        newest = f.payload.seq;
        const p = f.payload;
        $("#events tbody").prepend(eventRow({ seq: p.seq, ts_ms: p.ts_ms, kind: p.kind, stream: p.stream, summary: summaryOf(p.payload) }));
      }
    }
  };
  ws.onclose = () => { socket = null; ready = false; $("#live").classList.remove("on"); $("#live").textContent = "offline"; setTimeout(follow, 3000); };
}

// ---- sessions and time travel --------------------------------------------------------
let sessions = [];
let session = null;      // the live SessionSnapshot of the chosen session
let shown = null;        // the snapshot on screen (live or at a seq)
let branch = null;       // the branch whose transcript is shown
let sliderTimer = null;
let ticket = 0;          // only the newest time-travel answer is drawn

async function loadSessionList(select) {
  sessions = await api("/api/sessions");
  const keep = select.value;
  select.replaceChildren(...sessions.map((s) =>
    el("option", { value: s.session_id }, `${s.session_id} · ${s.identity} · ${s.messages} messages`)));
  if (keep && sessions.some((s) => s.session_id === keep)) select.value = keep;
}

views.sessions = async () => {
  await loadSessionList($("#session-pick"));
  await openSession($("#session-pick").value);
};
$("#session-pick").addEventListener("change", () => openSession($("#session-pick").value).catch(report));

async function openSession(id) {
  if (!id) return;
  ++ticket;
  const snaps = await api("/api/sessions/" + encodeURIComponent(id));
  session = snaps[0];
  if (!session) return;
  const h = (await api("/api/events?limit=1")).head;
  setHead(h);
  const s = $("#slider");
  s.min = session.session.started_seq;
  s.max = head;
  s.value = head;
  $("#seq-box").value = head;
  if (!branch || !session.branches.some((b) => b.branch.name === branch)) branch = session.session.active_branch;
  render(session, "live");
}

function render(snap, label) {
  shown = snap;
  $("#slider-info").textContent = label;
  const names = snap ? snap.branches.map((b) => b.branch.name) : [];
  if (snap && !names.includes(branch)) branch = snap.session.active_branch;
  $("#branch-pick").replaceChildren(...names.map((n) =>
    el("button", { class: n === branch ? "active" : "", "data-branch": n, on: { click: () => { branch = n; render(shown, label); } } }, n)));
  renderTranscript(snap);
  renderTree(snap);
}

function renderTranscript(snap) {
  const list = $("#transcript");
  list.replaceChildren();
  if (!snap) {
    $("#session-note").textContent = "the session did not exist yet at this point";
    renderTree(null);
    return;
  }
  const b = snap.branches.find((x) => x.branch.name === branch);
  if (!b) return;
  const marks = new Map(b.compactions.map((c) => [c.covers_through, c]));
  for (const m of b.transcript) {
    list.append(el("li", { class: m.role, "data-seq": m.seq },
      el("div", { class: "meta" }, link(m.seq), el("b", {}, m.role), el("span", {}, `${m.channel} · ${m.address}`),
        m.branch !== branch ? el("span", {}, `(from ${m.branch})`) : null, el("span", {}, time(m.ts_ms)),
        el("button", { class: "fork", title: "new branch at this message", on: { click: () => forkAt(m.seq).catch(report) } }, "fork"),
        m.role === "user" ? el("button", { class: "replay", title: "re-run this turn on a new branch", on: { click: () => replayAt(m.seq).catch(report) } }, "replay from here") : null),
      el("div", {}, m.text)));
    const c = marks.get(m.seq);
    if (c) list.append(el("li", { class: "compaction" }, el("div", { class: "meta" }, link(c.seq), "compaction"), c.summary));
  }
  $("#session-note").textContent = `${b.transcript.length} messages on ${branch}; ${snap.branches.length} branches`;
}

// The branch tree: every message once, one lane per branch, rows in seq order.
function renderTree(snap) {
  const box = $("#tree");
  box.replaceChildren();
  if (!snap) return;
  const nodes = new Map();
  for (const b of snap.branches) for (const m of b.transcript) nodes.set(m.seq, m);
  const lanes = snap.branches.map((b) => b.branch.name);
  const ordered = [...nodes.values()].sort((a, b) => a.seq - b.seq);
  const row = new Map(ordered.map((m, i) => [m.seq, i]));
  const x = (name) => 20 + 90 * Math.max(0, lanes.indexOf(name));
  const y = (seq) => 30 + 22 * row.get(seq);
  const g = svg("svg", { width: 40 + 90 * lanes.length, height: 50 + 22 * ordered.length, id: "tree-svg" });
  for (const m of ordered) {
    if (m.parent_seq && nodes.has(m.parent_seq)) {
      const p = nodes.get(m.parent_seq);
      g.append(svg("path", { class: "edge", d: `M${x(p.branch)},${y(p.seq)} C${x(p.branch)},${y(m.seq)} ${x(m.branch)},${y(p.seq)} ${x(m.branch)},${y(m.seq)}` }));
    }
  }
  for (const b of snap.branches) {
    const lane = svg("g", { class: "branch", "data-branch": b.branch.name });
    const label = svg("text", { x: x(b.branch.name) - 8, y: 14 });
    label.textContent = b.branch.name + (b.branch.name === snap.session.active_branch ? " *" : "");
    lane.append(label);
    if (b.branch.fork_seq && nodes.has(b.branch.fork_seq)) {
      lane.append(svg("path", { class: "edge", "stroke-dasharray": "3 2",
        d: `M${x(nodes.get(b.branch.fork_seq).branch)},${y(b.branch.fork_seq)} L${x(b.branch.name)},${y(b.branch.fork_seq) + 11}` }));
    }
    g.append(lane);
  }
  for (const m of ordered) {
    const n = svg("g", { class: "node " + m.role, "data-seq": m.seq, transform: `translate(${x(m.branch)},${y(m.seq)})` });
    n.append(svg("circle", { r: 6 }));
    const t = svg("text", { x: 9, y: 4 });
    t.textContent = m.seq;
    const tip = svg("title");
    tip.textContent = `#${m.seq} ${m.role} on ${m.branch}: ${m.text.slice(0, 80)}`;
    n.append(t, tip);
    n.addEventListener("click", () => { branch = m.branch; render(shown, $("#slider-info").textContent); });
    g.append(n);
  }
  box.append(g);
}

async function travel(seq) {
  if (!session) return;
  seq = Math.max(1, Math.min(Number(seq), head));
  $("#seq-box").value = seq;
  $("#slider").value = seq;
  const id = session.session.session_id;
  const mine = ++ticket;
  const st = await api(`/api/state?seq=${seq}&session=${encodeURIComponent(id)}`);
  if (mine !== ticket) return;
  render(st.sessions[0] || null, `as of seq ${seq} (folded in ${st.fold_ms} ms)`);
}
$("#slider").addEventListener("input", () => {
  clearTimeout(sliderTimer);
  sliderTimer = setTimeout(() => travel($("#slider").value).catch(report), 80);
});
const travelToBox = () => { if ($("#seq-box").value !== "") travel($("#seq-box").value).catch(report); };
$("#seq-box").addEventListener("change", travelToBox);
$("#seq-box").addEventListener("keydown", (ev) => { if (ev.key === "Enter") travelToBox(); });

async function forkAt(seq) {
  const id = session.session.session_id;
  const r = await api(`/api/sessions/${encodeURIComponent(id)}/fork`, { method: "POST", body: JSON.stringify({ at: seq }) });
  branch = r.branch;
  await openSession(id);
}

async function replayAt(seq) {
  const id = session.session.session_id;
  const r = await api(`/api/sessions/${encodeURIComponent(id)}/replay`, { method: "POST", body: JSON.stringify({ at: seq }) });
  branch = r.branch;
  await openSession(id);
  // The turn runs in the Gateway's session queue; its answer arrives over /ws.
}

// A live session view (not one at a past seq) redraws when its stream gets an event.
let redraw = null;
function sessionChanged(stream) {
  if (current !== "sessions" || !session || $("#slider-info").textContent !== "live") return;
  if (stream !== "session:" + session.session.session_id) return;
  clearTimeout(redraw);
  redraw = setTimeout(() => openSession(session.session.session_id).catch(report), 150);
}

// ---- audit ---------------------------------------------------------------------------
views.audit = async () => {
  const pick = $("#audit-pick");
  await loadSessionList(pick);
  await loadTurns(pick.value);
};
$("#audit-pick").addEventListener("change", () => loadTurns($("#audit-pick").value).catch(report));

async function loadTurns(id) {
  if (!id) return;
  const a = await api(`/api/sessions/${encodeURIComponent(id)}/audit`);
  $("#turns").replaceChildren(...a.turns.map((t) =>
    el("li", { class: t.status, "data-turn": t.turn_id, on: { click: () => openTurn(t) } },
      el("b", {}, t.status), ` ${t.agent} on ${t.branch} · trigger `, link(t.trigger_seq), ` · ${t.steps.length} steps`)));
  $("#turn-detail").replaceChildren(el("p", { class: "note" }, `${a.turns.length} turns; click one for its timeline`));
}

function openTurn(t) {
  const steps = t.steps.map((s) => {
    const d = s.detail || {};
    let head;
    switch (s.kind) {
      case "LlmRequested": head = `LLM call: ${d.provider || ""} ${d.model || ""}, ${d.request_bytes} bytes, tools ${(d.tools || []).join(", ")}`; break;
      case "LlmResponded": head = `LLM answer: ${d.prompt_tokens} prompt + ${d.completion_tokens} completion tokens in ${d.latency_ms} ms`; break;
      case "ToolCalled": head = `tool ${d.tool} called`; break;
      case "ToolReturned": head = `tool returned: exit ${d.exit_status} in ${d.duration_ms} ms`; break;
      default: head = s.kind;
    }
    return el("div", { class: "step " + s.kind }, el("h4", {}, link(s.seq), " ", head), pretty(d));
  });
  $("#turn-detail").replaceChildren(
    el("h3", {}, `turn ${t.turn_id}`),
    el("p", {}, `${t.agent} on ${t.branch}, `, el("b", { class: "status" }, t.status), t.detail ? ` — ${t.detail}` : "",
      " · started ", link(t.started_seq), t.ended_seq ? [" · ended ", link(t.ended_seq)] : ""),
    ...steps);
}

// ---- channels ------------------------------------------------------------------------
views.channels = async () => {
  const c = await api("/api/channels");
  $("#channels tbody").replaceChildren(...c.channels.map((r) =>
    el("tr", { "data-channel": r.channel },
      el("td", {}, r.channel), el("td", {}, r.kind),
      el("td", { class: r.state === "running" ? "up" : "down" }, r.state),
      el("td", {}, r.pid ?? ""), el("td", {}, r.restarts), el("td", {}, r.last_exit ?? ""),
      el("td", {}, r.last_seen_ms_ago == null ? "" : `${Math.round(r.last_seen_ms_ago / 1000)} s ago`),
      el("td", {}, r.pending_deliveries))));
};

// ---- usage ---------------------------------------------------------------------------
views.usage = async () => {
  const form = new FormData($("#usage-form"));
  const p = new URLSearchParams({ by: form.get("by") });
  const since = form.get("since");
  if (since !== "month") p.set("since_ms", String(Date.now() - Number(since) * 86400000));
  const u = await api("/api/usage?" + p);
  const money = (n) => "$" + n.toFixed(4);
  $("#usage tbody").replaceChildren(...u.lines.map((l) =>
    el("tr", { "data-key": l.key },
      el("td", {}, l.key || "(unknown)"), el("td", {}, l.turns), el("td", {}, l.calls),
      el("td", {}, l.prompt_tokens), el("td", {}, l.completion_tokens),
      el("td", { title: l.unpriced_tokens ? `${l.unpriced_tokens} tokens have no price` : "" },
        money(l.cost_usd) + (l.unpriced_tokens ? " +" : "")))));
  const total = u.lines.reduce((s, l) => s + l.cost_usd, 0);
  $("#usage-total").textContent = `since ${new Date(u.since_ms).toISOString()}: ${money(total)}`;
  $("#budgets tbody").replaceChildren(...u.budgets.map((b) =>
    el("tr", {},
      el("td", {}, [b.identity, b.agent && "agent " + b.agent].filter(Boolean).join(" with ")),
      el("td", {}, b.per), el("td", {}, b.usd == null ? "" : money(b.usd)),
      el("td", {}, b.tokens ?? ""))));
};
$("#usage-form").addEventListener("change", () => views.usage().catch(report));

// ---- memory --------------------------------------------------------------------------
async function searchMemories() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData($("#memory-search"))) if (v.trim()) p.set(k, v.trim());
  const r = await api("/api/memories?" + p);
  $("#memories tbody").replaceChildren(...r.memories.map((m) =>
    el("tr", {}, el("td", {}, link(m.written_seq)), el("td", {}, m.identity ?? ""), el("td", {}, m.agent ?? ""),
      el("td", {}, m.text), el("td", {}, (m.tags || []).join(", ")), el("td", {}, m.score == null ? "" : m.score.toFixed(2)))));
}
views.memory = searchMemories;
$("#memory-search").addEventListener("submit", (ev) => { ev.preventDefault(); searchMemories().catch(report); });

// ---- state at any seq: bindings, identities, channels, memories, sessions -------------
function table(title, rows) {
  if (!rows || rows.length === 0) return el("div", {}, el("h3", {}, title), el("p", { class: "note" }, "none"));
  const cols = Object.keys(rows[0]);
  return el("div", { "data-table": title }, el("h3", {}, `${title} (${rows.length})`),
    el("table", {}, el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, c)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => el("td", {}, r[c] ?? "")))))));
}

async function stateAt(seq) {
  $("#state-info").textContent = "folding the log…";
  const st = await api("/api/state?seq=" + seq);
  $("#state-info").textContent = `as of seq ${st.seq} of ${st.head} (folded in ${st.fold_ms} ms)`;
  const sessionRows = st.sessions.map((s) => ({ ...s.session, branches: s.branches.map((b) => b.name).join(", ") }));
  $("#state-tables").replaceChildren(table("sessions", sessionRows), table("bindings", st.bindings),
    table("identities", st.identities), table("channels", st.channels), table("memories", st.memories),
    canvasAt(st.canvas || []));
}

// What each session's canvas showed: images (charts, screenshots) drawn, HTML in a frame
// that may run nothing, Markdown as its text.
function canvasAt(rows) {
  const shown = rows.map((r) => {
    let body;
    if (r.kind === "image" && /^(data:image\/|https:)/i.test(r.content)) {
      body = el("img", { src: r.content, alt: r.title || "canvas image", class: "canvas-image" });
    } else if (r.kind === "html") {
      body = el("iframe", { sandbox: "", srcdoc: r.content, class: "canvas-frame", title: r.title || "canvas" });
    } else {
      body = el("pre", {}, r.content);
    }
    return el("div", { class: "canvas", "data-canvas": r.session_id },
      el("p", { class: "note" }, `${r.agent} in ${r.session_id} (seq ${r.seq})${r.title ? ": " + r.title : ""}`), body);
  });
  return el("div", { "data-table": "canvas" }, el("h3", {}, `canvas (${rows.length})`),
    ...(rows.length ? shown : [el("p", { class: "note" }, "none")]));
}
views.state = async () => {
  const h = (await api("/api/events?limit=1")).head;
  setHead(h);
  const s = $("#state-slider");
  s.max = head;
  if (!$("#state-seq").value) $("#state-seq").value = head;
  s.value = $("#state-seq").value;
  await stateAt($("#state-seq").value);
};
$("#state-slider").addEventListener("change", () => { $("#state-seq").value = $("#state-slider").value; stateAt($("#state-seq").value).catch(report); });
$("#state-go").addEventListener("click", () => stateAt($("#state-seq").value).catch(report));

// ---- chat ----------------------------------------------------------------------------
// Any session, by its key; replies stream in as `chat` events for that key.
let chatKey = "main";
const bubbles = new Map();  // runId → the reply's list item

function chatLine(role, text, run) {
  const li = el("li", { class: "msg " + role }, el("b", {}, role + ": "), el("span", {}, text));
  if (run) li.dataset.runId = run;
  $("#chat-log").append(li);
  return li;
}

async function loadChat() {
  const h = await rpc("chat.history", { sessionKey: chatKey });
  chatKey = h.sessionKey;
  $("#chat-key").value = chatKey;
  $("#chat-log").replaceChildren();
  bubbles.clear();
  for (const m of h.messages) chatLine(m.role, (m.content || []).map((c) => c.text || "").join(""));
  $("#chat-note").textContent = h.sessionId ? `session ${h.sessionId}` : "new session: the first message opens it";
}

function chatEvent(p) {
  if (current !== "chat" || p.sessionKey !== chatKey) return;
  let li = bubbles.get(p.runId);
  if (!li) { li = chatLine("assistant", "", p.runId); bubbles.set(p.runId, li); }
  const text = p.message?.content?.[0]?.text;
  if (text != null) li.querySelector("span").textContent = text;
  if (p.state === "error" || p.state === "aborted") li.querySelector("span").textContent += ` [${p.state}: ${p.errorMessage || ""}]`;
  li.dataset.state = p.state;
}

views.chat = async () => {
  const list = await rpc("sessions.list", {});
  const pick = $("#chat-session");
  pick.replaceChildren(el("option", { value: "main" }, "main (the operator's own)"),
    ...list.sessions.map((s) => el("option", { value: s.key }, `${s.key} (${s.messages} messages)`)));
  pick.value = [...pick.options].some((o) => o.value === chatKey) ? chatKey : "main";
  await loadChat();
};
$("#chat-session").addEventListener("change", () => { chatKey = $("#chat-session").value; loadChat().catch(report); });
$("#chat-key").addEventListener("change", () => { chatKey = $("#chat-key").value.trim() || "main"; loadChat().catch(report); });
$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("#chat-text").value.trim();
  if (!text) return;
  $("#chat-text").value = "";
  chatLine("user", text);
  rpc("chat.send", { sessionKey: chatKey, message: text, idempotencyKey: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) })
    .catch(report);
});
$("#chat-stop").addEventListener("click", () => rpc("chat.abort", { sessionKey: chatKey }).catch(report));

// ---- devices, nodes, configuration ---------------------------------------------------
views.devices = async () => {
  const [pairs, nodes, config] = await Promise.all([rpc("device.pair.list"), rpc("node.list"), rpc("config.get")]);
  const act = (label, method, params) => el("button", { on: { click: () => rpc(method, params).then(() => views.devices()).catch(report) } }, label);
  $("#device-requests tbody").replaceChildren(...pairs.pending.map((r) =>
    el("tr", { "data-request": r.requestId }, el("td", {}, r.requestId), el("td", {}, r.deviceId.slice(0, 12)),
      el("td", {}, r.displayName), el("td", {}, r.role), el("td", {}, r.scopes.join(", ")), el("td", {}, r.remoteIp),
      el("td", {}, act("Approve", "device.pair.approve", { requestId: r.requestId }), act("Reject", "device.pair.reject", { requestId: r.requestId })))));
  $("#devices tbody").replaceChildren(...pairs.paired.map((d) =>
    el("tr", { "data-device": d.deviceId }, el("td", {}, d.deviceId.slice(0, 12)), el("td", {}, d.displayName),
      el("td", {}, d.roles.join(", ")), el("td", {}, d.scopes.join(", ")), el("td", {}, d.connected ? "yes" : "no"),
      el("td", {}, act("Revoke", "device.pair.remove", { deviceId: d.deviceId })))));
  $("#nodes tbody").replaceChildren(...nodes.nodes.map((n) =>
    el("tr", {}, el("td", {}, n.nodeId.slice(0, 12)), el("td", {}, n.displayName), el("td", {}, n.platform), el("td", {}, n.commands.join(", ")))));
  $("#config").textContent = JSON.stringify(config.parsed, null, 2);
};

// ---- start ---------------------------------------------------------------------------
async function start() {
  if (!token) return showLogin("");
  try {
    await loadEvents(false);
  } catch (e) {
    if (!(e instanceof Unauthorized)) report(e);
    return;
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  follow();
}
start();
