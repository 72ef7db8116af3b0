//! Independent verification: a Groth16 verifying key, proofs and their public inputs in the
//! formats other tools read.
//!
//! - [`snarkjs`]: snarkjs's JSON (`verification_key.json`, `proof.json`, `public.json`), so
//!   `snarkjs groth16 verify` checks cairn proofs, and the parser back to arkworks points.
//! - [`solidity`]: a Solidity Groth16 verifier contract for a key (BN254 precompiles), and the
//!   calldata of a proof for it.
//! - [`write_bundle`]: all of it into one directory, which is what `cairn export-verifier`
//!   writes.
//!
//! Nothing here checks that a proof is valid: an export is faithful to what it is given (a
//! tampered proof exports as a tampered proof, which is how the rejections are tested).
//! Callers that export a job's proofs have already verified them.
//!
//! Coordinates: snarkjs writes points in projective form with `z = 1` (affine), and an
//! `F_{q^2}` element as `[c0, c1]` (real part first); the EVM's pairing precompile (EIP-197)
//! reads `F_{q^2}` elements imaginary part first, `(c1, c0)`. Both conversions live here
//! and are tested against the EIP-197 generator.

pub mod snarkjs;
pub mod solidity;

use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr};
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Proof, VerifyingKey};

/// File name of the verifying key in a bundle.
pub const VK_FILE: &str = "verification_key.json";
/// File name of the verifier contract in a bundle.
pub const CONTRACT_FILE: &str = "Verifier.sol";
/// Longest accepted proof name.
pub const MAX_NAME_LEN: usize = 64;

/// Why an export could not be written or an exported file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A field of an exported (JSON) object that is not what the format allows.
    #[error("{field}: {reason}")]
    Malformed {
        /// Where in the object, e.g. `vk_beta_2[1][0]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A proof's public inputs do not match the verifying key.
    #[error("{got} public inputs, the verifying key takes {want}")]
    InputCount {
        /// Inputs given.
        got: usize,
        /// Inputs the key has (`IC.len() − 1`).
        want: usize,
    },
    /// A proof name unusable in a file name.
    #[error("proof name {0:?}: use 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 _ -")]
    BadName(String),
    /// Two proofs with the same name.
    #[error("proof name {0:?} given twice")]
    DuplicateName(String),
    /// Not JSON, or JSON of another shape.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

pub(crate) fn malformed(field: impl Into<String>, reason: impl Into<String>) -> ExportError {
    ExportError::Malformed {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A prime-field element as a decimal string without leading zeros (`"0"` for zero).
pub(crate) fn decimal<F: PrimeField>(f: F) -> String {
    f.into_bigint().to_string()
}

/// A prime-field element as `0x` and 64 hex digits, big-endian (Solidity `uint256`).
pub(crate) fn hex_word<F: PrimeField>(f: F) -> String {
    format!("0x{}", hex::encode(word(f)))
}

/// A prime-field element as a 32-byte big-endian EVM word.
pub(crate) fn word<F: PrimeField>(f: F) -> [u8; 32] {
    let bytes = f.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    // BN254's fields are 254 bits: the big integer is 4 limbs, 32 bytes.
    let start = 32usize.saturating_sub(bytes.len());
    out[start..].copy_from_slice(&bytes[bytes.len().saturating_sub(32)..]);
    out
}

/// Reads a canonical decimal: ASCII digits only, no sign, no leading zeros (except `"0"`),
/// below the field's modulus. Stricter than `Fp::from_str`, which reduces modulo p and so
/// would accept two spellings of one element.
pub(crate) fn parse_decimal<F: PrimeField>(s: &str, field: &str) -> Result<F, ExportError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(field, format!("{s:?} is not a decimal number")));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(malformed(field, format!("{s:?} has leading zeros")));
    }
    let big: F::BigInt = s
        .parse()
        .map_err(|_| malformed(field, format!("{s:?} is longer than 256 bits")))?;
    F::from_bigint(big).ok_or_else(|| malformed(field, format!("{s} is not below the modulus")))
}

/// One proof to export: its name (used in file names) and its public inputs.
#[derive(Clone, Debug)]
pub struct NamedProof {
    /// `proof_<name>.json` etc.: 1 to [`MAX_NAME_LEN`] of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// The proof.
    pub proof: Proof<Bn254>,
    /// Its public inputs, in the circuit's order.
    pub inputs: Vec<Fr>,
}

/// Checks a proof name is safe as part of a file name.
pub fn check_name(name: &str) -> Result<(), ExportError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ExportError::BadName(name.to_owned()))
    }
}

/// Checks `inputs` has as many elements as `vk` takes.
pub fn check_input_count(vk: &VerifyingKey<Bn254>, inputs: &[Fr]) -> Result<(), ExportError> {
    let want = vk.gamma_abc_g1.len().saturating_sub(1);
    if inputs.len() != want {
        return Err(ExportError::InputCount {
            got: inputs.len(),
            want,
        });
    }
    Ok(())
}

