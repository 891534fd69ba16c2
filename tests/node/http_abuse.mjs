// tests/node/http_abuse.mjs -- raw-socket misbehaviour against `rlaif serve`
// (tests/spec/serve_spec.lua): a garbage request line, a chunked body that never
// ends, and a client that trickles its body one byte at a time, while a normal
// request is served. Plain Node (net and http modules only).
// Usage: node http_abuse.mjs --port PORT. Prints one JSON object.
import net from "node:net";
import http from "node:http";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const port = Number(args.port);

// Send `text`, resolve with what came back before the server closed (or timeout).
function raw(text, ms = 5000) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    const t = setTimeout(() => { s.destroy(); resolve(got); }, ms);
    s.on("data", (d) => { got += d.toString("latin1"); });
    s.on("close", () => { clearTimeout(t); resolve(got); });
    s.on("error", () => {});
    s.write(text);
  });
}

// Write chunks until the server closes the connection; resolve true when it did.
function endless_chunked(ms = 20000) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    const t = setTimeout(() => { s.destroy(); resolve(false); }, ms);
    let closed = false;
    const done = () => { if (!closed) { closed = true; clearTimeout(t); resolve(true); } };
    s.on("close", done);
    s.on("error", done);
    s.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
      "Transfer-Encoding: chunked\r\n\r\n");
    const chunk = "10000\r\n" + "a".repeat(65536) + "\r\n";
    const pump = () => {
      if (closed) return;
      if (s.write(chunk)) setImmediate(pump);
      else s.once("drain", pump);
    };
    pump();
  });
}

// A body sent one byte every 300 ms; resolve {closed, seconds}.
function trickle(ms = 15000) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    const t0 = Date.now();
    let closed = false, timer;
    const finish = (c) => { if (!closed) { closed = true; clearInterval(timer); resolve({ closed: c, seconds: (Date.now() - t0) / 1000 }); } };
    const limit = setTimeout(() => { s.destroy(); finish(false); }, ms);
    s.on("close", () => { clearTimeout(limit); finish(true); });
    s.on("error", () => {});
    s.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
    timer = setInterval(() => { if (!closed) s.write("a"); }, 300);
  });
}

function get(path) {
  return new Promise((resolve) => {
    http.get({ host: "127.0.0.1", port, path }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); })
      .on("error", () => resolve(0));
  });
}

const out = {};
out.garbage = (await raw("GARBAGE \u0001\u0002 NOT-HTTP\r\n\r\n")).split("\r\n")[0];
out.chunked_closed = await endless_chunked();
const slow = trickle();
await new Promise((r) => setTimeout(r, 500));
out.during_slow = await get("/v1/models");
const sr = await slow;
out.slow_closed = sr.closed;
out.slow_seconds = sr.seconds;
process.stdout.write(JSON.stringify(out) + "\n");
