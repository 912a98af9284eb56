// End-to-end: the demo page over HTTPS, its client over `wss://` (issue 16, item 0). The test
// makes a self-signed certificate for localhost with the `openssl` CLI, starts the real server
// with `--tls-cert`/`--tls-key`, and loads https://localhost:PORT/ in headless Chromium: the
// page's client opens `wss://` (its scheme follows the page's), logs in, joins a room and gets
// state pushes. The server speaks TLS only on that port: plain http://localhost:PORT/ serves
// no page, and a page served over plain http (by this test, on another port, an origin the
// server's allow-list admits) cannot open a `ws://` socket to it, while the same page can open
// `wss://`: the transport refuses it, not the origin list.
//
// Chromium trusts the test certificate by `--ignore-certificate-errors-spki-list=HASH`, the
// SHA-256 of the certificate's public key: it accepts that one key despite its unknown issuer,
// and still refuses every other certificate error, where `--ignore-certificate-errors` (or
// Playwright's `ignoreHTTPSErrors`) would accept any certificate at all. Adding a CA to the
// system's NSS store would need `certutil` and a HOME of the test's own; the SPKI pin needs
// neither.
//
//   TICKSOCK_SERVER_BIN  the server binary (default ../target/release/ticksock-arena, from web/)
//   CHROMIUM_BIN         the browser (default /usr/bin/chromium, Debian's package)
//   OPENSSL_BIN          the OpenSSL CLI (default `openssl` on the PATH; the test fails without
//                        one, it never skips)
//
// Only loopback addresses are used. Server, plain page server and browser are stopped at the
// end, within bounded time; the certificate's directory is removed.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, ServerProcess, tempDbPath, within } from "./support.mjs";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_BIN = resolve(WEB, process.env.TICKSOCK_SERVER_BIN ?? "../target/release/ticksock-arena");
const OPENSSL_BIN = process.env.OPENSSL_BIN ?? "openssl";

const serverProcess = new ServerProcess(SERVER_BIN, "run `cargo build --release -p ticksock-arena` (or set TICKSOCK_SERVER_BIN)");
const browser = new Browser();
let plainServer = null;
let certDir = null;

