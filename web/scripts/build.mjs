// Builds the committed client bundle: tsc compiles src/client.ts (one self-contained ES module,
// no imports) and this script writes it to dist/ticksock.js (with its types in dist/ticksock.d.ts),
// the file the server builds into its binary and serves at GET /ticksock.js.
//
//   node scripts/build.mjs           write dist/
//   node scripts/build.mjs --check   fail if dist/ differs from a fresh build of src/ (CI)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const BANNER =
  "// ticksock-client: the ticksock browser client (subprotocols ticksock.v2.json and ticksock.v1.json).\n" +
  "// GENERATED from web/src/client.ts by `npm run build` in web/; do not edit. Served by the server at /ticksock.js.\n";

const out = mkdtempSync(join(tmpdir(), "ticksock-build-"));
try {
  process.exitCode = build(out);
} finally {
  rmSync(out, { recursive: true, force: true });
}

/** Compiles into `out`, then writes or checks dist/; returns the exit code. */
function build(out) {
  try {
    execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json"), "--outDir", out], { stdio: "inherit" });
  } catch {
    console.error("build: tsc failed");
    return 1;
  }
  const js = readFileSync(join(out, "client.js"), "utf8");
  if (/^\s*(import|export\s+\*\s+from|export\s+\{[^}]*\}\s+from)\b/m.test(js)) {
    console.error("build: src/client.ts must stay one self-contained module (no imports)");
    return 1;
  }
  const files = {
    "dist/ticksock.js": BANNER + js,
    "dist/ticksock.d.ts": BANNER + readFileSync(join(out, "client.d.ts"), "utf8"),
  };
  const stale = [];
  for (const [rel, text] of Object.entries(files)) {
    const path = join(root, rel);
    if (check) {
      const have = existsSync(path) ? readFileSync(path, "utf8") : null;
      if (have !== text) stale.push(rel);
    } else {
      writeFileSync(path, text);
      console.log(`build: wrote web/${rel} (${Buffer.byteLength(text)} bytes)`);
    }
  }
  if (check) {
    if (stale.length > 0) {
      console.error(
        `check:dist: ${stale.map((f) => "web/" + f).join(", ")} out of date with web/src/client.ts.\n` +
          "Run `npm run build` in web/ and commit the result (then rebuild the server, which embeds dist/ticksock.js).",
      );
      return 1;
    }
    console.log("check:dist: web/dist/ticksock.js and ticksock.d.ts match a fresh build of web/src/client.ts");
  }
  return 0;
}