/// Writes everything an independent verifier needs into `dir` (created if absent):
///
/// - `verification_key.json`: the key in snarkjs's format;
/// - `Verifier.sol`: a Solidity verifier contract for the key ([`solidity::verifier_contract`],
///   with `note` in its header comment, e.g. the job and shape);
/// - per proof: `proof_<name>.json`, `public_<name>.json` (snarkjs) and `calldata_<name>.txt`
///   (the arguments of `verifyProof`, as `snarkjs zkey export soliditycalldata` prints them).
///
/// Everything is checked (names, input counts) before the first file is written. Existing
/// files of the same names are replaced. Returns the paths written, key and contract first.
pub fn write_bundle(
    dir: &Path,
    vk: &VerifyingKey<Bn254>,
    proofs: &[NamedProof],
    note: &str,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut seen = std::collections::HashSet::new();
    for p in proofs {
        check_name(&p.name)?;
        if !seen.insert(p.name.as_str()) {
            return Err(ExportError::DuplicateName(p.name.clone()));
        }
        check_input_count(vk, &p.inputs)?;
    }
    let mut files = vec![
        (dir.join(VK_FILE), json(&snarkjs::verification_key(vk))?),
        (
            dir.join(CONTRACT_FILE),
            solidity::verifier_contract(vk, note),
        ),
    ];
    for p in proofs {
        files.push((
            dir.join(format!("proof_{}.json", p.name)),
            json(&snarkjs::proof(&p.proof))?,
        ));
        files.push((
            dir.join(format!("public_{}.json", p.name)),
            json(&snarkjs::public_inputs(&p.inputs))?,
        ));
        files.push((
            dir.join(format!("calldata_{}.txt", p.name)),
            format!("{}\n", solidity::calldata(&p.proof, &p.inputs)),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::with_capacity(files.len());
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|source| ExportError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, ExportError> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
#[path = "../../tests/common/mod.rs"]
mod test_circuit;

#[cfg(test)]
pub(crate) mod tests {
    use ark_bn254::{Bn254, Fr};
    use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
    use ark_snark::SNARK;

    use super::test_circuit::{keys_and_proof, Squares};
    use super::*;

    /// Keys for `n` public inputs of the shared test circuit, and an honest proof with its
    /// inputs.
    pub(crate) fn toy(
        n: usize,
        seed: u64,
    ) -> (
        ProvingKey<Bn254>,
        VerifyingKey<Bn254>,
        Proof<Bn254>,
        Vec<Fr>,
    ) {
        keys_and_proof(
            Squares {
                w: Fr::from(seed + 3),
                n,
            },
            seed,
        )
    }

    #[test]
    fn decimals_and_words_are_canonical() {
        use ark_bn254::Fq;
        assert_eq!(decimal(Fq::from(0u64)), "0");
        assert_eq!(
            decimal(-Fq::from(1u64)),
            "21888242871839275222246405745257275088696311157297823662689037894645226208582"
        );
        assert_eq!(
            hex_word(Fr::from(258u64)),
            format!("0x{}0102", "0".repeat(60))
        );
        let m = Fr::MODULUS.to_string();
        assert!(parse_decimal::<Fr>(&m, "x").is_err(), "the modulus itself");
        let below = decimal(-Fr::from(1u64));
        assert_eq!(parse_decimal::<Fr>(&below, "x").unwrap(), -Fr::from(1u64));
        for bad in ["", "-1", "+1", "01", "1_000", " 1", "0x10", &"9".repeat(80)] {
            assert!(parse_decimal::<Fr>(bad, "x").is_err(), "{bad:?}");
        }
        assert_eq!(parse_decimal::<Fr>("0", "x").unwrap(), Fr::from(0u64));
    }

    #[test]
    fn bundle_writes_every_file_and_refuses_bad_requests() {
        let (_, vk, proof, inputs) = toy(2, 5);
        let dir = std::env::temp_dir().join(format!("cairn-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let named = |name: &str, inputs: Vec<Fr>| NamedProof {
            name: name.into(),
            proof: proof.clone(),
            inputs,
        };

        // Refusals come before anything is written.
        for bad in ["", "../x", "a b", "é", &"x".repeat(65)] {
            assert!(matches!(
                write_bundle(&dir, &vk, &[named(bad, inputs.clone())], ""),
                Err(ExportError::BadName(_))
            ));
        }
        assert!(matches!(
            write_bundle(&dir, &vk, &[named("a", inputs[..1].to_vec())], ""),
            Err(ExportError::InputCount { got: 1, want: 2 })
        ));
        assert!(matches!(
            write_bundle(
                &dir,
                &vk,
                &[named("a", inputs.clone()), named("a", inputs.clone())],
                ""
            ),
            Err(ExportError::DuplicateName(_))
        ));
        assert!(!dir.exists());

        let written = write_bundle(&dir, &vk, &[named("r0_p1", inputs.clone())], "note").unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "verification_key.json",
                "Verifier.sol",
                "proof_r0_p1.json",
                "public_r0_p1.json",
                "calldata_r0_p1.txt"
            ]
        );

        // What was written reads back to the same key, proof and inputs, which verify.
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let vk2 = snarkjs::parse_verification_key(&read(VK_FILE)).unwrap();
        let proof2 = snarkjs::parse_proof(&read("proof_r0_p1.json")).unwrap();
        let inputs2 = snarkjs::parse_public_inputs(&read("public_r0_p1.json")).unwrap();
        assert_eq!((&vk2, &proof2, &inputs2), (&vk, &proof, &inputs));
        assert!(Groth16::<Bn254>::verify(&vk2, &inputs2, &proof2).unwrap());
        assert_eq!(
            read("calldata_r0_p1.txt").trim_end(),
            solidity::calldata(&proof, &inputs)
        );
        assert!(read(CONTRACT_FILE).contains("note"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
