//! snarkjs's Groth16 JSON: `verification_key.json`, `proof.json` and `public.json`, as
//! `snarkjs zkey export verificationkey` and `snarkjs groth16 prove` write them and
//! `snarkjs groth16 verify` reads them (snarkjs 0.7).
//!
//! Numbers are decimal strings. A G1 point is `[x, y, z]` and a G2 point
//! `[[x.c0, x.c1], [y.c0, y.c1], [z.c0, z.c1]]`, both projective with `z = 1` for an affine
//! point (snarkjs always writes affine points) and `z = 0` for the point at infinity
//! (`["0", "1", "0"]`). An `F_{q^2}` element `c0 + c1·u` is `[c0, c1]`; `F_{q^12}`
//! (`vk_alphabeta_12`) nests the same way, `[[c0.c0, c0.c1, c0.c2], [c1.c0, c1.c1, c1.c2]]`
//! over the tower `F_{q^2}[v]/(v^3 − (9 + u))`, `F_{q^6}[w]/(w^2 − v)` that arkworks and
//! ffjavascript share. The curve is called `bn128`.
//!
//! Reading is strict: canonical decimals below the modulus, points on the curve and in the
//! prime-order subgroup, `nPublic` consistent with `IC`, and `vk_alphabeta_12` (when present)
//! equal to `e(vk_alpha_1, vk_beta_2)`.

use ark_bn254::{Bn254, Fq, Fq12, Fq2, Fq6, Fr, G1Affine, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ec::AffineRepr;
use ark_ff::{One, Zero};
use ark_groth16::{Proof, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{decimal, malformed, parse_decimal, ExportError};

/// The protocol name snarkjs uses.
pub const PROTOCOL: &str = "groth16";
/// snarkjs's name for BN254.
pub const CURVE: &str = "bn128";

/// A G1 point: `[x, y, z]`.
pub type G1Json = [String; 3];
/// A G2 point: `[[x.c0, x.c1], [y.c0, y.c1], [z.c0, z.c1]]`.
pub type G2Json = [[String; 2]; 3];
/// An `F_{q^12}` element (a pairing value).
pub type GtJson = [[[String; 2]; 3]; 2];

/// `verification_key.json`, field for field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationKeyJson {
    /// Always `"groth16"`.
    pub protocol: String,
    /// Always `"bn128"` when written; `bn254` and `altbn128` are read too, as snarkjs does.
    pub curve: String,
    /// Number of public inputs (`IC.len() − 1`).
    #[serde(rename = "nPublic")]
    pub n_public: usize,
    /// α in G1.
    pub vk_alpha_1: G1Json,
    /// β in G2.
    pub vk_beta_2: G2Json,
    /// γ in G2.
    pub vk_gamma_2: G2Json,
    /// δ in G2.
    pub vk_delta_2: G2Json,
    /// `e(α, β)`: snarkjs writes it, its verifier does not read it. Optional when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vk_alphabeta_12: Option<GtJson>,
    /// The input commitments: `IC[0] + Σ input_i · IC[i+1]` is paired with γ.
    #[serde(rename = "IC")]
    pub ic: Vec<G1Json>,
}

/// `proof.json`, field for field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofJson {
    /// A in G1.
    pub pi_a: G1Json,
    /// B in G2.
    pub pi_b: G2Json,
    /// C in G1.
    pub pi_c: G1Json,
    /// Always `"groth16"`.
    pub protocol: String,
    /// Always `"bn128"` when written.
    pub curve: String,
}

/// A G1 point in snarkjs's form.
pub fn g1(p: &G1Affine) -> G1Json {
    match p.xy() {
        Some((x, y)) => [decimal(x), decimal(y), "1".into()],
        None => ["0".into(), "1".into(), "0".into()],
    }
}

fn fq2(f: &Fq2) -> [String; 2] {
    [decimal(f.c0), decimal(f.c1)]
}

