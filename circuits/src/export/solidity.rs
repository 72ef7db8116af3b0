//! A Solidity Groth16 verifier contract for one verifying key, and the calldata of a proof
//! for it.
//!
//! The contract is modelled on snarkjs's `verifier_groth16.sol.ejs` (same function, same
//! argument layout, so snarkjs's `zkey export soliditycalldata` output and ours are
//! interchangeable) but written out here as plain Solidity with the key as constants and
//! assembly only around the precompile calls. It checks
//! `e(−A, B) · e(α, β) · e(vk_x, γ) · e(C, δ) = 1` with `vk_x = IC[0] + Σ xᵢ · IC[i+1]` on the
//! EIP-196/197 precompiles (`0x06` add, `0x07` mul, `0x08` pairing), and returns `false`,
//! never reverts, on anything that is not a valid proof: an input `≥ r`, a coordinate `≥ q`,
//! a point off the curve or outside the subgroup (the precompiles refuse those).
//!
//! The precompile reads an `F_{q^2}` element `c0 + c1·u` as `(c1, c0)`: in calldata, `b` is
//! `[[x.c1, x.c0], [y.c1, y.c0]]`, and the key's G2 constants are named `…_IM` / `…_RE`.
//! The point at infinity is `(0, 0)` in the EVM's encoding.

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{PrimeField, Zero};
use ark_groth16::{Proof, VerifyingKey};

use super::{decimal, hex_word, word};

/// Name of the generated contract.
pub const CONTRACT_NAME: &str = "CairnGroth16Verifier";
/// Longest note kept in the contract's header comment.
pub const MAX_NOTE_LEN: usize = 200;

/// Affine coordinates in the EVM's encoding: `(0, 0)` for the point at infinity.
fn g1_xy(p: &G1Affine) -> (Fq, Fq) {
    p.xy().unwrap_or((Fq::zero(), Fq::zero()))
}

/// `(x.c1, x.c0, y.c1, y.c0)`: the order EIP-197 reads a G2 point in.
fn g2_words(p: &G2Affine) -> [Fq; 4] {
    let (x, y) = p.xy().unwrap_or((Fq2::zero(), Fq2::zero()));
    [x.c1, x.c0, y.c1, y.c0]
}

/// The Solidity signature of `verifyProof` for `n_public` inputs (what its selector hashes).
pub fn function_signature(n_public: usize) -> String {
    if n_public == 0 {
        "verifyProof(uint256[2],uint256[2][2],uint256[2])".into()
    } else {
        format!("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[{n_public}])")
    }
}

/// The ABI-encoded arguments of `verifyProof` (without the 4-byte selector): `a`, `b` (each
/// G2 coordinate imaginary part first), `c`, then the inputs, one 32-byte word each.
pub fn calldata_words(proof: &Proof<Bn254>, inputs: &[Fr]) -> Vec<[u8; 32]> {
    let (ax, ay) = g1_xy(&proof.a);
    let (cx, cy) = g1_xy(&proof.c);
    let mut out: Vec<[u8; 32]> = [ax, ay]
        .into_iter()
        .chain(g2_words(&proof.b))
        .chain([cx, cy])
        .map(word)
        .collect();
    out.extend(inputs.iter().map(|&x| word(x)));
    out
}

/// The 768 bytes (24 words) the contract hands the pairing precompile `0x08` for this proof:
/// `(−A, B), (α, β), (vk_x, γ), (C, δ)`, G2 points imaginary part first. The precompile
/// returns 1 iff the proof verifies; computed here natively so that the encoding can be
/// checked against an EVM's precompile without compiling the contract.
pub fn pairing_input(
    vk: &VerifyingKey<Bn254>,
    proof: &Proof<Bn254>,
    inputs: &[Fr],
) -> Vec<[u8; 32]> {
    let mut vk_x = vk
        .gamma_abc_g1
        .first()
        .copied()
        .unwrap_or_default()
        .into_group();
    for (x, ic) in inputs.iter().zip(vk.gamma_abc_g1.iter().skip(1)) {
        vk_x += *ic * x;
    }
    let pairs: [(G1Affine, &G2Affine); 4] = [
        (-proof.a, &proof.b),
        (vk.alpha_g1, &vk.beta_g2),
        (vk_x.into_affine(), &vk.gamma_g2),
        (proof.c, &vk.delta_g2),
    ];
    pairs
        .iter()
        .flat_map(|(p, q)| {
            let (x, y) = g1_xy(p);
            [x, y].into_iter().chain(g2_words(q))
        })
        .map(word)
        .collect()
}

