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
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use rand::{CryptoRng, RngCore};

use super::circuit::TrainingCircuit;
use super::{Private, Public, Shape, Witness};
use crate::pedersen::Point;

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
    /// Setup or proving failed (an unsatisfiable witness shows up here).
    #[error("groth16: {0}")]
    Groth16(#[from] ark_relations::gr1cs::SynthesisError),
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

/// Circuit-specific setup for `shape` (the trusted setup: whoever runs it must forget the
/// randomness drawn from `rng`).
pub fn setup<R: RngCore + CryptoRng>(
    shape: &Shape,
    rng: &mut R,
) -> Result<(ProvingKey, VerifyingKey), ProofError> {
    let circuit = TrainingCircuit {
        shape: shape.clone(),
        public: dummy_public(),
        private: Private::dummy(shape),
    };
    Ok(Groth16::<Bn254>::circuit_specific_setup(circuit, rng)?)
}

fn dummy_public() -> Public {
    let zero = Fr::from(0u64);
    Public {
        data_root: zero,
        model_hash: zero,
        indices_hash: zero,
        hyper_hash: zero,
        commitment: Point::default(),
    }
}

/// Proves a checked witness.
pub fn prove<R: RngCore + CryptoRng>(
    pk: &ProvingKey,
    shape: &Shape,
    w: &Witness,
    rng: &mut R,
) -> Result<Proof, ProofError> {
    let circuit = TrainingCircuit {
        shape: shape.clone(),
        public: w.public.clone(),
        private: w.private.clone(),
    };
    Ok(Proof(Groth16::<Bn254>::prove(pk, circuit, rng)?))
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

/// Reads a proving key made for `shape`. Point validation is skipped (it dominates load
/// time for large keys): proving keys come from the local cache, not from peers.
pub fn pk_from_bytes(shape: &Shape, bytes: &[u8]) -> Result<ProvingKey, ProofError> {
    let body = strip_header(PK_MAGIC, shape, bytes, "proving key")?;
    ProvingKey::deserialize_with_mode(body, Compress::Yes, Validate::No)
        .map_err(|e| malformed("proving key", e))
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
    use crate::training::tests::fixture;
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
        let pvk = prepare(&vk);
        let proof = prove(&pk, &f.shape, &f.witness, &mut rng).unwrap();
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

        // A proof forced from a witness that violates the statement does not verify. (With
        // debug assertions the prover itself refuses, by panicking; without, it proves.)
        let mut bad = f.witness.clone();
        bad.private.rho += Scalar::from(1u64);
        let forced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            prove(&pk, &f.shape, &bad, &mut rng)
        }));
        match forced {
            Ok(p) => assert!(!verify(&pvk, &f.witness.public, &p.unwrap()).unwrap()),
            // Only the debug check may refuse.
            Err(_) if cfg!(debug_assertions) => {}
            Err(panic) => std::panic::resume_unwind(panic),
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
