//! Groth16 (BN254) keys and proofs for the training circuit.
//!
//! Keys are made per [`Shape`] by a circuit-specific setup and carry the shape's hash: a
//! key file starts with a magic tag and the shape hash, and loading checks both, so a key
//! is never used for another shape. Keys are serialised compressed with `ark-serialize`;
//! a proof is 128 bytes compressed. [`verify`] is CPU-bound (a few ms): async callers run
//! it on a blocking thread.

use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey};
use ark_relations::gr1cs::SynthesisError;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use rand::{CryptoRng, RngCore};

use super::circuit::TrainingCircuit;
use super::{Public, Shape};

/// A Groth16 proving key.
pub type ProvingKey = ark_groth16::ProvingKey<Bn254>;
/// A Groth16 verifying key.
pub type VerifyingKey = ark_groth16::VerifyingKey<Bn254>;

/// Length of a compressed proof.
pub const PROOF_BYTES: usize = 128;
const PK_MAGIC: &[u8; 8] = b"cairnPK1";
const VK_MAGIC: &[u8; 8] = b"cairnVK1";

/// What can go wrong making, storing or checking proofs.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// Setup or proving failed.
    #[error("groth16: {0}")]
    Groth16(#[from] SynthesisError),
    /// The witness does not satisfy the circuit: the statement is false for it, so there
    /// is nothing honest to prove. (The native checks of `Witness::new` catch this first;
    /// this is the circuit's own verdict on a witness changed after those checks.)
    #[error("the witness does not satisfy the training circuit")]
    Unsatisfied,
    /// Bytes that are not a key or proof.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A key made for another shape.
    #[error("key is for shape {found}, not {expected}")]
    WrongShape {
        /// Shape hash in the file.
        found: String,
        /// Shape hash wanted.
        expected: String,
    },
    /// A proving key that could make proofs carry witness values, refused before proving
    /// ([`check_proving_key`]), or a proof that does not verify under its key's own
    /// verifying key (or whose B is off G2's subgroup), withheld
    /// ([`super::prover::Prover::prove`]): the key is bad, do not use it again.
    #[error("proving key: {0}")]
    BadProvingKey(String),
    /// A shape whose circuit is too large to set up on an ordinary machine
    /// ([`check_size`]), refused before the setup would run out of memory.
    #[error("the circuit of this job would have about {constraints} constraints (a trusted setup of about {gib:.1} GiB); the most a job may have is {max}: fewer proved steps, a smaller batch or model", gib = *constraints as f64 * SETUP_BYTES_PER_CONSTRAINT / (1u64 << 30) as f64)]
    TooLarge {
        /// The estimate.
        constraints: u64,
        /// [`MAX_SETUP_CONSTRAINTS`].
        max: u64,
    },
    /// The key directory could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn malformed(what: &'static str, e: impl std::fmt::Display) -> ProofError {
    ProofError::Malformed {
        what,
        reason: e.to_string(),
    }
}

/// A Groth16 proof of the training statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof(pub ark_groth16::Proof<Bn254>);

impl Proof {
    /// The 128-byte compressed encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_BYTES);
        // Writing to a Vec cannot fail.
        let _ = self.0.serialize_compressed(&mut out);
        out
    }

    /// Decodes (and validates: points on the curve, in the subgroup) a compressed proof.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        if bytes.len() != PROOF_BYTES {
            return Err(malformed(
                "proof",
                format!("{} bytes, want {PROOF_BYTES}", bytes.len()),
            ));
        }
        ark_groth16::Proof::deserialize_compressed(bytes)
            .map(Proof)
            .map_err(|e| malformed("proof", e))
    }
}

/// The most constraints a job's circuit may have: its trusted setup then needs about
/// 12 GiB ([`SETUP_BYTES_PER_CONSTRAINT`]), what a coordinator's machine can be asked for.
pub const MAX_SETUP_CONSTRAINTS: u64 = 2_000_000;

/// Peak memory of the trusted setup per constraint, measured: R2's 838,000 constraints
/// took 5.1 GiB.
pub const SETUP_BYTES_PER_CONSTRAINT: f64 = 6_500.0;