/// The arguments of `verifyProof` as text, exactly as `snarkjs zkey export soliditycalldata`
/// prints them: `[a],[[b]],[c],[inputs]`, each value `"0x…"` with 64 hex digits.
pub fn calldata(proof: &Proof<Bn254>, inputs: &[Fr]) -> String {
    let q = |f: Fq| format!("\"{}\"", hex_word(f));
    let (ax, ay) = g1_xy(&proof.a);
    let (cx, cy) = g1_xy(&proof.c);
    let [bx1, bx0, by1, by0] = g2_words(&proof.b);
    let ins: Vec<String> = inputs
        .iter()
        .map(|&x| format!("\"{}\"", hex_word(x)))
        .collect();
    format!(
        "[{}, {}],[[{}, {}],[{}, {}]],[{}, {}],[{}]",
        q(ax),
        q(ay),
        q(bx1),
        q(bx0),
        q(by1),
        q(by0),
        q(cx),
        q(cy),
        ins.join(",")
    )
}

/// Keeps a note safe inside a `///` comment: printable ASCII only, one line, bounded.
fn sanitize_note(note: &str) -> String {
    note.chars()
        .take(MAX_NOTE_LEN)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A Solidity (0.8) contract [`CONTRACT_NAME`] whose
/// `verifyProof(uint256[2] a, uint256[2][2] b, uint256[2] c, uint256[N] input)` returns
/// whether a proof verifies under `vk`. `note` (e.g. the job and shape) goes in the header
/// comment, sanitised to one line of printable ASCII.
pub fn verifier_contract(vk: &VerifyingKey<Bn254>, note: &str) -> String {
    let n = vk.gamma_abc_g1.len().saturating_sub(1);
    let mut s = String::with_capacity(6000 + 300 * n);
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };

    line("// SPDX-License-Identifier: Apache-2.0");
    line("pragma solidity >=0.8.0 <0.9.0;");
    line("");
    line("/// @title Groth16 verifier (BN254) for one cairn verifying key");
    line(&format!(
        "/// @notice Generated by cairn export-verifier. {}",
        sanitize_note(note)
    ));
    line("/// @dev Accepts a proof (A, B, C) for public inputs x iff");
    line("///      e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) == 1,");
    line("///      vk_x = IC0 + sum_i x[i] * IC(i+1), on the EIP-196/197 precompiles");
    line("///      (0x06 add, 0x07 mul, 0x08 pairing). G2 coordinates are (imaginary, real),");
    line("///      the order the precompile reads. Never reverts on a bad proof: returns false.");
    line(&format!("contract {CONTRACT_NAME} {{"));
    line("    /// @notice Number of public inputs.");
    line(&format!("    uint256 public constant N_PUBLIC = {n};"));
    line("");
    line("    // Scalar field modulus (every public input is below it) and base field modulus.");
    line(&format!(
        "    uint256 internal constant R = {};",
        Fr::MODULUS
    ));
    line(&format!(
        "    uint256 internal constant Q = {};",
        Fq::MODULUS
    ));
    line("");
    line("    // The verifying key.");
    let (alx, aly) = g1_xy(&vk.alpha_g1);
    line(&format!(
        "    uint256 internal constant ALPHA_X = {};",
        decimal(alx)
    ));
    line(&format!(
        "    uint256 internal constant ALPHA_Y = {};",
        decimal(aly)
    ));
    for (name, p) in [
        ("BETA", &vk.beta_g2),
        ("GAMMA", &vk.gamma_g2),
        ("DELTA", &vk.delta_g2),
    ] {
        let w = g2_words(p);
        for (suffix, v) in ["X_IM", "X_RE", "Y_IM", "Y_RE"].iter().zip(w) {
            line(&format!(
                "    uint256 internal constant {name}_{suffix} = {};",
                decimal(v)
            ));
        }
    }
    for (i, p) in vk.gamma_abc_g1.iter().enumerate() {
        let (x, y) = g1_xy(p);
        line(&format!(
            "    uint256 internal constant IC{i}_X = {};",
            decimal(x)
        ));
        line(&format!(
            "    uint256 internal constant IC{i}_Y = {};",
            decimal(y)
        ));
    }
    line("");
    line("    /// @notice Checks a Groth16 proof against its public inputs.");
    line("    /// @param a A = (x, y) in G1.");
    line("    /// @param b B = ((x_im, x_re), (y_im, y_re)) in G2.");
    line("    /// @param c C = (x, y) in G1.");
    if n > 0 {
        line("    /// @param input The public inputs, in the circuit's order.");
    }
    line("    /// @return True iff the proof verifies.");
    line("    function verifyProof(");
    line("        uint256[2] calldata a,");
    line("        uint256[2][2] calldata b,");
    if n > 0 {
        line("        uint256[2] calldata c,");
        line(&format!("        uint256[{n}] calldata input"));
    } else {
        line("        uint256[2] calldata c");
    }
    line("    ) external view returns (bool) {");
    if n > 0 {
        line("        for (uint256 i = 0; i < N_PUBLIC; ++i) {");
        line("            if (input[i] >= R) return false;");
        line("        }");
    }
    line("        if (a[0] >= Q || a[1] >= Q || c[0] >= Q || c[1] >= Q) return false;");
    line("        if (b[0][0] >= Q || b[0][1] >= Q || b[1][0] >= Q || b[1][1] >= Q) return false;");
    line("");
    line("        // vk_x = IC0 + sum_i input[i] * IC(i+1)");
    line("        uint256[2] memory vkX = [IC0_X, IC0_Y];");
    for i in 1..=n {
        line(&format!(
            "        if (!mulAdd(vkX, IC{i}_X, IC{i}_Y, input[{}])) return false;",
            i - 1
        ));
    }
    line("");
    line("        uint256[24] memory p;");
    line("        // e(-A, B)");
    line("        p[0] = a[0];");
    line("        p[1] = a[1] == 0 ? 0 : Q - a[1];");
    line("        p[2] = b[0][0];");
    line("        p[3] = b[0][1];");
    line("        p[4] = b[1][0];");
    line("        p[5] = b[1][1];");
    line("        // e(alpha, beta)");
    line("        p[6] = ALPHA_X;");
    line("        p[7] = ALPHA_Y;");
    let g2_block = |name: &str, at: usize| -> Vec<String> {
        ["X_IM", "X_RE", "Y_IM", "Y_RE"]
            .iter()
            .enumerate()
            .map(|(k, suffix)| format!("        p[{}] = {name}_{suffix};", at + k))
            .collect()
    };
    for l in g2_block("BETA", 8) {
        line(&l);
    }
    line("        // e(vk_x, gamma)");
    line("        p[12] = vkX[0];");
    line("        p[13] = vkX[1];");
    for l in g2_block("GAMMA", 14) {
        line(&l);
    }
    line("        // e(C, delta)");
    line("        p[18] = c[0];");
    line("        p[19] = c[1];");
    for l in g2_block("DELTA", 20) {
        line(&l);
    }
    line("");
    line("        bool ok;");
    line("        assembly {");
    line("            ok := staticcall(gas(), 0x08, p, 768, p, 0x20)");
    line("        }");
    line("        return ok && p[0] == 1;");
    line("    }");
    line("");
    line("    /// @dev acc += s * (x, y) on the precompiles; false if either call fails.");
    line("    function mulAdd(uint256[2] memory acc, uint256 x, uint256 y, uint256 s)");
    line("        private");
    line("        view");
    line("        returns (bool ok)");
    line("    {");
    line("        uint256[4] memory t;");
    line("        t[0] = x;");
    line("        t[1] = y;");
    line("        t[2] = s;");
    line("        assembly {");
    line("            ok := staticcall(gas(), 0x07, t, 0x60, t, 0x40)");
    line("            if ok {");
    line("                mstore(add(t, 0x40), mload(acc))");
    line("                mstore(add(t, 0x60), mload(add(acc, 0x20)))");
    line("                ok := staticcall(gas(), 0x06, t, 0x80, acc, 0x40)");
    line("            }");
    line("        }");
    line("    }");
    line("}");
    s
}