/// A G2 point in snarkjs's form (real part of each coordinate first).
pub fn g2(p: &G2Affine) -> G2Json {
    let one = || ["1".to_string(), "0".to_string()];
    let zero = || ["0".to_string(), "0".to_string()];
    match p.xy() {
        Some((x, y)) => [fq2(&x), fq2(&y), one()],
        None => [zero(), one(), zero()],
    }
}

fn fq6(f: &Fq6) -> [[String; 2]; 3] {
    [fq2(&f.c0), fq2(&f.c1), fq2(&f.c2)]
}

/// An `F_{q^12}` element in snarkjs's form.
pub fn gt(f: &Fq12) -> GtJson {
    [fq6(&f.c0), fq6(&f.c1)]
}

/// The verifying key in snarkjs's form, with `vk_alphabeta_12 = e(α, β)`.
pub fn verification_key(vk: &VerifyingKey<Bn254>) -> VerificationKeyJson {
    let alphabeta = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
    VerificationKeyJson {
        protocol: PROTOCOL.into(),
        curve: CURVE.into(),
        n_public: vk.gamma_abc_g1.len().saturating_sub(1),
        vk_alpha_1: g1(&vk.alpha_g1),
        vk_beta_2: g2(&vk.beta_g2),
        vk_gamma_2: g2(&vk.gamma_g2),
        vk_delta_2: g2(&vk.delta_g2),
        vk_alphabeta_12: Some(gt(&alphabeta)),
        ic: vk.gamma_abc_g1.iter().map(g1).collect(),
    }
}

/// A proof in snarkjs's form.
pub fn proof(p: &Proof<Bn254>) -> ProofJson {
    ProofJson {
        pi_a: g1(&p.a),
        pi_b: g2(&p.b),
        pi_c: g1(&p.c),
        protocol: PROTOCOL.into(),
        curve: CURVE.into(),
    }
}

/// Public inputs in snarkjs's form (`public.json`): decimal strings.
pub fn public_inputs(inputs: &[Fr]) -> Vec<String> {
    inputs.iter().map(|&x| decimal(x)).collect()
}

fn check_tags(protocol: &str, curve: &str) -> Result<(), ExportError> {
    if protocol != PROTOCOL {
        return Err(malformed(
            "protocol",
            format!("{protocol:?}, not {PROTOCOL:?}"),
        ));
    }
    // snarkjs's getCurveFromName: upper-cased, alphanumerics only.
    let norm: String = curve
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    if !matches!(norm.as_str(), "BN128" | "BN254" | "ALTBN128") {
        return Err(malformed("curve", format!("{curve:?}, not {CURVE:?}")));
    }
    Ok(())
}

fn parse_fq2(v: &[String; 2], field: &str) -> Result<Fq2, ExportError> {
    Ok(Fq2::new(
        parse_decimal(&v[0], &format!("{field}[0]"))?,
        parse_decimal(&v[1], &format!("{field}[1]"))?,
    ))
}

/// Reads a G1 point: affine (`z = 1`) on the curve, or infinity (`z = 0`).
pub fn parse_g1(v: &G1Json, field: &str) -> Result<G1Affine, ExportError> {
    let x: Fq = parse_decimal(&v[0], &format!("{field}[0]"))?;
    let y: Fq = parse_decimal(&v[1], &format!("{field}[1]"))?;
    let z: Fq = parse_decimal(&v[2], &format!("{field}[2]"))?;
    if z.is_zero() {
        return Ok(G1Affine::identity());
    }
    if !z.is_one() {
        return Err(malformed(
            field,
            "z is neither 1 nor 0 (snarkjs writes affine points)",
        ));
    }
    checked(G1Affine::new_unchecked(x, y), field)
}

/// Reads a G2 point: affine (`z = [1, 0]`) on the curve and in the subgroup, or infinity.
pub fn parse_g2(v: &G2Json, field: &str) -> Result<G2Affine, ExportError> {
    let x = parse_fq2(&v[0], &format!("{field}[0]"))?;
    let y = parse_fq2(&v[1], &format!("{field}[1]"))?;
    let z = parse_fq2(&v[2], &format!("{field}[2]"))?;
    if z.is_zero() {
        return Ok(G2Affine::identity());
    }
    if !z.is_one() {
        return Err(malformed(
            field,
            "z is neither 1 nor 0 (snarkjs writes affine points)",
        ));
    }
    checked(G2Affine::new_unchecked(x, y), field)
}

