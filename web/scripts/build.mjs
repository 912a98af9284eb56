// Builds the committed client bundle: tsc compiles the modules of src/ (MODULES, in that order:
// each may import only from the ones before it, and only from "./NAME.js"), and this script joins
// them into one self-contained ES module, dist/ticksock.js (with its types in dist/ticksock.d.ts),
// the file the server builds into its binary and serves at GET /ticksock.js. Joining drops the
// imports between the modules, so they share one scope: `node --check` of the result catches two
// top-level names that clash, and tsc checks the joined types.
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
/** The modules of src/, in the order they are joined (a module imports only from earlier ones). */
const MODULES = ["client", "bincode", "replica", "interpolation"];
const BANNER =
  "// ticksock-client: the ticksock browser client (subprotocols ticksock.v2.json and ticksock.v1.json).\n" +
  `// GENERATED from web/src/ (${MODULES.map((m) => m + ".ts").join(", ")}) by \`npm run build\` in web/; do not edit. Served by the server at /ticksock.js.\n`;
/** An import of one of MODULES: the only kind a module may have, dropped when joining. */
const LOCAL_IMPORT = /^import\s(?:type\s)?\{[^}]*\}\s+from\s+"\.\/([a-z_]+)\.js";\n/gm;

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
  const js = joinModules(out, ".js");
  const dts = joinModules(out, ".d.ts");
  if (js === null || dts === null) return 1;
  if (!joinedModuleWorks(out, js, dts)) return 1;
  const files = {
    "dist/ticksock.js": BANNER + js,
    "dist/ticksock.d.ts": BANNER + dts,
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
        `check:dist: ${stale.map((f) => "web/" + f).join(", ")} out of date with web/src/.\n` +
          "Run `npm run build` in web/ and commit the result (then rebuild the server, which embeds dist/ticksock.js).",
      );
      return 1;
    }
    console.log("check:dist: web/dist/ticksock.js and ticksock.d.ts match a fresh build of web/src/");
  }
  return 0;
}

/**
 * MODULES' compiled files of one `ext` (".js", ".d.ts") in `out`, joined, without the imports
 * between them; null (and says why) if a module imports anything else, or a later module.
 */
function joinModules(out, ext) {
  const parts = [];
  for (const [n, name] of MODULES.entries()) {
    let wrong = null;
    const text = readFileSync(join(out, name + ext), "utf8").replace(LOCAL_IMPORT, (_, from) => {
      const at = MODULES.indexOf(from);
      if (at < 0 || at >= n) wrong = `src/${name}.ts imports ./${from}.js, which is not a module before it in MODULES`;
      return "";
    });
    if (wrong === null && /^\s*(import\b|export\s+\*\s+from\b|export\s+\{[^}]*\}\s+from\b)/m.test(text)) {
      wrong = `src/${name}.ts imports from outside src/: the bundle must stay one self-contained module`;
    }
    if (wrong !== null) {
      console.error(`build: ${wrong}`);
      return null;
    }
    // A module whose imports were all dropped may be left with `export {};`: nothing, once joined.
    parts.push(text.replace(/^export \{\};\n/m, ""));
  }
  return parts.join("\n");
}

/** Whether the joined `js` parses as a module (no top-level name declared twice) and `dts` type checks. */
function joinedModuleWorks(out, js, dts) {
  writeFileSync(join(out, "joined.mjs"), js);
  writeFileSync(join(out, "joined.d.ts"), dts);
  try {
    execFileSync(process.execPath, ["--check", join(out, "joined.mjs")], { stdio: "inherit" });
  } catch {
    console.error("build: the joined modules do not parse (two modules declare the same top-level name?)");
    return false;
  }
  try {
    const args = ["--noEmit", "--strict", "--target", "ES2020", "--lib", "ES2020,DOM", join(out, "joined.d.ts")];
    execFileSync(process.execPath, [tsc, ...args], { stdio: "inherit" });
  } catch {
    console.error("build: the joined declarations do not type check");
    return false;
  }
  return true;
}