#[cfg(test)]
mod tests {
    use super::super::tests::toy;
    use super::*;

    fn constant(contract: &str, name: &str) -> String {
        let key = format!("uint256 internal constant {name} = ");
        let start = contract.find(&key).unwrap() + key.len();
        let end = start + contract[start..].find(';').unwrap();
        contract[start..end].to_string()
    }

    #[test]
    fn contract_carries_the_key_in_the_precompile_order() {
        let (_, vk, _, _) = toy(3, 4);
        let sol = verifier_contract(&vk, "job demo, shape 1234");
        assert!(sol.contains("contract CairnGroth16Verifier {"));
        assert!(sol.contains("uint256 public constant N_PUBLIC = 3;"));
        assert!(sol.contains("uint256[3] calldata input"));
        assert!(sol.contains("job demo, shape 1234"));
        assert_eq!(constant(&sol, "R"), Fr::MODULUS.to_string());
        assert_eq!(constant(&sol, "Q"), Fq::MODULUS.to_string());

        let (ax, ay) = vk.alpha_g1.xy().unwrap();
        assert_eq!(constant(&sol, "ALPHA_X"), ax.to_string());
        assert_eq!(constant(&sol, "ALPHA_Y"), ay.to_string());
        for (name, p) in [
            ("BETA", vk.beta_g2),
            ("GAMMA", vk.gamma_g2),
            ("DELTA", vk.delta_g2),
        ] {
            let (x, y) = p.xy().unwrap();
            assert_eq!(constant(&sol, &format!("{name}_X_IM")), x.c1.to_string());
            assert_eq!(constant(&sol, &format!("{name}_X_RE")), x.c0.to_string());
            assert_eq!(constant(&sol, &format!("{name}_Y_IM")), y.c1.to_string());
            assert_eq!(constant(&sol, &format!("{name}_Y_RE")), y.c0.to_string());
        }
        for (i, p) in vk.gamma_abc_g1.iter().enumerate() {
            let (x, y) = p.xy().unwrap();
            assert_eq!(constant(&sol, &format!("IC{i}_X")), x.to_string());
            assert_eq!(constant(&sol, &format!("IC{i}_Y")), y.to_string());
        }
        assert!(!sol.contains("IC4_X"));
        for i in 0..3 {
            assert!(sol.contains(&format!(
                "mulAdd(vkX, IC{}_X, IC{}_Y, input[{i}])",
                i + 1,
                i + 1
            )));
        }
    }