fn checked<P: ark_ec::short_weierstrass::SWCurveConfig>(
    p: ark_ec::short_weierstrass::Affine<P>,
    field: &str,
) -> Result<ark_ec::short_weierstrass::Affine<P>, ExportError> {
    if !p.is_on_curve() {
        return Err(malformed(field, "the point is not on the curve"));
    }
    if !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(malformed(
            field,
            "the point is not in the prime-order subgroup",
        ));
    }
    Ok(p)
}

/// Reads an `F_{q^12}` element.
pub fn parse_gt(v: &GtJson, field: &str) -> Result<Fq12, ExportError> {
    let f6 = |i: usize| -> Result<Fq6, ExportError> {
        let c = |j: usize| parse_fq2(&v[i][j], &format!("{field}[{i}][{j}]"));
        Ok(Fq6::new(c(0)?, c(1)?, c(2)?))
    };
    Ok(Fq12::new(f6(0)?, f6(1)?))
}

impl VerificationKeyJson {
    /// The arkworks key, after every check in the module docs.
    pub fn to_arkworks(&self) -> Result<VerifyingKey<Bn254>, ExportError> {
        check_tags(&self.protocol, &self.curve)?;
        if self.ic.len() != self.n_public + 1 {
            return Err(malformed(
                "nPublic",
                format!(
                    "{} but IC has {} points (want nPublic + 1)",
                    self.n_public,
                    self.ic.len()
                ),
            ));
        }
        let vk = VerifyingKey {
            alpha_g1: parse_g1(&self.vk_alpha_1, "vk_alpha_1")?,
            beta_g2: parse_g2(&self.vk_beta_2, "vk_beta_2")?,
            gamma_g2: parse_g2(&self.vk_gamma_2, "vk_gamma_2")?,
            delta_g2: parse_g2(&self.vk_delta_2, "vk_delta_2")?,
            gamma_abc_g1: self
                .ic
                .iter()
                .enumerate()
                .map(|(i, p)| parse_g1(p, &format!("IC[{i}]")))
                .collect::<Result<_, _>>()?,
        };
        if let Some(ab) = &self.vk_alphabeta_12 {
            let given = parse_gt(ab, "vk_alphabeta_12")?;
            if given != Bn254::pairing(vk.alpha_g1, vk.beta_g2).0 {
                return Err(malformed(
                    "vk_alphabeta_12",
                    "is not e(vk_alpha_1, vk_beta_2)",
                ));
            }
        }
        Ok(vk)
    }
}

impl ProofJson {
    /// The arkworks proof: points on the curve and in their subgroups.
    pub fn to_arkworks(&self) -> Result<Proof<Bn254>, ExportError> {
        check_tags(&self.protocol, &self.curve)?;
        Ok(Proof {
            a: parse_g1(&self.pi_a, "pi_a")?,
            b: parse_g2(&self.pi_b, "pi_b")?,
            c: parse_g1(&self.pi_c, "pi_c")?,
        })
    }
}

/// Reads public inputs from their decimal strings (each below the scalar field's modulus,
/// which snarkjs also requires).
pub fn public_from_strings(v: &[String]) -> Result<Vec<Fr>, ExportError> {
    v.iter()
        .enumerate()
        .map(|(i, s)| parse_decimal(s, &format!("public[{i}]")))
        .collect()
}

/// Reads `verification_key.json`.
pub fn parse_verification_key(text: &str) -> Result<VerifyingKey<Bn254>, ExportError> {
    serde_json::from_str::<VerificationKeyJson>(text)?.to_arkworks()
}

/// Reads `proof.json`.
pub fn parse_proof(text: &str) -> Result<Proof<Bn254>, ExportError> {
    serde_json::from_str::<ProofJson>(text)?.to_arkworks()
}

/// Reads `public.json`.
pub fn parse_public_inputs(text: &str) -> Result<Vec<Fr>, ExportError> {
    public_from_strings(&serde_json::from_str::<Vec<String>>(text)?)
}