after(async () => {
  await browser.stop().catch((e) => console.error("e2e: stopping the browser:", e));
  await serverProcess.stop().catch((e) => console.error("e2e: stopping the server:", e));
  if (plainServer) await within(5_000, "plain page server close", new Promise((r) => plainServer.close(r))).catch(() => {});
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

// ----- helpers ---------------------------------------------------------------------------

/**
 * A self-signed certificate for localhost and 127.0.0.1 (P-256, one day) and its key, as PEM
 * files in a fresh directory; resolves with their paths and the certificate's text.
 */
function makeTestCertificate() {
  certDir = mkdtempSync(join(tmpdir(), "ticksock-e2e-tls-"));
  const cert = join(certDir, "cert.pem");
  const key = join(certDir, "key.pem");
  const run = spawnSync(
    OPENSSL_BIN,
    [
      "req", "-x509", "-nodes", "-days", "1",
      "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-keyout", key, "-out", cert,
      "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-addext", "extendedKeyUsage=serverAuth",
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  if (run.error) {
    throw new Error(
      `cannot run ${OPENSSL_BIN} (${run.error.code ?? run.error.message}): the TLS e2e test makes its certificate with ` +
        "the OpenSSL CLI; install it (Debian: apt-get install openssl) or set OPENSSL_BIN",
    );
  }
  if (run.status !== 0) throw new Error(`${OPENSSL_BIN} req failed (${run.status ?? run.signal}):\n${run.stderr}`);
  return { cert, key, pem: readFileSync(cert, "utf8") };
}

/** Chromium's pin for `pem`: base64 of the SHA-256 of its SubjectPublicKeyInfo (DER). */
function spkiHash(pem) {
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

/** GET `url` with Node's https, trusting only `ca` if given; resolves {status, body} or rejects. */
function httpsText(url, ca) {
  return within(
    5_000,
    `GET ${url}`,
    new Promise((resolve, reject) => {
      const req = httpsGet(url, ca ? { ca } : {}, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body }));
        res.on("error", reject);
      });
      req.on("error", reject);
    }),
  );
}

/** GET `url` in plain HTTP; resolves with the error it fails with, rejects if it answers. */
function plainHttpFails(url) {
  return within(
    5_000,
    `plain GET ${url}`,
    new Promise((resolve, reject) => {
      const req = httpGet(url, (res) => {
        res.resume();
        reject(new Error(`plain http ${url} answered ${res.statusCode}: the port should speak TLS only`));
      });
      req.on("error", resolve);
    }),
  );
}

/** A plain-http server on 127.0.0.1 serving one small page at /plain.html; resolves its port. */
function startPlainPageServer() {
  plainServer = createServer((req, res) => {
    if (req.url === "/plain.html") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>plain</title><p>served over plain http</p>");
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    plainServer.once("error", reject);
    plainServer.listen(0, "127.0.0.1", () => resolve(plainServer.address().port));
  });
}

/**
 * In the page: opens a WebSocket to `url` offering ticksock.v2.json and waits (bounded) for it
 * to open or fail. Resolves {opened, protocol, firstMessage, closeCode}: an opened socket is
 * closed once its first message (the welcome) arrives.
 */
function tryWebSocket(page, url) {
  return page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const result = { opened: false, protocol: null, firstMessage: null, closeCode: null };
        const ws = new WebSocket(url, ["ticksock.v2.json"]);
        const timer = setTimeout(() => {
          result.closeCode = "no close within 5 s";
          resolve(result);
        }, 5_000);
        ws.onopen = () => {
          result.opened = true;
          result.protocol = ws.protocol;
        };
        ws.onmessage = (e) => {
          result.firstMessage ??= String(e.data);
          ws.close(1000);
        };
        ws.onclose = (e) => {
          clearTimeout(timer);
          result.closeCode = e.code;
          resolve(result);
        };
      }),
    url,
  );
}

/** The tick of the latest state push `page` has seen, or null before the first. */
const lastTick = (page) => page.evaluate(() => window.ticksockDemo.cur?.tick ?? null);

// ----- the test --------------------------------------------------------------------------