    #[test]
    fn note_cannot_leave_its_comment() {
        let (_, vk, _, _) = toy(1, 5);
        let sol = verifier_contract(&vk, "x\ncontract Evil {}\r\u{202e}");
        assert!(
            sol.contains("/// @notice Generated by cairn export-verifier. x?contract Evil {}??")
        );
        assert_eq!(sol.matches("contract ").count(), 2, "{sol}");
        let long = verifier_contract(&vk, &"n".repeat(1000));
        assert!(long.contains(&"n".repeat(MAX_NOTE_LEN)));
        assert!(!long.contains(&"n".repeat(MAX_NOTE_LEN + 1)));
    }

    #[test]
    fn no_public_inputs_means_no_input_argument() {
        let (_, mut vk, _, _) = toy(1, 6);
        vk.gamma_abc_g1.truncate(1);
        let sol = verifier_contract(&vk, "");
        assert!(sol.contains("uint256[2] calldata c\n    ) external view"));
        for absent in ["calldata input", "input[i] >= R", "mulAdd(vkX"] {
            assert!(!sol.contains(absent), "{absent}");
        }
        assert_eq!(
            function_signature(0),
            "verifyProof(uint256[2],uint256[2][2],uint256[2])"
        );
    }

    #[test]
    fn calldata_swaps_g2_coordinates_like_snarkjs() {
        let (_, _, proof, inputs) = toy(2, 7);
        let words = calldata_words(&proof, &inputs);
        assert_eq!(words.len(), 8 + 2);
        let (ax, ay) = proof.a.xy().unwrap();
        let (bx, by) = proof.b.xy().unwrap();
        let (cx, cy) = proof.c.xy().unwrap();
        let expect: Vec<[u8; 32]> = [ax, ay, bx.c1, bx.c0, by.c1, by.c0, cx, cy]
            .into_iter()
            .map(word)
            .chain(inputs.iter().map(|&x| word(x)))
            .collect();
        assert_eq!(words, expect);

        // The text is the same words, in snarkjs's brackets and quoting.
        let text = calldata(&proof, &inputs);
        let hexes: Vec<String> = text
            .split('"')
            .filter(|t| t.starts_with("0x"))
            .map(str::to_string)
            .collect();
        let from_words: Vec<String> = words
            .iter()
            .map(|w| format!("0x{}", hex::encode(w)))
            .collect();
        assert_eq!(hexes, from_words);
        let skeleton: String = text.split('"').step_by(2).collect();
        assert_eq!(skeleton, "[, ],[[, ],[, ]],[, ],[,]");
        assert_eq!(
            function_signature(2),
            "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[2])"
        );
    }
}