#[cfg(test)]
mod tests {
    use ark_ec::CurveGroup;
    use ark_ff::PrimeField;
    use ark_groth16::Groth16;
    use ark_snark::SNARK;

    use super::super::tests::toy;
    use super::proof as proof_json_of;
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    /// The generators as EIP-197 writes them (`x = x_im · i + x_re`), here in snarkjs's
    /// order (real part first): pins the coordinate order against an outside source.
    #[test]
    fn generators_match_eip197() {
        assert_eq!(g1(&G1Affine::generator()), [s("1"), s("2"), s("1")]);
        assert_eq!(
            g2(&G2Affine::generator()),
            [
                [
                    s("10857046999023057135944570762232829481370756359578518086990519993285655852781"),
                    s("11559732032986387107991004021392285783925812861821192530917403151452391805634"),
                ],
                [
                    s("8495653923123431417604973247489272438418190587263600148770280649306958101930"),
                    s("4082367875863433681332203403145435568316851327593401208105741076214120093531"),
                ],
                [s("1"), s("0")],
            ]
        );
        assert_eq!(
            parse_g2(&g2(&G2Affine::generator()), "g").unwrap(),
            G2Affine::generator()
        );
    }

    #[test]
    fn key_proof_and_inputs_round_trip_and_verify() {
        let (_, vk, proof, inputs) = toy(3, 1);
        let vj = verification_key(&vk);
        assert_eq!(vj.n_public, 3);
        assert_eq!(vj.ic.len(), 4);

        // The JSON carries snarkjs's field names and string numbers.
        let value = serde_json::to_value(&vj).unwrap();
        for key in [
            "protocol",
            "curve",
            "nPublic",
            "vk_alpha_1",
            "vk_beta_2",
            "vk_gamma_2",
            "vk_delta_2",
            "vk_alphabeta_12",
            "IC",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["protocol"], "groth16");
        assert_eq!(value["curve"], "bn128");
        assert_eq!(value["nPublic"], 3);
        assert_eq!(value["vk_alpha_1"][2], "1");
        assert_eq!(value["vk_beta_2"][2], serde_json::json!(["1", "0"]));

        // Each coordinate is the decimal of arkworks' affine coordinate, real part first.
        let (ax, ay) = vk.alpha_g1.xy().unwrap();
        assert_eq!(vj.vk_alpha_1[0], ax.to_string());
        assert_eq!(vj.vk_alpha_1[1], ay.to_string());
        let (bx, by) = vk.beta_g2.xy().unwrap();
        assert_eq!(vj.vk_beta_2[0], [bx.c0.to_string(), bx.c1.to_string()]);
        assert_eq!(vj.vk_beta_2[1], [by.c0.to_string(), by.c1.to_string()]);

        let text = serde_json::to_string(&vj).unwrap();
        assert_eq!(parse_verification_key(&text).unwrap(), vk);
        let pj = serde_json::to_string(&proof_json_of(&proof)).unwrap();
        let back = parse_proof(&pj).unwrap();
        assert_eq!(back, proof);
        let pubs = serde_json::to_string(&public_inputs(&inputs)).unwrap();
        let inputs2 = parse_public_inputs(&pubs).unwrap();
        assert_eq!(inputs2, inputs);
        assert!(Groth16::<Bn254>::verify(&vk, &inputs2, &back).unwrap());

        // A proof re-read with a changed input, or with its points exchanged, does not verify.
        let mut wrong = inputs2.clone();
        wrong[2] += Fr::from(1u64);
        assert!(!Groth16::<Bn254>::verify(&vk, &wrong, &back).unwrap());
        let mut swapped = proof_json_of(&proof);
        std::mem::swap(&mut swapped.pi_a, &mut swapped.pi_c);
        let swapped = swapped.to_arkworks().unwrap();
        assert!(!Groth16::<Bn254>::verify(&vk, &inputs, &swapped).unwrap());
    }

