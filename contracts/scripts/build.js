#!/usr/bin/env node
// Compile contracts/src/*.sol with solcjs (the exact version pinned in package.json) and write
// one artifact per contract to contracts/artifacts/. With --check, compile in memory and exit 1
// if the committed artifacts differ (stale) from what the sources compile to.
"use strict";

const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..");
const SRC = path.join(ROOT, "src");
const OUT = path.join(ROOT, "artifacts");
const CONTRACTS = ["PaymentChannels", "ContributionRegistry", "MockStablecoin", "TopUps"];

// Runs on py-evm (eth-tester, Prague VM) and anvil; Cancun has every opcode we need (PUSH0, MCOPY).
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] },
  },
};

function sha256(text) {
  return crypto.createHash("sha256").update(text).digest("hex");
}

function findImport(importPath) {
  const candidates = [path.join(ROOT, "node_modules", importPath), path.join(ROOT, importPath)];
  for (const file of candidates) {
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `not found: ${importPath}` };
}

function compile() {
  const sources = {};
  for (const file of fs.readdirSync(SRC).filter((f) => f.endsWith(".sol")).sort()) {
    sources[`src/${file}`] = { content: fs.readFileSync(path.join(SRC, file), "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
  if (errors.length) process.exit(2);

  const compiler = { name: "solc-js", version: solc.version(), settings: SETTINGS };
  // Hash of every source compiled (ours and OpenZeppelin's), so Python can tell, without Node,
  // whether contracts/src changed since the artifacts were built.
  const sourceHashes = {};
  for (const [name, unit] of Object.entries(output.sources || {})) {
    const content = name in sources ? sources[name].content : findImport(name).contents;
    sourceHashes[name] = sha256(content);
  }
  const files = {};
  for (const [sourceName, contracts] of Object.entries(output.contracts)) {
    for (const [name, c] of Object.entries(contracts)) {
      if (!CONTRACTS.includes(name)) continue;
      files[`${name}.json`] = {
        contractName: name,
        sourceName,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler,
      };
    }
  }
  for (const name of CONTRACTS) {
    if (!files[`${name}.json`]) throw new Error(`contract ${name} missing from output`);
  }
  files["build-info.json"] = { compiler, sources: sortKeys(sourceHashes) };
  const rendered = {};
  for (const [f, obj] of Object.entries(files)) rendered[f] = JSON.stringify(obj, null, 2) + "\n";
  return rendered;
}

function sortKeys(obj) {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function main() {
  const check = process.argv.includes("--check");
  const rendered = compile();
  if (check) {
    const stale = [];
    for (const [f, text] of Object.entries(rendered)) {
      const file = path.join(OUT, f);
      if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) stale.push(f);
    }
    if (stale.length) {
      process.stderr.write(`stale artifacts: ${stale.join(", ")} (run: npm run build)\n`);
      process.exit(1);
    }
    process.stdout.write(`artifacts up to date (${Object.keys(rendered).length} files)\n`);
    return;
  }
  fs.mkdirSync(OUT, { recursive: true });
  for (const [f, text] of Object.entries(rendered)) fs.writeFileSync(path.join(OUT, f), text);
  process.stdout.write(`wrote ${Object.keys(rendered).length} artifacts to ${OUT}\n`);
}

main();
