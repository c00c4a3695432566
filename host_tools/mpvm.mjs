// Run Python on the real MicroPython VM (the MicroPython project's WebAssembly port) under Node.js.
//   node mpvm.mjs [--mount HOST_DIR:VM_DIR]... [--heap BYTES] (--file SCRIPT.py | --code CODE)...
// Each --file/--code runs as its own top-level runPython call, in order, in the same VM. This port
// collects garbage only between such calls (it cannot scan the wasm stack while Python runs), so
// a heap measurement must collect in a later chunk than the one that made the garbage.
// Host folders are copied into the VM's in-memory filesystem; /lib is on sys.path.
// Exit status: 0 when the script ran to the end, 1 on an uncaught Python exception.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const mounts = [];
let heap = 1024 * 1024;
const chunks = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--mount") mounts.push(args[++i]);
  else if (a === "--heap") heap = parseInt(args[++i], 10);
  else if (a === "--file") chunks.push(fs.readFileSync(args[++i], "utf8"));
  else if (a === "--code") chunks.push(args[++i]);
  else { console.error(`mpvm: unknown argument ${a}`); process.exit(2); }
}
if (chunks.length === 0) { console.error("mpvm: give --file or --code"); process.exit(2); }

// Synchronous writes: process.exit() below must not cut off output a slow reader has not taken yet.
function writeAll(fd, text) {
  const b = Buffer.from(text);
  let off = 0;
  while (off < b.length) {
    try { off += fs.writeSync(fd, b, off); } catch (e) { if (e.code !== "EAGAIN") throw e; }
  }
}
const out = (line) => writeAll(1, line + "\n");
const err = (line) => writeAll(2, line + "\n");
const mp = await loadMicroPython({ heapsize: heap, stdout: out, stderr: err });

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copyTree(src, dst) {
  mkdirs(dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    if (ent.name === "__pycache__" || ent.name.startsWith(".")) continue;
    const s = path.join(src, ent.name), d = dst + "/" + ent.name;
    if (ent.isDirectory()) copyTree(s, d);
    else if (ent.isFile()) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
for (const m of mounts) {
  const i = m.lastIndexOf(":");
  copyTree(m.slice(0, i), m.slice(i + 1));
}
mkdirs("/lib");
try {
  mp.runPython("import sys\nif '/lib' not in sys.path: sys.path.append('/lib')\n");
  for (const code of chunks) mp.runPython(code);
} catch (e) {
  err(String(e && e.message ? e.message : e));
  process.exit(1);
}
process.exit(0);