/// Estimates the constraints of `shape`'s circuit without building it
/// ([`TrainingCircuit::estimated_constraints`]) and refuses one over
/// [`MAX_SETUP_CONSTRAINTS`]: what a job file check and the setup call before anything
/// large is allocated.
pub fn check_size(shape: &Shape) -> Result<u64, ProofError> {
    let constraints = TrainingCircuit::estimated_constraints(shape, MAX_SETUP_CONSTRAINTS)?;
    if constraints > MAX_SETUP_CONSTRAINTS {
        return Err(ProofError::TooLarge {
            constraints,
            max: MAX_SETUP_CONSTRAINTS,
        });
    }
    Ok(constraints)
}

/// Circuit-specific setup for `shape` (the trusted setup: whoever runs it must forget the
/// randomness drawn from `rng`). A shape over [`MAX_SETUP_CONSTRAINTS`] is refused first
/// ([`check_size`]).
pub fn setup<R: RngCore + CryptoRng>(
    shape: &Shape,
    rng: &mut R,
) -> Result<(ProvingKey, VerifyingKey), ProofError> {
    check_size(shape)?;
    Ok(Groth16::<Bn254>::circuit_specific_setup(
        TrainingCircuit::blank(shape),
        rng,
    )?)
}

/// Prepares a verifying key once for many verifications.
pub fn prepare(vk: &VerifyingKey) -> PreparedVerifyingKey<Bn254> {
    ark_groth16::prepare_verifying_key(vk)
}

/// Checks a proof against a statement.
pub fn verify(
    pvk: &PreparedVerifyingKey<Bn254>,
    public: &Public,
    proof: &Proof,
) -> Result<bool, ProofError> {
    Ok(Groth16::<Bn254>::verify_with_processed_vk(
        pvk,
        &public.to_inputs(),
        &proof.0,
    )?)
}

/// Checks many proofs at once: true exactly when every proof verifies against its
/// statement, except with probability at most 2^−128 over `rng` (false when any does not).
///
/// The standard randomised batch check of Groth16 (Bellare, Garay and Rabin's small-exponent
/// test): with r_i drawn uniformly from [1, 2^128), the n equations
/// e(A_i, B_i) = e(α, β) · e(L_i, γ) · e(C_i, δ), where L_i = IC_0 + Σ_j x_ij·IC_j, are
/// combined into
///
/// Π_i e(r_i·A_i, B_i) · e(Σ_i r_i·L_i, −γ) · e(Σ_i r_i·C_i, −δ) = e(α, β)^(Σ_i r_i),
///
/// one Miller loop per proof plus two, a single final exponentiation, and the inputs folded
/// into one multi-scalar multiplication (Σ_i r_i·L_i = (Σ_i r_i)·IC_0 +
/// Σ_j (Σ_i r_i·x_ij)·IC_j) instead of one per proof. Sound because every pairing value
/// lies in the prime-order group G_T and the proof points were checked to lie in their
/// prime-order subgroups when decoded ([`Proof::from_bytes`]). A false result does not say
/// which proof is bad: check them one by one with [`verify`] to find out.
pub fn verify_batch<R: RngCore + CryptoRng>(
    pvk: &PreparedVerifyingKey<Bn254>,
    batch: &[(Public, Proof)],
    rng: &mut R,
) -> Result<bool, ProofError> {
    use ark_bn254::{G1Affine, G1Projective};
    use ark_ec::pairing::Pairing;
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_ff::{Field, PrimeField};

    if batch.is_empty() {
        return Ok(true);
    }
    let ic = &pvk.vk.gamma_abc_g1;
    let r: Vec<Fr> = batch
        .iter()
        .map(|_| {
            let mut v = 0u128;
            while v == 0 {
                v = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            }
            Fr::from(v)
        })
        .collect();
    // Σ_i r_i·L_i as one MSM over the key's input bases.
    let mut coeffs = vec![Fr::from(0u64); ic.len()];
    for ((public, _), ri) in batch.iter().zip(&r) {
        let x = public.to_inputs();
        if x.len() + 1 != ic.len() {
            return Err(malformed(
                "statement",
                format!("{} public inputs for a key of {}", x.len(), ic.len() - 1),
            ));
        }
        coeffs[0] += ri;
        for (c, xj) in coeffs[1..].iter_mut().zip(&x) {
            *c += *ri * xj;
        }
    }
    let inputs = G1Projective::msm(ic, &coeffs).map_err(|n| malformed("statement", n))?;
    let cs: Vec<G1Affine> = batch.iter().map(|(_, p)| p.0.c).collect();
    let c_sum = G1Projective::msm(&cs, &r).map_err(|n| malformed("proof", n))?;
    let a: Vec<G1Projective> = batch
        .iter()
        .zip(&r)
        .map(|((_, p), ri)| p.0.a * ri)
        .collect();
    let mut g1: Vec<<Bn254 as Pairing>::G1Prepared> = G1Projective::normalize_batch(&a)
        .into_iter()
        .map(Into::into)
        .collect();
    let mut g2: Vec<<Bn254 as Pairing>::G2Prepared> =
        batch.iter().map(|(_, p)| p.0.b.into()).collect();
    g1.push(inputs.into_affine().into());
    g2.push(pvk.gamma_g2_neg_pc.clone());
    g1.push(c_sum.into_affine().into());
    g2.push(pvk.delta_g2_neg_pc.clone());
    let Some(lhs) = Bn254::final_exponentiation(Bn254::multi_miller_loop(g1, g2)) else {
        return Ok(false);
    };
    let sum_r: Fr = r.iter().sum();
    Ok(lhs.0 == pvk.alpha_g1_beta_g2.pow(sum_r.into_bigint()))
}

