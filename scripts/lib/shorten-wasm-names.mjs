// Shortens the names that join nudge.wasm and its wasm-bindgen glue, in both files.
//
// wasm-bindgen names each import after the JS function plus a 16-hex-digit hash
// (`__wbg_getItem_49556a3e59cfb688`) and each closure export after its full Rust type
// (some 300 characters). The hashes do not compress, and every name is paid for twice: once
// in the Wasm and once in the glue. binaryen's `--minify-imports-and-exports-and-modules`
// renames them to one or two letters and prints the mapping; this script applies that
// mapping to the glue, and fails the build if any name it must rename is not found, so a
// change in wasm-bindgen's output cannot slip through as a broken SDK. About 2 KB gzip.
//
// Usage: node shorten-wasm-names.mjs <wasm-opt> <in.wasm> <out.wasm> <glue.js> [wasm-opt flags...]

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmOpt, input, output, gluePath, ...flags] = process.argv.slice(2);
const fail = (msg) => {
  console.error('shorten-wasm-names: ' + msg);
  process.exit(1);
};

const printed = execFileSync(
  wasmOpt,
  [input, ...flags, '--minify-imports-and-exports-and-modules', '-o', output],
  { encoding: 'utf8' },
);
// The pass prints one JSON object; take the last one in case others come before it.
const start = printed.lastIndexOf('{\n "imports"');
if (start < 0) fail('wasm-opt printed no name mapping');
const mapping = JSON.parse(printed.slice(start));

const modules = [...new Set(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(output))).map((i) => i.module))];
if (modules.length !== 1) fail(`expected one import module after renaming, found ${JSON.stringify(modules)}`);
const oldModules = [...new Set(mapping.imports.map(([module]) => module))];
if (oldModules.length !== 1) fail(`expected one import module, found ${JSON.stringify(oldModules)}`);

let glue = readFileSync(gluePath, 'utf8');
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Replaces every occurrence of `pattern` (a RegExp source), which must occur at least once.
function rename(pattern, replacement, what) {
  const re = new RegExp(pattern, 'g');
  let found = 0;
  glue = glue.replace(re, () => (found++, replacement));
  if (!found) fail(`${what} not found in the glue`);
}

rename(`(["'])${escape(oldModules[0])}\\1:`, JSON.stringify(modules[0]) + ':', `import module ${oldModules[0]}`);
for (const [, name, short] of mapping.imports) {
  // Import functions are keys of the glue's import object: `name: function(...)`.
  rename(`(?<![\\w$])${escape(name)}(?=\\s*:)`, short, `import ${name}`);
}
for (const [name, short] of mapping.exports) {
  // Exports the glue never mentions (wasm-bindgen's abort hooks) need no renaming.
  if (!glue.includes(name)) continue;
  // Exports are read as properties of the instance's exports: `wasm.name`.
  rename(`(?<=\\bwasm\\.)${escape(name)}(?![\\w$])`, short, `export ${name}`);
}
writeFileSync(gluePath, glue);
