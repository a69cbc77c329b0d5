#!/usr/bin/env node
// Compiles contracts/src/*.sol with solc-js and writes contracts/artifacts/<Name>.json
// (abi + bytecode, sorted keys), so Python users never need Node.
//
//   node contracts/compile.mjs           write the artifacts
//   node contracts/compile.mjs --check   exit 1 if the committed artifacts differ from a fresh compile
//
// Source unit names are relative ("src/FLAIToken.sol", "@openzeppelin/contracts/..."), so the
// metadata hash inside the bytecode does not depend on where the repository is checked out.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, "src");
const ARTIFACTS = join(ROOT, "artifacts");
const NODE_MODULES = join(ROOT, "node_modules");
const SETTINGS = {
  evmVersion: "cancun", // OpenZeppelin 5.7 uses mcopy
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};
// OpenZeppelin contracts FLAI deploys as they are (the SuperDAO's TimelockController), compiled
// with our sources (which import them) and written next to their artifacts.
const DEPENDENCIES = ["@openzeppelin/contracts/governance/TimelockController.sol"];

function loadSolc() {
  try {
    return createRequire(join(ROOT, "package.json"))("solc");
  } catch (error) {
    if (error.code !== "MODULE_NOT_FOUND") throw error;
    console.error(`solc is not installed under ${NODE_MODULES}: run \`npm ci --prefix contracts\` first.`);
    process.exit(2);
  }
}

function solidityFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return solidityFiles(path);
      return entry.name.endsWith(".sol") ? [path] : [];
    });
}

// Imports other than our own sources come from node_modules, and only from inside it.
function findImports(unitName) {
  const path = resolve(NODE_MODULES, unitName);
  if (!path.startsWith(NODE_MODULES + sep)) return { error: `import outside node_modules: ${unitName}` };
  if (!existsSync(path)) return { error: `not found: ${unitName} (run \`npm ci --prefix contracts\`)` };
  return { contents: readFileSync(path, "utf8") };
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys(value[key])]),
  );
}

function compile(solc) {
  const sources = Object.fromEntries(
    solidityFiles(SRC).map((path) => [
      relative(ROOT, path).split(sep).join("/"),
      { content: readFileSync(path, "utf8") },
    ]),
  );
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  // Every error, and the warnings about our own sources; dependencies' warnings are counted.
  const problems = output.errors ?? [];
  const ours = (problem) => problem.severity === "error" || (problem.sourceLocation?.file ?? "").startsWith("src/");
  for (const problem of problems.filter(ours)) console.error(problem.formattedMessage ?? problem.message);
  const theirs = problems.filter((problem) => !ours(problem)).length;
  if (theirs > 0) console.error(`(${theirs} warnings in dependencies not shown)`);
  if (problems.some((problem) => problem.severity === "error")) process.exit(1);

  const artifacts = new Map();
  for (const sourceName of [...Object.keys(sources), ...DEPENDENCIES]) {
    if (!output.contracts[sourceName]) throw new Error(`${sourceName} was not compiled: no source imports it`);
    for (const [contractName, contract] of Object.entries(output.contracts[sourceName])) {
      if (!contract.evm.bytecode.object) continue; // interfaces and abstract contracts
      const artifact = {
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        compiler: { settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer }, version: solc.version() },
        contractName,
        sourceName,
      };
      artifacts.set(`${contractName}.json`, `${JSON.stringify(sortKeys(artifact), null, 2)}\n`);
    }
  }
  return artifacts;
}

// Uniswap V2 as published on npm, never recompiled: Router02 hard-codes the keccak of the
// published UniswapV2Pair bytecode (the pair init-code hash), so only the published builds
// agree with each other. Their abi and bytecode are copied as they are (bytecode with 0x).
const PUBLISHED = [
  ["@uniswap/v2-core", "UniswapV2Factory"],
  ["@uniswap/v2-core", "UniswapV2Pair"],
  ["@uniswap/v2-periphery", "UniswapV2Router02"],
  ["@uniswap/v2-periphery", "WETH9"],
];

function published() {
  const artifacts = new Map();
  for (const [pkg, contractName] of PUBLISHED) {
    const path = join(NODE_MODULES, pkg, "build", `${contractName}.json`);
    if (!existsSync(path)) {
      console.error(`${pkg} is not installed under ${NODE_MODULES}: run \`npm ci --prefix contracts\` first.`);
      process.exit(2);
    }
    const build = JSON.parse(readFileSync(path, "utf8"));
    const artifact = { abi: build.abi, bytecode: `0x${build.bytecode}`, contractName, sourceName: `${pkg}/build/${contractName}.json` };
    artifacts.set(`${contractName}.json`, `${JSON.stringify(sortKeys(artifact), null, 2)}\n`);
  }
  return artifacts;
}

function committed() {
  if (!existsSync(ARTIFACTS)) return new Map();
  return new Map(
    readdirSync(ARTIFACTS)
      .filter((name) => name.endsWith(".json"))
      .map((name) => [name, readFileSync(join(ARTIFACTS, name), "utf8")]),
  );
}

const solc = loadSolc();
const fresh = compile(solc);
const compiledCount = fresh.size;
for (const [name, text] of published()) fresh.set(name, text);
const existing = committed();
const stale = [...new Set([...fresh.keys(), ...existing.keys()])]
  .sort()
  .filter((name) => fresh.get(name) !== existing.get(name));

if (process.argv.includes("--check")) {
  if (stale.length > 0) {
    console.error(`artifacts out of date with contracts/src: ${stale.join(", ")}; run \`make contracts\` and commit them.`);
    process.exit(1);
  }
  console.log(`artifacts up to date (${compiledCount} contracts, solc ${solc.version()}; ${PUBLISHED.length} published)`);
} else {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of stale) {
    if (fresh.has(name)) writeFileSync(join(ARTIFACTS, name), fresh.get(name));
    else rmSync(join(ARTIFACTS, name));
  }
  console.log(`wrote ${stale.length} of ${fresh.size} artifacts to ${relative(process.cwd(), ARTIFACTS) || "."}`);
}
