#!/usr/bin/env node
// Extract the topojson files embedded in plotly.js's dist/plotly-geo-assets.js.
//
// Usage: node tools/extract_topojson.js <plotly-geo-assets.js> <out-dir> [expected-version]
//
// The bundle is UMD: under node it sets module.exports = {topojson, version}. Its last
// lines also assign window.Plotly, so a stub `window` is needed. Never load the bundle in
// the browser with a <script> tag: it replaces the real window.Plotly.
// Prints one line of JSON: {"version": ..., "files": {"world_110m.json": bytes, ...}}.
"use strict";

const fs = require("fs");
const path = require("path");

function main(argv) {
  if (argv.length < 2) {
    process.stderr.write("usage: extract_topojson.js <plotly-geo-assets.js> <out-dir> [expected-version]\n");
    return 2;
  }
  const bundle = path.resolve(argv[0]);
  const outDir = path.resolve(argv[1]);
  const expected = argv[2];

  global.window = {};
  const assets = require(bundle);
  if (!assets || typeof assets.topojson !== "object") {
    process.stderr.write(`no topojson object exported by ${bundle}\n`);
    return 1;
  }
  if (expected && assets.version !== expected) {
    process.stderr.write(`bundle is plotly.js ${assets.version}, expected ${expected}\n`);
    return 1;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const files = {};
  for (const name of Object.keys(assets.topojson).sort()) {
    const topo = assets.topojson[name];
    if (!topo || topo.type !== "Topology") {
      process.stderr.write(`entry ${name} is not a Topology\n`);
      return 1;
    }
    const file = `${name}.json`;
    const text = JSON.stringify(topo);
    fs.writeFileSync(path.join(outDir, file), text);
    files[file] = Buffer.byteLength(text);
  }
  process.stdout.write(JSON.stringify({ version: assets.version, files }) + "\n");
  return 0;
}

process.exitCode = main(process.argv.slice(2));
