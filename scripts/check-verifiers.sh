#!/usr/bin/env bash
# Independent verification of `cairn export-verifier`, with the real tools. Opt-in: it needs
# the npm registry the first time (default `cargo test` never touches npm or the network).
#
#   scripts/check-verifiers.sh [OUT_DIR]        (default: target/check-verifiers)
#
# 1. installs pinned snarkjs and solc (solcjs) into .tools/ (git-ignored), once;
# 2. `cairn export-verifier --demo-shape`: a tiny training circuit (logistic regression,
#    4 features, K = 1, B = 2, tree depth 2), fresh keys, one honest proof, exported;
# 3. snarkjs: `groth16 verify` accepts the honest proof and rejects a changed public input
#    and a proof with A and C exchanged; ffjavascript's e(alpha, beta) equals our
#    vk_alphabeta_12; `zkey export soliditycalldata` prints exactly our calldata_demo.txt;
# 4. solc: compiles Verifier.sol (with the pinned 0.8 release and with 0.8.0, the pragma's
#    floor), and snarkjs's own verifier template rendered for the same key, for comparison;
# 5. revm: deploys the compiled contracts and calls verifyProof (circuits/tests/evm_verifier.rs,
#    ignored by default): honest -> true with its gas printed, every tampering -> false.
#
# 6. with CAIRN_TRANSCRIPT=path/to/transcript.cairn (e.g. the demo's cairn-out/transcript.cairn):
#    `cairn export-verifier --transcript`, and snarkjs accepts every proof of the job and
#    rejects each proof against another proof's public inputs.
#
# Exits non-zero at the first check that fails.
set -euo pipefail

SNARKJS_VERSION=0.7.6
SOLC_VERSION=0.8.30
SOLC_FLOOR_VERSION=0.8.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/target/check-verifiers}
TOOLS=$ROOT/.tools
NM=$TOOLS/node_modules

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || fail "node is needed (snarkjs and solcjs run on it)"
command -v npm >/dev/null || fail "npm is needed to install snarkjs and solc"

installed() { node -p "require('$NM/$1/package.json').version" 2>/dev/null || true; }

step "tools: snarkjs $SNARKJS_VERSION, solc $SOLC_VERSION and $SOLC_FLOOR_VERSION in $TOOLS"
if [ "$(installed snarkjs)" != "$SNARKJS_VERSION" ] \
    || [ "$(installed solc)" != "$SOLC_VERSION" ] \
    || [ "$(installed solc-floor)" != "$SOLC_FLOOR_VERSION" ]; then
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact --loglevel=error \
        "snarkjs@$SNARKJS_VERSION" "solc@$SOLC_VERSION" "solc-floor@npm:solc@$SOLC_FLOOR_VERSION"
fi
SNARKJS="node $NM/snarkjs/build/cli.cjs"
SOLCJS="node $NM/solc/solc.js"
SOLCJS_FLOOR="node $NM/solc-floor/solcjs"
echo "snarkjs $(installed snarkjs), solc $(installed solc), solc-floor $(installed solc-floor)"

step "export: cairn export-verifier --demo-shape --out $OUT"
cd "$ROOT"
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
rm -rf "$OUT"
cargo run --quiet -p cairn -- export-verifier --demo-shape --out "$OUT"

step "snarkjs groth16 verify: honest proof"
cd "$OUT"
if ! $SNARKJS groth16 verify verification_key.json public_demo.json proof_demo.json | tee snarkjs-honest.log; then
    fail "snarkjs rejected the honest proof"
fi
grep -q "OK" snarkjs-honest.log || fail "snarkjs did not print OK for the honest proof"

# Tamperings, written with node so that nothing but JSON is edited, into tampered/ (the EVM
# test takes every proof_*.json at the top level as an honest proof).
mkdir -p tampered
node -e '
const fs = require("fs");
const pub = JSON.parse(fs.readFileSync("public_demo.json"));
pub[0] = (BigInt(pub[0]) + 1n).toString();
fs.writeFileSync("tampered/public.json", JSON.stringify(pub));
const proof = JSON.parse(fs.readFileSync("proof_demo.json"));
[proof.pi_a, proof.pi_c] = [proof.pi_c, proof.pi_a];
fs.writeFileSync("tampered/proof.json", JSON.stringify(proof));
'
for case in "tampered/public.json proof_demo.json" "public_demo.json tampered/proof.json"; do
    step "snarkjs groth16 verify: must reject ($case)"
    # shellcheck disable=SC2086
    if $SNARKJS groth16 verify verification_key.json $case > snarkjs-tampered.log 2>&1; then
        cat snarkjs-tampered.log
        fail "snarkjs accepted a tampered proof ($case)"
    fi
    cat snarkjs-tampered.log
    grep -q "OK" snarkjs-tampered.log && fail "snarkjs printed OK for a tampered proof"
    echo "rejected, as it must be"
done