test("the demo page over https connects over wss://; the TLS port refuses plain http and ws://", { timeout: 120_000 }, async () => {
  const { cert, key, pem } = makeTestCertificate();
  const plainPort = await startPlainPageServer();
  const plainOrigin = `http://localhost:${plainPort}`;
  // The plain page's origin is allowed, so only the transport can refuse its ws:// socket.
  const addr = await serverProcess.start([
    "--listen", "127.0.0.1:0",
    "--tls-cert", cert,
    "--tls-key", key,
    "--allowed-origins", `self,${plainOrigin}`,
    "--db", tempDbPath(),
  ]);
  assert.match(serverProcess.log, /listening on wss:\/\/127\.0\.0\.1:\d+\/ .*demo page at https:\/\//, "the server says it serves TLS");
  const port = addr.split(":").pop();
  const origin = `https://localhost:${port}`;

  // Without the test certificate as a root the server's certificate is refused: nothing below
  // passes by a certificate check that is not made.
  await assert.rejects(httpsText(`${origin}/`), (e) => /self.signed|unable to verify/i.test(`${e.code} ${e.message}`), "an untrusted certificate is refused");
  // Trusting it, the binary serves these files over https (and they are these, not a stale build's).
  for (const [path, file] of [
    ["/", "demo/index.html"],
    ["/demo.js", "demo/demo.js"],
    ["/ticksock.js", "dist/ticksock.js"],
  ]) {
    const { status, body } = await httpsText(`${origin}${path}`, pem);
    assert.equal(status, 200, `GET ${path} over https`);
    assert.ok(
      body === readFileSync(join(WEB, file), "utf8"),
      `GET ${path} differs from web/${file}: the server binary is stale; rebuild it (cargo build --release -p ticksock-arena)`,
    );
  }
  // Plain HTTP to the same port gets no answer: the server speaks TLS first.
  await plainHttpFails(`http://127.0.0.1:${port}/`);

  const ctx = await browser.start([`--ignore-certificate-errors-spki-list=${spkiHash(pem)}`]);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));

  await page.goto(`${origin}/`, { timeout: 15_000 });
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });
  assert.deepEqual(
    await page.evaluate(() => ({ protocol: location.protocol, secure: window.isSecureContext, url: window.ticksockDemo.client.url })),
    { protocol: "https:", secure: true, url: `wss://localhost:${port}/` },
    "an https page whose client was made with a wss:// URL",
  );
  assert.deepEqual(sockets, [`wss://localhost:${port}/`], "the page opened one socket, over wss://");
  const welcome = await page.evaluate(() => window.ticksockDemo.client.welcome);
  assert.equal(welcome?.version, 2, "the page speaks ticksock.v2.json over wss://");

  // Log in and join through the form; the room's state pushes arrive.
  const room = `tls-${process.pid}`;
  await page.fill("#name", "tess");
  await page.fill("#room", room);
  await page.click("#join");
  await page.waitForFunction((room) => window.ticksockDemo.room === room && window.ticksockDemo.me !== null, room, { timeout: 10_000 });
  const me = await page.evaluate(() => window.ticksockDemo.me);
  await page.waitForFunction((id) => window.ticksockDemo.players().some((p) => p.id === id), me, { timeout: 5_000 });
  const tick1 = await lastTick(page);
  await page.waitForFunction((t) => window.ticksockDemo.cur.tick > t, tick1, { timeout: 5_000 });

  // Pages over plain http. The TLS port itself serves none (a page of its own for that: the
  // failed navigation goes on to Chromium's error page, which would cut short the next one)...
  const refused = await ctx.newPage();
  await assert.rejects(refused.goto(`http://localhost:${port}/`, { timeout: 15_000 }), /net::ERR_/, "http://localhost:PORT/ loads no page");
  await refused.close();
  // ...and a page from a plain-http origin the server admits cannot open ws:// to it: the
  // socket fails without opening (1006, no close frame: the server answered with a TLS alert).
  const plain = await ctx.newPage();
  await plain.goto(`${plainOrigin}/plain.html`, { timeout: 15_000 });
  assert.equal(await plain.evaluate(() => location.protocol), "http:");
  const overWs = await tryWebSocket(plain, `ws://localhost:${port}/`);
  assert.deepEqual(overWs, { opened: false, protocol: null, firstMessage: null, closeCode: 1006 }, "ws:// to the TLS port fails");
  // The same page can open wss:// (its origin is on the list): what refused ws:// was the transport.
  const overWss = await tryWebSocket(plain, `wss://localhost:${port}/`);
  assert.equal(overWss.opened, true, `wss:// from the plain page opens: ${JSON.stringify(overWss)}`);
  assert.equal(overWss.protocol, "ticksock.v2.json");
  assert.equal(JSON.parse(overWss.firstMessage).type, "welcome", `the first message is the welcome: ${overWss.firstMessage}`);
  assert.equal(overWss.closeCode, 1000);

  // The refused attempts cost the https page nothing: its pushes go on.
  const tick2 = await lastTick(page);
  assert.ok(tick2 > tick1, `state pushes went on (tick ${tick1} then ${tick2})`);
  await page.waitForFunction((t) => window.ticksockDemo.cur.tick > t, tick2, { timeout: 5_000 });
  assert.equal(await page.evaluate(() => window.ticksockDemo.link), "open");
  assert.deepEqual(sockets, [`wss://localhost:${port}/`], "the https page never reconnected");
  assert.deepEqual(errors, [], "no page errors");
});