fn with_header(magic: &[u8; 8], shape: &Shape, key: &impl CanonicalSerialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + key.compressed_size());
    out.extend_from_slice(magic);
    out.extend_from_slice(&shape.hash());
    // Writing to a Vec cannot fail.
    let _ = key.serialize_compressed(&mut out);
    out
}

fn strip_header<'a>(
    magic: &[u8; 8],
    shape: &Shape,
    bytes: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8], ProofError> {
    if bytes.len() < 40 || &bytes[..8] != magic {
        return Err(malformed(what, "bad magic"));
    }
    if bytes[8..40] != shape.hash() {
        return Err(ProofError::WrongShape {
            found: hex::encode(&bytes[8..40]),
            expected: shape.id(),
        });
    }
    Ok(&bytes[40..])
}

/// A verifying key with its shape header (for transcripts and `export-verifier`).
pub fn vk_to_bytes(shape: &Shape, vk: &VerifyingKey) -> Vec<u8> {
    with_header(VK_MAGIC, shape, vk)
}

/// Reads a verifying key, checking it was made for `shape` and that its points are valid.
pub fn vk_from_bytes(shape: &Shape, bytes: &[u8]) -> Result<VerifyingKey, ProofError> {
    let body = strip_header(VK_MAGIC, shape, bytes, "verifying key")?;
    VerifyingKey::deserialize_compressed(body).map_err(|e| malformed("verifying key", e))
}

/// A proving key with its shape header.
pub fn pk_to_bytes(shape: &Shape, pk: &ProvingKey) -> Vec<u8> {
    with_header(PK_MAGIC, shape, pk)
}

/// Reads a proving key made for `shape`, validating every point (on the curve, in the
/// prime-order subgroup: BN254's G1 has cofactor 1, its G2 does not) and then its structure
/// ([`check_proving_key`]). A holder's key may come from whoever ran the job's setup, and a
/// crafted key would otherwise make each proof carry chosen witness values (issue #12,
/// item 6). Validation makes loading about 4× slower, nearly all of it the subgroup check
/// of each G2 point (one per variable, the B-query's); measured on 2 shared cores
/// (`subverted_key::key_validation_costs`), a 1 MB key (4,469 variables) loads in 1.2 s
/// instead of 0.3 s and a 46 MB one (234,396 variables) in 76 s instead of 20 s, and the
/// structural checks add 0.1 s and 5 s. A holder pays it once per job.
pub fn pk_from_bytes(shape: &Shape, bytes: &[u8]) -> Result<ProvingKey, ProofError> {
    let body = strip_header(PK_MAGIC, shape, bytes, "proving key")?;
    let pk = ProvingKey::deserialize_with_mode(body, Compress::Yes, Validate::Yes)
        .map_err(|e| malformed("proving key", e))?;
    check_proving_key(&pk)?;
    Ok(pk)
}

