#!/usr/bin/env node
// Reference StandardMerkleTree (@openzeppelin/merkle-tree) for the contribution leaves, used by
// the Python tests to prove payouts/merkle.py builds the same tree.
// stdin: JSON [[contributor, contentHash, contributionId(decimal string)], ...]
// stdout: JSON {root, proofs: [[hex, ...], ...]} (proofs in input order)
"use strict";

const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const tree = StandardMerkleTree.of(input, ["address", "bytes32", "uint256"]);
const proofs = input.map((_, i) => {
  for (const [j, v] of tree.entries()) {
    if (JSON.stringify(v) === JSON.stringify(input[i])) return tree.getProof(j);
  }
  throw new Error("leaf not found");
});
process.stdout.write(JSON.stringify({ root: tree.root, proofs }) + "\n");
