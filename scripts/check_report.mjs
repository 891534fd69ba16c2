// scripts/check_report.mjs -- load an HTML report from disk in headless Chromium and
// report what the browser saw, as one JSON line on stdout. Plain Node 20, no npm
// packages: the DevTools protocol over --remote-debugging-pipe (fds 3 and 4), so
// nothing listens on the network.
//
// Usage: node scripts/check_report.mjs REPORT.html [--screenshot OUT.png] [--width 1200]
//        [--max-height 2400] [--chromium /usr/bin/chromium]
//
// Output: {svg, polyline, bar, whisker, legend, table, circle, text_nodes, errors: [...console
// errors, uncaught exceptions, failed loads], network: [non-file URLs requested], png: {width,
// height, nonwhite, colors}, screenshot}. `nonwhite` is the share of pixels that are not
// (near) white, `colors` the number of distinct colours (capped at 4096).
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";

const argv = process.argv.slice(2);
const opt = (k, d) => { const i = argv.indexOf("--" + k); return i >= 0 ? argv[i + 1] : d; };
const file = path.resolve(argv[0]);
const shot = opt("screenshot", null);
const width = Number(opt("width", 1200));
const maxHeight = Number(opt("max-height", 2400));
const chromium = opt("chromium", "/usr/bin/chromium");

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "rlaif-chromium-"));
const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
  "--mute-audio", `--user-data-dir=${profile}`, "--remote-debugging-pipe", "about:blank"];
// its own process group, so cleanup can kill the renderer and helper processes too
const child = spawn(chromium, flags, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"], detached: true });
let stderr = "";
child.stderr.on("data", (d) => { stderr += d; });

const cleanup = () => {
  try { process.kill(-child.pid, "SIGKILL"); } catch { try { child.kill("SIGKILL"); } catch {} }
  // helper processes may still be flushing into the profile for a moment
  try { fs.rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 }); } catch {}
};
const fail = (msg) => { cleanup(); console.error("check_report: " + msg + (stderr ? "\n" + stderr.slice(-2000) : "")); process.exit(2); };
const timer = setTimeout(() => fail("timed out after 60 s"), 60000);

// ---- the protocol over the pipe: JSON messages separated by NUL ----
const out = child.stdio[3], inp = child.stdio[4];
let nextId = 1, buf = Buffer.alloc(0);
const pending = new Map(), listeners = [];
inp.on("data", (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  let z;
  while ((z = buf.indexOf(0)) >= 0) {
    const msg = JSON.parse(buf.subarray(0, z).toString("utf8"));
    buf = buf.subarray(z + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});
child.on("exit", (code) => { if (pending.size) fail("chromium exited with " + code); });
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, { resolve, reject });
  out.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
});

// ---- PNG: decode enough to count pixels ----
function decodePng(b) {
  let p = 8, w = 0, h = 0, ct = 0, depth = 0;
  const idat = [];
  while (p < b.length) {
    const len = b.readUInt32BE(p), type = b.toString("ascii", p + 4, p + 8), data = b.subarray(p + 8, p + 8 + len);
    if (type === "IHDR") { w = data.readUInt32BE(0); h = data.readUInt32BE(4); depth = data[8]; ct = data[9]; }
    if (type === "IDAT") idat.push(data);
    p += 12 + len;
  }
  if (depth !== 8 || (ct !== 2 && ct !== 6)) throw new Error(`unsupported PNG (depth ${depth}, colour type ${ct})`);
  const bpp = ct === 6 ? 4 : 3, stride = w * bpp, raw = zlib.inflateSync(Buffer.concat(idat));
  const px = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)], row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0, up = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let v = row[x];
      if (f === 1) v += a; else if (f === 2) v += up; else if (f === 3) v += (a + up) >> 1;
      else if (f === 4) { const pa = Math.abs(up - c), pb = Math.abs(a - c), pc = Math.abs(a + up - 2 * c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? up : c; }
      px[y * stride + x] = v & 255;
    }
  }
  let nonwhite = 0;
  const colors = new Set();
  for (let i = 0; i < w * h; i++) {
    const r = px[i * bpp], g = px[i * bpp + 1], bl = px[i * bpp + 2];
    if (r < 240 || g < 240 || bl < 240) nonwhite++;
    if (colors.size < 4096) colors.add((r << 16) | (g << 8) | bl);
  }
  return { width: w, height: h, nonwhite: nonwhite / (w * h), colors: colors.size };
}

(async () => {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const s = (m, p) => send(m, p, sessionId);
  const errors = [], network = [];
  let loaded;
  const load = new Promise((r) => { loaded = r; });
  listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    const p = msg.params || {};
    if (msg.method === "Runtime.consoleAPICalled" && (p.type === "error" || p.type === "assert"))
      errors.push("console: " + (p.args || []).map((a) => a.value ?? a.description).join(" "));
    else if (msg.method === "Runtime.exceptionThrown") errors.push("exception: " + p.exceptionDetails?.text);
    else if (msg.method === "Log.entryAdded" && p.entry?.level === "error") errors.push("log: " + p.entry.text);
    else if (msg.method === "Network.requestWillBeSent") {
      const u = p.request?.url || "";
      if (!u.startsWith("file:") && !u.startsWith("data:") && !u.startsWith("about:")) network.push(u);
    } else if (msg.method === "Network.loadingFailed") errors.push("load failed: " + p.errorText);
    else if (msg.method === "Page.loadEventFired") loaded();
  });
  await s("Page.enable"); await s("Runtime.enable"); await s("Log.enable"); await s("Network.enable");
  await s("Emulation.setDeviceMetricsOverride", { width, height: 900, deviceScaleFactor: 1, mobile: false });
  await s("Page.navigate", { url: "file://" + file });
  await load;
  const count = async (sel) => (await s("Runtime.evaluate", { expression: `document.querySelectorAll(${JSON.stringify(sel)}).length`, returnByValue: true })).result.value;
  const result = {
    svg: await count("svg"), polyline: await count("svg polyline"), bar: await count("svg rect.bar"),
    whisker: await count("svg path.whisker"), legend: await count("svg g.legend"), table: await count("table"),
    circle: await count("svg circle"), text_nodes: await count("svg text"), errors, network,
  };
  // SVG elements that the browser actually laid out (non-zero boxes)
  result.svg_drawn = (await s("Runtime.evaluate", { returnByValue: true, expression:
    "[...document.querySelectorAll('svg')].filter(e => { const r = e.getBoundingClientRect(); return r.width > 50 && r.height > 50; }).length" })).result.value;
  const metrics = await s("Page.getLayoutMetrics");
  const h = Math.min(maxHeight, Math.ceil((metrics.cssContentSize || metrics.contentSize).height));
  await s("Emulation.setDeviceMetricsOverride", { width, height: h, deviceScaleFactor: 1, mobile: false });
  const { data } = await s("Page.captureScreenshot", { format: "png" });
  const png = Buffer.from(data, "base64");
  result.png = decodePng(png);
  if (shot) { fs.writeFileSync(shot, png); result.screenshot = shot; }
  clearTimeout(timer);
  cleanup();
  console.log(JSON.stringify(result));
  process.exit(0);
})().catch((e) => fail(String(e && e.stack || e)));