/// The checks that make every proof under `pk` zero-knowledge, whatever else the key
/// holds (its points already validated, as [`pk_from_bytes`] and `ark-serialize` do):
///
/// - δ (in G1 and G2), α, β and γ are not the identity;
/// - the same δ and B-query in both groups. `ark-groth16`'s setup draws its own random
///   generators g₁′, g₂′ and does not keep them, so pairs are compared through β (any
///   non-identity β₁, β₂ are b·g₁′, b·g₂′ for some such generators): e(δ₁, β₂) = e(β₁, δ₂),
///   and e(b₁ᵢ, β₂) = e(β₁, b₂ᵢ) for every i, checked at once as
///   e(Σ ρᵢ·b₁ᵢ, β₂) = e(β₁, Σ ρᵢ·b₂ᵢ) with fresh random 128-bit ρᵢ (a disagreeing key
///   passes with probability at most 2⁻¹²⁸);
/// - the query lengths agree with each other and with the verifying key's inputs
///   ([`super::prover::Prover::new`] also holds them to the shape's constraint system).
///
/// With δ ≠ 0 the prover's random r and s make A = α + Σ zᵢ·aᵢ + r·δ₁ and
/// B = β + Σ zᵢ·bᵢ + s·δ₂ uniform and independent of the witness, whatever the A- and
/// B-queries are. The A-, H- and L-queries encode the QAP at the setup's secret point and
/// cannot be checked without it; what they could leak goes into C, and C of a proof that
/// verifies is fixed by A, B and the public inputs (e(C, δ₂) is determined by the
/// verification equation): so the prover verifies each proof under `pk.vk` before
/// returning it ([`super::prover::Prover::prove`]).
pub fn check_proving_key(pk: &ProvingKey) -> Result<(), ProofError> {
    use ark_bn254::{G1Affine, G1Projective, G2Affine, G2Projective};
    use ark_ec::pairing::Pairing;
    use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
    use ark_ff::Zero;
    use rand::Rng;

    let bad = |what: &str| Err(ProofError::BadProvingKey(what.to_owned()));
    let vk = &pk.vk;
    if pk.delta_g1.is_zero() || vk.delta_g2.is_zero() {
        return bad("δ is the identity");
    }
    if vk.alpha_g1.is_zero() {
        return bad("α is the identity");
    }
    if pk.beta_g1.is_zero() || vk.beta_g2.is_zero() {
        return bad("β is the identity");
    }
    if vk.gamma_g2.is_zero() {
        return bad("γ is the identity");
    }
    let n = pk.a_query.len();
    if pk.b_g1_query.len() != n
        || pk.b_g2_query.len() != n
        || vk.gamma_abc_g1.is_empty()
        || pk.l_query.len() + vk.gamma_abc_g1.len() != n
        || pk.h_query.is_empty()
    {
        return Err(malformed(
            "proving key",
            format!(
                "query lengths disagree: A {n}, B {} and {}, L {}, inputs {}, H {}",
                pk.b_g1_query.len(),
                pk.b_g2_query.len(),
                pk.l_query.len(),
                vk.gamma_abc_g1.len(),
                pk.h_query.len()
            ),
        ));
    }
    // e(p, β₂) = e(β₁, q), as e(p, β₂)·e(−β₁, q) = 1.
    let same = |p: G1Affine, q: G2Affine| {
        Bn254::multi_pairing([p, -pk.beta_g1], [vk.beta_g2, q]).is_zero()
    };
    if !same(pk.delta_g1, vk.delta_g2) {
        return bad("δ differs between G1 and G2");
    }
    let mut rng = rand::thread_rng();
    let rho: Vec<Fr> = (0..n).map(|_| Fr::from(rng.gen::<u128>())).collect();
    let b1 = G1Projective::msm(&pk.b_g1_query, &rho).map_err(|e| malformed("proving key", e))?;
    let b2 = G2Projective::msm(&pk.b_g2_query, &rho).map_err(|e| malformed("proving key", e))?;
    if !same(b1.into_affine(), b2.into_affine()) {
        return bad("B queries disagree between G1 and G2");
    }
    Ok(())
}