    #[test]
    fn points_at_infinity_round_trip() {
        let z1 = g1(&G1Affine::identity());
        assert_eq!(z1, [s("0"), s("1"), s("0")]);
        assert!(parse_g1(&z1, "p").unwrap().is_zero());
        let z2 = g2(&G2Affine::identity());
        assert!(parse_g2(&z2, "p").unwrap().is_zero());
    }

    #[test]
    fn reading_refuses_what_is_not_a_valid_key_or_proof() {
        let (_, vk, proof, _) = toy(2, 2);
        let good = verification_key(&vk);
        let refuse = |vj: &VerificationKeyJson, field: &str| match vj.to_arkworks() {
            Err(ExportError::Malformed { field: f, .. }) => assert!(f.starts_with(field), "{f}"),
            other => panic!("{field}: {other:?}"),
        };

        let mut v = good.clone();
        v.protocol = "plonk".into();
        refuse(&v, "protocol");
        let mut v = good.clone();
        v.curve = "bls12381".into();
        refuse(&v, "curve");
        let mut v = good.clone();
        v.curve = "BN254".into();
        assert!(
            v.to_arkworks().is_ok(),
            "snarkjs's other names for the curve"
        );
        let mut v = good.clone();
        v.n_public = 3;
        refuse(&v, "nPublic");

        // Off the curve: y + 1.
        let mut v = good.clone();
        let (ax, ay) = vk.alpha_g1.xy().unwrap();
        v.vk_alpha_1 = [decimal(ax), decimal(ay + Fq::from(1u64)), s("1")];
        refuse(&v, "vk_alpha_1");
        // Projective z other than 1.
        let mut v = good.clone();
        v.vk_alpha_1[2] = s("2");
        refuse(&v, "vk_alpha_1");
        // The real and imaginary parts exchanged: not on the curve any more.
        let mut v = good.clone();
        for c in &mut v.vk_delta_2[..2] {
            c.swap(0, 1);
        }
        refuse(&v, "vk_delta_2");
        // On the twist but outside the prime-order subgroup.
        let mut v = good.clone();
        v.vk_gamma_2 = g2(&non_subgroup_g2());
        refuse(&v, "vk_gamma_2");
        // A coordinate ≥ q.
        let mut v = good.clone();
        v.ic[1][0] = Fq::MODULUS.to_string();
        refuse(&v, "IC[1][0]");
        // A wrong e(α, β), and none at all (snarkjs's verifier does not need it).
        let mut v = good.clone();
        if let Some(ab) = &mut v.vk_alphabeta_12 {
            ab[0][0][0] = s("1");
        }
        refuse(&v, "vk_alphabeta_12");
        let mut v = good.clone();
        v.vk_alphabeta_12 = None;
        assert_eq!(v.to_arkworks().unwrap(), vk);

        let mut p = proof_json_of(&proof);
        p.pi_b[0].swap(0, 1);
        assert!(matches!(
            p.to_arkworks(),
            Err(ExportError::Malformed { field, .. }) if field == "pi_b"
        ));
        assert!(matches!(
            parse_proof("{\"pi_a\": 1}"),
            Err(ExportError::Json(_))
        ));
        let r = Fr::MODULUS.to_string();
        assert!(parse_public_inputs(&format!("[\"1\", \"{r}\"]")).is_err());
        assert!(
            parse_public_inputs("[1, 2]").is_err(),
            "numbers, not strings"
        );
    }

    fn non_subgroup_g2() -> G2Affine {
        let mut x = Fq2::new(Fq::from(1u64), Fq::from(1u64));
        loop {
            if let Some(p) = G2Affine::get_point_from_x_unchecked(x, false) {
                if !p.is_in_correct_subgroup_assuming_on_curve() {
                    return p;
                }
            }
            x += Fq2::one();
        }
    }

    #[test]
    fn pairing_value_round_trips() {
        let (_, vk, _, _) = toy(1, 3);
        let ab = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
        assert_eq!(parse_gt(&gt(&ab), "ab").unwrap(), ab);
        let g = (G1Affine::generator() + G1Affine::generator()).into_affine();
        assert_eq!(parse_g1(&g1(&g), "g").unwrap(), g);
    }
}
