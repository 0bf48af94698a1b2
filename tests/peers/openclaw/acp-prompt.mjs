// One prompt through `openclaw acp`, OpenClaw's stdio ACP bridge, which connects to the
// Gateway with a device identity and sends the prompt as chat.send, then waits for chat
// events. Prints one JSON line: {ok, text, stopReason} or {ok:false, error}.
//   node acp-prompt.mjs OPENCLAW_MJS WS_URL TOKEN_FILE TEXT
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const [bin, url, tokenFile, text] = process.argv.slice(2);
const bridge = spawn(process.execPath, [bin, "acp", "--url", url, "--token-file", tokenFile], {
  stdio: ["pipe", "pipe", "inherit"],
});
const waiting = new Map();
const chunks = [];
let next = 0;
function call(method, params) {
  const id = ++next;
  bridge.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}
createInterface({ input: bridge.stdout }).on("line", (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.id !== undefined && waiting.has(m.id) && !m.method) {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(m.error.message)); else w.resolve(m.result);
  } else if (m.method === "session/update" && m.params?.update?.sessionUpdate === "agent_message_chunk") {
    chunks.push(m.params.update.content?.text ?? "");
  } else if (m.id !== undefined && m.method) {
    bridge.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "not offered" } }) + "\n");
  }
});
try {
  await call("initialize", { protocolVersion: 1, clientCapabilities: {} });
  const { sessionId } = await call("session/new", { cwd: process.cwd(), mcpServers: [] });
  const done = await call("session/prompt", { sessionId, prompt: [{ type: "text", text }] });
  console.log(JSON.stringify({ ok: true, text: chunks.join(""), stopReason: done.stopReason }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e.message ?? e) }));
  process.exitCode = 1;
} finally {
  bridge.stdin.end();
  setTimeout(() => bridge.kill(), 1500).unref();
}
