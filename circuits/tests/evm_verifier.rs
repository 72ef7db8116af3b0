//! The exported verifier in an EVM (revm, Osaka rules).
//!
//! - `precompile_reads_the_exported_encoding` (always runs, no network): calls the EVM's
//!   BN254 pairing precompile directly with [`solidity::pairing_input`], the words the
//!   contract passes it, so the `F_{q^2}` order and the negation of A are checked against an
//!   independent implementation without a Solidity compiler.
//! - `solidity_verifier_in_the_evm` (ignored; `scripts/check-verifiers.sh` runs it): deploys
//!   every contract solc compiled into `$CAIRN_VERIFIER_DIR/solc/*.bin` (ours, and snarkjs's
//!   own template rendered for the same key when the script made it) and calls `verifyProof`
//!   for every `proof_<name>.json` in `$CAIRN_VERIFIER_DIR`: the honest proof must return
//!   true (the gas is printed), and each tampering must return false.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr};
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Groth16, Proof, VerifyingKey};
use ark_snark::SNARK;
use cairn_circuits::export::{snarkjs, solidity};
use common::{keys_and_proof, Squares};
use revm::context::{Context, TxEnv};
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::CacheDB;
use revm::database_interface::EmptyDB;
use revm::primitives::{keccak256, Address, Bytes, TxKind};
use revm::{ExecuteCommitEvm, MainBuilder, MainContext};

type Evm = revm::handler::MainnetEvm<revm::handler::MainnetContext<CacheDB<EmptyDB>>>;

/// Gas limit of each transaction (below Osaka's per-transaction cap of 2^24).
const GAS_LIMIT: u64 = 10_000_000;

struct Chain {
    evm: Evm,
    nonce: u64,
}

/// What a call did: its return data and the gas the transaction used (21000 + calldata +
/// execution), or why it did not succeed.
enum Outcome {
    Returned { data: Vec<u8>, gas: u64 },
    Reverted { gas: u64 },
    Halted(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Returned { data, gas } => write!(f, "returned 0x{} ({gas} gas)", hex(data)),
            Self::Reverted { gas } => write!(f, "reverted ({gas} gas)"),
            Self::Halted(reason) => write!(f, "halted: {reason}"),
        }
    }
}

impl Chain {
    fn new() -> Self {
        Self {
            evm: Context::mainnet()
                .with_db(CacheDB::<EmptyDB>::default())
                .build_mainnet(),
            nonce: 0,
        }
    }

    fn send(&mut self, kind: TxKind, data: Vec<u8>) -> ExecutionResult {
        let tx = TxEnv::builder()
            .kind(kind)
            .data(Bytes::from(data))
            .gas_limit(GAS_LIMIT)
            .nonce(self.nonce)
            .build()
            .expect("transaction");
        self.nonce += 1;
        self.evm.transact_commit(tx).expect("the EVM itself failed")
    }

    fn deploy(&mut self, creation_code: Vec<u8>) -> (Address, u64) {
        let result = self.send(TxKind::Create, creation_code);
        let gas = result.tx_gas_used();
        match result {
            ExecutionResult::Success {
                output: Output::Create(_, Some(address)),
                ..
            } => (address, gas),
            other => panic!("deployment failed: {other:?}"),
        }
    }

    fn call(&mut self, to: Address, data: Vec<u8>) -> Outcome {
        let result = self.send(TxKind::Call(to), data);
        let gas = result.tx_gas_used();
        match result {
            ExecutionResult::Success { output, .. } => Outcome::Returned {
                data: output.into_data().to_vec(),
                gas,
            },
            ExecutionResult::Revert { .. } => Outcome::Reverted { gas },
            ExecutionResult::Halt { reason, .. } => Outcome::Halted(format!("{reason:?}")),
        }
    }
}