step "ffjavascript: e(alpha, beta) equals vk_alphabeta_12"
node --input-type=module -e "
import { buildBn128, utils } from '$NM/ffjavascript/main.js';
import fs from 'fs';
const vk = JSON.parse(fs.readFileSync('verification_key.json'));
const curve = await buildBn128(true);
const ab = curve.pairing(curve.G1.fromObject(utils.unstringifyBigInts(vk.vk_alpha_1)),
                         curve.G2.fromObject(utils.unstringifyBigInts(vk.vk_beta_2)));
const theirs = JSON.stringify(utils.stringifyBigInts(curve.Gt.toObject(ab)));
await curve.terminate();
if (theirs !== JSON.stringify(vk.vk_alphabeta_12)) {
    console.error('ffjavascript:', theirs, '\ncairn:', JSON.stringify(vk.vk_alphabeta_12));
    process.exit(1);
}
console.log('equal');
" || fail "vk_alphabeta_12 differs from ffjavascript's pairing"

step "snarkjs zkey export soliditycalldata equals calldata_demo.txt"
$SNARKJS zkey export soliditycalldata public_demo.json proof_demo.json > snarkjs-calldata.txt
if [ "$(tr -d ' \n' < snarkjs-calldata.txt)" != "$(tr -d ' \n' < calldata_demo.txt)" ]; then
    diff <(tr -d ' \n' < snarkjs-calldata.txt) <(tr -d ' \n' < calldata_demo.txt) || true
    fail "calldata differs from snarkjs's"
fi
echo "identical"

step "snarkjs's own verifier template, rendered for the same key (reference)"
node -e '
const fs = require("fs");
const ejs = require(process.argv[1] + "/ejs");
const tpl = fs.readFileSync(process.argv[1] + "/snarkjs/templates/verifier_groth16.sol.ejs", "utf8");
const vk = JSON.parse(fs.readFileSync("verification_key.json"));
fs.writeFileSync("SnarkjsVerifier.sol", ejs.render(tpl, vk));
' "$NM"
echo "SnarkjsVerifier.sol"

step "solc $SOLC_VERSION: compile Verifier.sol and SnarkjsVerifier.sol"
# solcjs prints warnings and exits 0: ours must compile without any.
$SOLCJS --bin --abi --optimize -o solc Verifier.sol > solc.log 2>&1 || { cat solc.log; fail "solc failed"; }
cat solc.log
grep -qi "warning\|error" solc.log && fail "solc warned about Verifier.sol"
$SOLCJS --bin --optimize -o solc SnarkjsVerifier.sol
ls -l solc
[ -s solc/Verifier_sol_CairnGroth16Verifier.bin ] || fail "solc produced no bytecode for Verifier.sol"

step "solc $SOLC_FLOOR_VERSION: Verifier.sol compiles at the pragma's floor too"
$SOLCJS_FLOOR --bin --optimize -o solc-floor Verifier.sol > solc-floor.log 2>&1 \
    || { cat solc-floor.log; fail "solc $SOLC_FLOOR_VERSION failed"; }
cat solc-floor.log
grep -qi "warning\|error" solc-floor.log && fail "solc $SOLC_FLOOR_VERSION warned about Verifier.sol"
[ -s solc-floor/Verifier_sol_CairnGroth16Verifier.bin ] || fail "solc $SOLC_FLOOR_VERSION failed"
echo "ok, no warnings"

step "revm: deploy and call verifyProof (circuits/tests/evm_verifier.rs)"
cd "$ROOT"
CAIRN_VERIFIER_DIR=$OUT cargo test --quiet -p cairn-circuits --test evm_verifier -- \
    --ignored --nocapture --test-threads 1 solidity_verifier_in_the_evm 2>&1 | tee "$OUT/revm.log"
grep -q "test result: ok. 1 passed" "$OUT/revm.log" || fail "the EVM check failed"

if [ -n "${CAIRN_TRANSCRIPT:-}" ]; then
    step "a job's transcript: cairn export-verifier --transcript $CAIRN_TRANSCRIPT"
    JOB_OUT=$OUT/transcript
    cargo run --quiet -p cairn -- export-verifier --transcript "$CAIRN_TRANSCRIPT" --out "$JOB_OUT"
    cd "$JOB_OUT"
    prev=
    for proof in proof_*.json; do
        name=${proof#proof_}
        name=${name%.json}
        $SNARKJS groth16 verify verification_key.json "public_$name.json" "$proof" | grep -q "OK" \
            || fail "snarkjs rejected the job's proof $name"
        if [ -n "$prev" ]; then
            if $SNARKJS groth16 verify verification_key.json "public_$prev.json" "$proof" | grep -q "OK"; then
                fail "snarkjs accepted proof $name against the public inputs of $prev"
            fi
        fi
        prev=$name
    done
    echo "ok: snarkjs accepts every proof of the job and rejects swapped public inputs"
    cd "$ROOT"
fi

step "all checks passed"
grep "verifyProof(demo) = true" "$OUT/revm.log"