/// A directory of keys named by shape hash (`training-<hash>.pk` / `.vk`).
#[derive(Clone, Debug)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// Keys under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The files of `shape`'s keys.
    pub fn paths(&self, shape: &Shape) -> (PathBuf, PathBuf) {
        let stem = format!("training-{}", shape.id());
        (
            self.dir.join(format!("{stem}.pk")),
            self.dir.join(format!("{stem}.vk")),
        )
    }

    fn read(path: &Path) -> Result<Vec<u8>, ProofError> {
        std::fs::read(path).map_err(|source| ProofError::Io {
            path: path.to_owned(),
            source,
        })
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
        let io = |source| ProofError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Write then rename, so a crash never leaves a truncated key under the real name.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Loads `shape`'s keys if both files exist (`None` if not).
    pub fn load(&self, shape: &Shape) -> Result<Option<(ProvingKey, VerifyingKey)>, ProofError> {
        let (pk_path, vk_path) = self.paths(shape);
        if !pk_path.exists() || !vk_path.exists() {
            return Ok(None);
        }
        let pk = pk_from_bytes(shape, &Self::read(&pk_path)?)?;
        let vk = vk_from_bytes(shape, &Self::read(&vk_path)?)?;
        if pk.vk != vk {
            return Err(malformed(
                "key pair",
                "proving key and verifying key differ",
            ));
        }
        Ok(Some((pk, vk)))
    }

    /// Stores `shape`'s keys.
    pub fn save(
        &self,
        shape: &Shape,
        pk: &ProvingKey,
        vk: &VerifyingKey,
    ) -> Result<(), ProofError> {
        let (pk_path, vk_path) = self.paths(shape);
        Self::write(&pk_path, &pk_to_bytes(shape, pk))?;
        Self::write(&vk_path, &vk_to_bytes(shape, vk))
    }

    /// Loads `shape`'s keys, or runs the setup and stores them.
    pub fn load_or_setup<R: RngCore + CryptoRng>(
        &self,
        shape: &Shape,
        rng: &mut R,
    ) -> Result<(ProvingKey, VerifyingKey), ProofError> {
        if let Some(keys) = self.load(shape)? {
            return Ok(keys);
        }
        let (pk, vk) = setup(shape, rng)?;
        self.save(shape, &pk, &vk)?;
        Ok((pk, vk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pedersen::{self, Generators, Scalar};
    use crate::training::prover::Prover;
    use crate::training::tests::fixture;
    use crate::training::Witness;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-circuits-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn groth16_round_trip_and_rejections() {
        let f = fixture(vec![], 1, 0.01);
        let mut rng = ChaCha20Rng::seed_from_u64(20);
        let (pk, vk) = setup(&f.shape, &mut rng).unwrap();
        let prover = Prover::new(&f.shape, pk).unwrap();
        let pvk = prepare(&vk);
        let proof = prover.prove(&f.witness, &mut rng).unwrap();
        let bytes = proof.to_bytes();
        assert_eq!(bytes.len(), PROOF_BYTES);
        let decoded = Proof::from_bytes(&bytes).unwrap();
        assert!(verify(&pvk, &f.witness.public, &decoded).unwrap());

        // Wrong public input: another commitment, another model hash.
        let mut public = f.witness.public.clone();
        let gens = Generators::new(f.shape.model.param_count());
        let mut other = f.witness.private.update.clone();
        other[1] += 1;
        public.commitment = pedersen::commit(&gens, &other, &f.witness.private.rho).unwrap();
        assert!(!verify(&pvk, &public, &proof).unwrap());
        let mut public = f.witness.public.clone();
        public.model_hash += ark_bn254::Fr::from(1u64);
        assert!(!verify(&pvk, &public, &proof).unwrap());

        // A tampered proof either fails to decode or fails to verify.
        for i in [0usize, 40, 100] {
            let mut t = bytes.clone();
            t[i] ^= 1;
            if let Ok(p) = Proof::from_bytes(&t) {
                assert!(!verify(&pvk, &f.witness.public, &p).unwrap());
            }
        }
        assert!(Proof::from_bytes(&bytes[..127]).is_err());

        // The checked prover refuses a witness the circuit rejects, with a typed error.
        let mut bad = f.witness.clone();
        bad.private.rho += Scalar::from(1u64);
        assert!(matches!(
            prover.prove(&bad, &mut rng),
            Err(ProofError::Unsatisfied)
        ));
    }

    #[test]
    fn batch_verification_accepts_valid_proofs_and_rejects_any_bad_one() {
        let f = fixture(vec![], 1, 0.01);
        let mut rng = ChaCha20Rng::seed_from_u64(23);
        let (pk, vk) = setup(&f.shape, &mut rng).unwrap();
        let prover = Prover::new(&f.shape, pk).unwrap();
        let pvk = prepare(&vk);
        // Two statements: the fixture's, and the same update under another blinding.
        let x1 = f.witness.public.clone();
        let mut w2 = f.witness.clone();
        w2.private.rho += Scalar::from(1u64);
        let gens = Generators::new(f.shape.model.param_count());
        w2.public.commitment =
            pedersen::commit(&gens, &w2.private.update, &w2.private.rho).unwrap();
        let x2 = w2.public.clone();
        let p1 = prover.prove(&f.witness, &mut rng).unwrap();
        let p2 = prover.prove(&f.witness, &mut rng).unwrap();
        let q = prover.prove(&w2, &mut rng).unwrap();
        let one_by_one =
            |batch: &[(Public, Proof)]| batch.iter().all(|(x, p)| verify(&pvk, x, p).unwrap());

        let honest = vec![
            (x1.clone(), p1.clone()),
            (x1.clone(), p2.clone()),
            (x2.clone(), q.clone()),
        ];
        assert!(one_by_one(&honest));
        assert!(verify_batch(&pvk, &honest, &mut rng).unwrap());
        assert!(verify_batch(&pvk, &honest[2..], &mut rng).unwrap());
        assert!(verify_batch(&pvk, &[], &mut rng).unwrap());

        let mut cases: Vec<(&str, Vec<(Public, Proof)>)> = Vec::new();
        let mut bad = honest.clone();
        bad[1].0.model_hash += ark_bn254::Fr::from(1u64);
        cases.push(("a statement with another model hash", bad));
        // Each proof valid, each paired with the other's statement.
        cases.push((
            "two proofs with their statements swapped",
            vec![(x1.clone(), q.clone()), (x2.clone(), p1.clone())],
        ));
        let mut mixed = p1.clone();
        mixed.0.c = p2.0.c;
        cases.push((
            "a proof spliced from two valid ones",
            vec![(x1.clone(), mixed), (x2.clone(), q.clone())],
        ));
        let mut tampered = None;
        let bytes = p2.to_bytes();
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 1;
            if let Ok(p) = Proof::from_bytes(&t) {
                tampered = Some(p);
                break;
            }
        }
        let tampered = tampered.expect("some one-bit change still decodes");
        assert!(!verify(&pvk, &x1, &tampered).unwrap());
        cases.push((
            "a tampered proof among valid ones",
            vec![
                (x1.clone(), p1.clone()),
                (x1.clone(), tampered),
                (x2.clone(), q.clone()),
            ],
        ));
        for (what, batch) in &cases {
            assert!(!one_by_one(batch), "{what}: some proof is bad");
            for seed in 0..4 {
                let mut r = ChaCha20Rng::seed_from_u64(100 + seed);
                assert!(
                    !verify_batch(&pvk, batch, &mut r).unwrap(),
                    "{what}: the batch check accepted it"
                );
            }
        }
    }

    fn prove_forced(prover: &Prover, w: &Witness, rng: &mut ChaCha20Rng) -> Proof {
        prover.prove_unchecked(w, rng).unwrap()
    }

    #[test]
    fn forced_proofs_of_false_statements_do_not_verify() {
        let f = fixture(vec![], 1, 0.01);
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let (pk, vk) = setup(&f.shape, &mut rng).unwrap();
        let prover = Prover::new(&f.shape, pk).unwrap();
        let pvk = prepare(&vk);
        // The forced prover is a real prover: on the honest witness its proof verifies.
        let honest = prove_forced(&prover, &f.witness, &mut rng);
        assert!(verify(&pvk, &f.witness.public, &honest).unwrap());

        let gens = Generators::new(f.shape.model.param_count());
        let recommit = |w: &mut Witness| {
            w.public.commitment =
                pedersen::commit(&gens, &w.private.update, &w.private.rho).unwrap();
        };
        let mut cases: Vec<(&str, Witness)> = Vec::new();
        let mut w = f.witness.clone();
        w.private.rho += Scalar::from(1u64);
        cases.push(("wrong blinding", w));
        let mut w = f.witness.clone();
        w.private.rows[0][1][2] += 1;
        cases.push(("tampered row", w));
        let mut w = f.witness.clone();
        w.private.model[0] += 1;
        cases.push(("wrong global model", w));
        let mut w = f.witness.clone();
        w.private.update[2] = w.replayed_update[2] + f.hyper.tolerance + 1;
        recommit(&mut w);
        cases.push(("update outside tolerance", w));
        let mut w = f.witness.clone();
        let norm_sq: i64 = w.private.update.iter().map(|v| v * v).sum();
        w.private.hyper.clip_sq = norm_sq - 1;
        w.public.hyper_hash = w.private.hyper.hash(&f.shape);
        cases.push(("over-norm update", w));
        let mut w = f.witness.clone();
        w.private.update[0] += 1;
        cases.push(("commitment to another x", w));

        for (what, w) in &cases {
            assert!(
                matches!(prover.prove(w, &mut rng), Err(ProofError::Unsatisfied)),
                "{what}: the checked prover must refuse"
            );
            let forced = prove_forced(&prover, w, &mut rng);
            assert!(
                !verify(&pvk, &w.public, &forced).unwrap(),
                "{what}: a forced proof verified"
            );
            // Nor does it pass for the honest statement.
            assert!(!verify(&pvk, &f.witness.public, &forced).unwrap(), "{what}");
        }
    }

    #[test]
    fn key_store_names_keys_by_shape() {
        let f = fixture(vec![], 1, 0.01);
        let dir = temp_dir("keys");
        let store = KeyStore::new(&dir);
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        assert!(store.load(&f.shape).unwrap().is_none());
        let (pk, vk) = store.load_or_setup(&f.shape, &mut rng).unwrap();
        let (pk2, vk2) = store.load(&f.shape).unwrap().unwrap();
        assert_eq!(vk, vk2);
        assert_eq!(pk.vk, pk2.vk);

        // Another shape never finds these keys, even under its own name.
        let mut other = f.shape.clone();
        other.local_steps = 2;
        assert!(store.load(&other).unwrap().is_none());
        let (pk_path, vk_path) = store.paths(&f.shape);
        let (opk, ovk) = store.paths(&other);
        std::fs::copy(&pk_path, &opk).unwrap();
        std::fs::copy(&vk_path, &ovk).unwrap();
        assert!(matches!(
            store.load(&other),
            Err(ProofError::WrongShape { .. })
        ));
        assert!(matches!(
            vk_from_bytes(&other, &vk_to_bytes(&f.shape, &vk)),
            Err(ProofError::WrongShape { .. })
        ));
        assert!(vk_from_bytes(&f.shape, b"not a key").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