fn word(v: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

fn concat(words: &[[u8; 32]]) -> Vec<u8> {
    words.iter().flatten().copied().collect()
}

#[test]
fn precompile_reads_the_exported_encoding() {
    let circuit = Squares {
        w: Fr::from(12345u64),
        n: 6,
    };
    let (_, vk, proof, inputs) = keys_and_proof(circuit, 9);

    let mut chain = Chain::new();
    let pairing = Address::with_last_byte(8);
    let mut check = |words: Vec<[u8; 32]>| chain.call(pairing, concat(&words));

    match check(solidity::pairing_input(&vk, &proof, &inputs)) {
        Outcome::Returned { data, .. } => assert_eq!(data, word(1), "honest proof"),
        other => panic!("honest proof: {other}"),
    }
    let mut wrong = inputs.clone();
    wrong[0] += Fr::from(1u64);
    match check(solidity::pairing_input(&vk, &proof, &wrong)) {
        Outcome::Returned { data, .. } => assert_eq!(data, word(0), "changed input"),
        other => panic!("changed input: {other}"),
    }
    // B with each coordinate's real part first (arkworks' and snarkjs's JSON order) is not a
    // point of the precompile's G2: the call fails.
    let mut unswapped = solidity::pairing_input(&vk, &proof, &inputs);
    unswapped.swap(2, 3);
    unswapped.swap(4, 5);
    assert!(
        !matches!(check(unswapped), Outcome::Returned { ref data, .. } if *data == word(1)),
        "unswapped B must not verify"
    );
}

/// The bundle and compiled contracts `scripts/check-verifiers.sh` leaves behind.
fn verifier_dir() -> PathBuf {
    let dir = std::env::var_os("CAIRN_VERIFIER_DIR").expect(
        "set CAIRN_VERIFIER_DIR to an export-verifier directory with solc/*.bin \
         (scripts/check-verifiers.sh does)",
    );
    PathBuf::from(dir)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    out.sort();
    out
}

fn selector(n_public: usize) -> [u8; 4] {
    let h = keccak256(solidity::function_signature(n_public).as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// Intrinsic calldata cost (EIP-2028): 16 gas per non-zero byte, 4 per zero byte.
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

fn call_data(n_public: usize, words: &[[u8; 32]]) -> Vec<u8> {
    let mut data = selector(n_public).to_vec();
    data.extend(concat(words));
    data
}

/// Returns `Some(result)` for a call that returned one ABI bool, `None` for one that
/// reverted or halted.
fn verdict(outcome: &Outcome) -> Option<bool> {
    match outcome {
        Outcome::Returned { data, .. } if *data == word(1) => Some(true),
        Outcome::Returned { data, .. } if *data == word(0) => Some(false),
        Outcome::Returned { data, .. } => panic!("not an ABI bool: {}", hex(data)),
        Outcome::Reverted { .. } | Outcome::Halted(_) => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tamperings checked for every contract and proof: (what, calldata words).
fn tamperings(
    vk: &VerifyingKey<Bn254>,
    proof: &Proof<Bn254>,
    inputs: &[Fr],
) -> Vec<(&'static str, Vec<[u8; 32]>)> {
    let honest = solidity::calldata_words(proof, inputs);
    let mut out = Vec::new();

    let mut wrong = inputs.to_vec();
    wrong[0] += Fr::from(1u64);
    out.push(("public input + 1", solidity::calldata_words(proof, &wrong)));
    let last = inputs.len() - 1;
    let mut wrong = inputs.to_vec();
    wrong[last] -= Fr::from(1u64);
    out.push((
        "last public input − 1",
        solidity::calldata_words(proof, &wrong),
    ));
    let swapped = Proof {
        a: proof.c,
        b: proof.b,
        c: proof.a,
    };
    out.push((
        "A and C exchanged",
        solidity::calldata_words(&swapped, inputs),
    ));
    let other_vk_proof = Proof {
        a: (proof.a + vk.alpha_g1).into(),
        ..proof.clone()
    };
    out.push((
        "A moved by alpha (on the curve)",
        solidity::calldata_words(&other_vk_proof, inputs),
    ));
    let mut off_curve = honest.clone();
    off_curve[1][31] ^= 1;
    out.push(("A off the curve", off_curve));
    let mut unswapped = honest.clone();
    unswapped.swap(2, 3);
    unswapped.swap(4, 5);
    out.push(("B in real-first order", unswapped));
    let mut input_r = honest.clone();
    let r: [u8; 32] = Fr::MODULUS.to_bytes_be().try_into().unwrap();
    input_r[8] = r;
    out.push(("public input 0 replaced by r (≡ 0)", input_r));
    let mut coord_q = honest;
    let q: [u8; 32] = ark_bn254::Fq::MODULUS.to_bytes_be().try_into().unwrap();
    coord_q[0] = q;
    out.push(("A.x replaced by q", coord_q));
    out
}

#[test]
#[ignore = "needs solc output: run scripts/check-verifiers.sh"]
fn solidity_verifier_in_the_evm() {
    let dir = verifier_dir();
    let vk = snarkjs::parse_verification_key(&read(&dir.join("verification_key.json"))).unwrap();
    let n_public = vk.gamma_abc_g1.len() - 1;
    let proofs = files(&dir, "proof_", ".json");
    assert!(!proofs.is_empty(), "no proof_*.json in {}", dir.display());
    let contracts = files(&dir.join("solc"), "", ".bin");
    assert!(
        contracts.iter().any(|p| p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(solidity::CONTRACT_NAME)),
        "no compiled {} in {}/solc",
        solidity::CONTRACT_NAME,
        dir.display()
    );

    for bin in &contracts {
        let label = bin.file_stem().unwrap().to_string_lossy().into_owned();
        let code = read(bin);
        let code: Vec<u8> = (0..code.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&code.trim()[i..i + 2], 16).expect("hex bytecode"))
            .collect();
        let mut chain = Chain::new();
        let (address, deploy_gas) = chain.deploy(code);
        println!("{label}: deployed, {deploy_gas} gas");

        for proof_file in &proofs {
            let name = proof_file.file_name().unwrap().to_string_lossy();
            let name = name["proof_".len()..name.len() - ".json".len()].to_string();
            let proof = snarkjs::parse_proof(&read(proof_file)).unwrap();
            let inputs =
                snarkjs::parse_public_inputs(&read(&dir.join(format!("public_{name}.json"))))
                    .unwrap();
            assert!(
                Groth16::<Bn254>::verify(&vk, &inputs, &proof).unwrap(),
                "{name}: the exported proof must verify natively first"
            );

            let data = call_data(n_public, &solidity::calldata_words(&proof, &inputs));
            let calldata_gas = calldata_gas(&data);
            match chain.call(address, data) {
                Outcome::Returned { ref data, gas } if *data == word(1) => println!(
                    "{label}: verifyProof({name}) = true, {gas} gas for the transaction \
                     ({n_public} inputs: 21000 base + {calldata_gas} calldata + {} execution)",
                    gas - 21_000 - calldata_gas
                ),
                other => panic!("{label}: honest proof {name}: {other}"),
            }

            for (what, words) in tamperings(&vk, &proof, &inputs) {
                let outcome = chain.call(address, call_data(n_public, &words));
                let ours = label.contains(solidity::CONTRACT_NAME);
                match verdict(&outcome) {
                    Some(false) => println!("{label}: {what}: false"),
                    // snarkjs's template lets the precompile revert on a coordinate ≥ q; a
                    // reverted call rejects too. Ours must answer false.
                    None if !ours => println!("{label}: {what}: {outcome}"),
                    _ => panic!("{label}: {name}: {what}: {outcome}"),
                }
            }
        }
    }
}
