//! Issue #12, item 6: a proving key crafted by whoever ran the setup must not make the
//! holder's proofs carry witness values. Each test runs the attack for real: the
//! attacker's key, the proof arkworks' own (unchecked) prover makes with it, the attacker
//! recovering an update coordinate from that proof, and then the holder's path
//! ([`pk_from_bytes`], [`KeyStore::load`], [`Prover::new`], [`Prover::prove`]) refusing.

use std::ops::{AddAssign, Sub};

use ark_bn254::{Bn254, Fq2, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::pairing::{Pairing, PairingOutput};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::Zero;
use ark_groth16::Groth16;
use ark_snark::SNARK;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::circuit::TrainingCircuit;
use super::proof::{
    check_proving_key, pk_from_bytes, pk_to_bytes, prepare, setup, verify, KeyStore, Proof,
    ProofError, ProvingKey,
};
use super::prover::{assignment, Prover, R1cs};
use super::tests::{fixture, Fixture};
use super::UPDATE_BITS;

/// The offset of a signed update coordinate's bits: they hold `x + 2^23`.
const OFFSET: i64 = 1 << (UPDATE_BITS - 1);

/// `k` with `target = k·base` for `lo ≤ k < lo + 2^24` (baby-step giant-step), if any.
fn dlog<G>(base: G, target: G, lo: i64) -> Option<i64>
where
    G: Copy
        + Eq
        + std::hash::Hash
        + Zero
        + AddAssign
        + Sub<Output = G>
        + std::ops::Mul<Fr, Output = G>,
{
    const M: i64 = 1 << 12;
    let mut table = std::collections::HashMap::new();
    let mut p = G::zero();
    for j in 0..M {
        table.entry(p).or_insert(j);
        p += base;
    }
    let giant = base * Fr::from(M);
    let mut t = target - base * Fr::from(lo);
    for i in 0..M {
        if let Some(j) = table.get(&t) {
            return Some(lo + i * M + j);
        }
        t = t - giant;
    }
    None
}

/// The attacker of the crafted A-query: A = x·G for the chosen coordinate x when δ = 0.
fn recover(proof: &ark_groth16::Proof<Bn254>) -> Option<i64> {
    dlog(
        G1Projective::from(G1Affine::generator()),
        proof.a.into(),
        -OFFSET,
    )
}

/// The witness variables holding the bits of update coordinate 0 (least significant
/// first), found by their values in the full assignment: the attacker knows the public
/// circuit, so it knows these indices.
fn update_bits(f: &Fixture) -> (Vec<usize>, usize) {
    let r1cs = R1cs::of(&f.shape).expect("the fixture's shape synthesises");
    let z = assignment(&f.shape, &r1cs, &f.witness).expect("the fixture's assignment");
    let x = f.witness.private.update[0];
    let bits: Vec<Fr> = (0..UPDATE_BITS)
        .map(|i| Fr::from(((x + OFFSET) >> i) & 1))
        .collect();
    let first = (r1cs.num_instance..z.len() - bits.len())
        .find(|&v| z[v..v + bits.len()] == bits[..])
        .expect("the update's bits are in the assignment");
    ((first..first + bits.len()).collect(), r1cs.num_instance)
}

/// What arkworks' own Groth16 prover makes with `pk` (no check of the key, none of the
/// proof): what the holder's prover amounted to before the checks.
fn unchecked_proof(
    f: &Fixture,
    pk: &ProvingKey,
    rng: &mut ChaCha20Rng,
) -> ark_groth16::Proof<Bn254> {
    let circuit = TrainingCircuit {
        shape: f.shape.clone(),
        public: f.witness.public.clone(),
        private: f.witness.private.clone(),
    };
    Groth16::<Bn254>::prove(pk, circuit, rng).expect("arkworks proves with any key")
}

fn honest() -> (Fixture, ProvingKey, ChaCha20Rng) {
    let f = fixture(vec![], 1, 0.01);
    let mut rng = ChaCha20Rng::seed_from_u64(612);
    let (pk, _) = setup(&f.shape, &mut rng).expect("setup");
    (f, pk, rng)
}

fn g1_times(k: i64) -> G1Affine {
    (G1Affine::generator() * Fr::from(k)).into_affine()
}

fn refused(r: Result<impl std::fmt::Debug, ProofError>, why: &str) -> String {
    match r {
        Err(ProofError::BadProvingKey(m)) => {
            assert!(m.contains(why), "refused for {m:?}, not {why:?}");
            m
        }
        other => panic!("not refused for {why:?}: {other:?}"),
    }
}

/// δ = 0 (in both groups), α = −2^23·G and the A-query zero except the bits of update
/// coordinate 0, bit i ↦ 2^i·G: A = α + Σ zᵢ·aᵢ + r·δ₁ = x·G. Made with the unchecked
/// prover, every proof gives the attacker x; the holder refuses the key at every step.
#[test]
fn a_key_with_delta_zero_leaks_an_update_coordinate_and_is_refused() {
    let (f, pk, mut rng) = honest();
    let (bits, _) = update_bits(&f);
    let mut bad = pk.clone();
    bad.delta_g1 = G1Affine::zero();
    bad.vk.delta_g2 = G2Affine::zero();
    bad.vk.alpha_g1 = g1_times(-OFFSET);
    bad.a_query.iter_mut().for_each(|a| *a = G1Affine::zero());
    for (i, &v) in bits.iter().enumerate() {
        bad.a_query[v] = g1_times(1 << i);
    }
    let x = f.witness.private.update[0];

    // The leak is real: the unchecked prover's proofs carry x, whatever r and s.
    for _ in 0..2 {
        let leaked = unchecked_proof(&f, &bad, &mut rng);
        assert_eq!(recover(&leaked), Some(x));
    }

    // The holder's path refuses the key before any proof exists.
    refused(
        pk_from_bytes(&f.shape, &pk_to_bytes(&f.shape, &bad)),
        "δ is the identity",
    );
    let dir = std::env::temp_dir().join(format!("cairn-subverted-{}", std::process::id()));
    let store = KeyStore::new(&dir);
    store.save(&f.shape, &bad, &bad.vk).expect("save");
    refused(store.load(&f.shape), "δ is the identity");
    let _ = std::fs::remove_dir_all(&dir);
    refused(Prover::new(&f.shape, bad), "δ is the identity");

    // And an honest key's proofs give the attacker nothing.
    let prover = Prover::new(&f.shape, pk).expect("honest key");
    let proof = prover.prove(&f.witness, &mut rng).expect("honest proof");
    assert_eq!(recover(&proof.0), None);
}

/// The same A-query with δ left honest: r·δ₁ hides x in A, and the key passes the
/// structural checks, but its proofs do not verify, so `prove` withholds them.
#[test]
fn a_crafted_a_query_under_an_honest_delta_leaks_nothing_through_a_and_is_withheld() {
    let (f, pk, mut rng) = honest();
    let (bits, _) = update_bits(&f);
    let mut bad = pk.clone();
    bad.vk.alpha_g1 = g1_times(-OFFSET);
    bad.a_query.iter_mut().for_each(|a| *a = G1Affine::zero());
    for (i, &v) in bits.iter().enumerate() {
        bad.a_query[v] = g1_times(1 << i);
    }
    assert_eq!(recover(&unchecked_proof(&f, &bad, &mut rng)), None);
    check_proving_key(&bad).expect("δ is honest: the structure is sound");
    let prover = Prover::new(&f.shape, bad).expect("structurally sound");
    refused(
        prover.prove(&f.witness, &mut rng),
        "the proof does not verify under the key's own verifying key",
    );
}

/// δ honest, the L-query entries of the bits of update coordinate 0 moved by 2^i·G: the
/// unchecked prover's C gains (x + 2^23)·G, which the attacker reads off the verification
/// equation, e(A, B) − e(α, β) − e(L, γ) − e(C, δ) = −(x + 2^23)·e(G, δ₂). The key passes
/// every check on its points and structure; `prove` verifies its proof and withholds it.
#[test]
fn a_crafted_l_query_leaks_through_c_and_prove_withholds_the_proof() {
    let (f, pk, mut rng) = honest();
    let (bits, inputs) = update_bits(&f);
    let mut bad = pk.clone();
    for (i, &v) in bits.iter().enumerate() {
        bad.l_query[v - inputs] = (bad.l_query[v - inputs] + g1_times(1 << i)).into_affine();
    }
    let x = f.witness.private.update[0];

    let leaked = unchecked_proof(&f, &bad, &mut rng);
    let vk = &bad.vk;
    let l = f
        .witness
        .public
        .to_inputs()
        .iter()
        .zip(&vk.gamma_abc_g1[1..])
        .fold(G1Projective::from(vk.gamma_abc_g1[0]), |acc, (xi, b)| {
            acc + *b * xi
        });
    let gap = Bn254::pairing(leaked.a, leaked.b)
        - Bn254::pairing(vk.alpha_g1, vk.beta_g2)
        - Bn254::pairing(l, vk.gamma_g2)
        - Bn254::pairing(leaked.c, vk.delta_g2);
    let base: PairingOutput<Bn254> = -Bn254::pairing(G1Affine::generator(), vk.delta_g2);
    assert_eq!(dlog(base, gap, 0), Some(x + OFFSET));

    // Points and structure are sound: the key loads and makes a prover...
    let loaded = pk_from_bytes(&f.shape, &pk_to_bytes(&f.shape, &bad)).expect("sound key");
    let prover = Prover::new(&f.shape, loaded).expect("structurally sound");
    // ...which sends nothing.
    refused(
        prover.prove(&f.witness, &mut rng),
        "the proof does not verify under the key's own verifying key",
    );
}

/// A point of the G2 twist outside its prime-order subgroup (the twist's cofactor 2p − r
/// has the small factors 10069 and 5864401).
fn off_subgroup_g2() -> G2Affine {
    (1u64..)
        .filter_map(|k| G2Affine::get_point_from_x_unchecked(Fq2::from(k), false))
        .find(|p| !p.is_in_correct_subgroup_assuming_on_curve())
        .expect("most points of the twist are off the subgroup")
}

/// The G2 B-query entry of one update bit moved off the subgroup by T: the unchecked
/// prover's B = β₂ + Σ zᵢ·b₂ᵢ + s·δ₂ leaves the subgroup exactly when that bit is 1, which
/// the attacker reads by decoding B without validation. Point validation refuses the key
/// on load; a key that skipped it (built in memory) makes no proof either.
#[test]
fn a_g2_point_off_the_subgroup_leaks_a_bit_and_is_refused() {
    let (f, pk, mut rng) = honest();
    let (bits, _) = update_bits(&f);
    let value = |i: usize| ((f.witness.private.update[0] + OFFSET) >> i) & 1;
    let t = off_subgroup_g2();
    for bit in [0, 1] {
        let i = (0..bits.len())
            .find(|&i| value(i) == bit)
            .expect("coordinate 0 has both bit values");
        let mut bad = pk.clone();
        let v = bits[i];
        bad.b_g2_query[v] = (bad.b_g2_query[v] + t).into_affine();
        let leaked = unchecked_proof(&f, &bad, &mut rng);
        let read = i64::from(!leaked.b.is_in_correct_subgroup_assuming_on_curve());
        assert_eq!(read, bit, "the attacker reads bit {i} off B");

        assert!(matches!(
            pk_from_bytes(&f.shape, &pk_to_bytes(&f.shape, &bad)),
            Err(ProofError::Malformed {
                what: "proving key",
                ..
            })
        ));
        // In memory, past the point validation: the B-query check or the proof's own
        // check refuses.
        let sent = Prover::new(&f.shape, bad).and_then(|p| p.prove(&f.witness, &mut rng));
        assert!(
            matches!(sent, Err(ProofError::BadProvingKey(_))),
            "bit {bit}: {sent:?}"
        );
    }
}

/// Each structural check, on its own, names what is wrong.
#[test]
fn each_structural_check_names_what_is_wrong() {
    let (f, pk, _) = honest();
    let g2 = G2Affine::generator();
    let double1 = |p: G1Affine| (p + p).into_affine();
    let double2 = |p: G2Affine| (p + p).into_affine();
    type Craft = Box<dyn Fn(&mut ProvingKey)>;
    let cases: Vec<(&str, Craft)> = vec![
        (
            "δ is the identity",
            Box::new(|k| k.delta_g1 = G1Affine::zero()),
        ),
        (
            "δ is the identity",
            Box::new(|k| k.vk.delta_g2 = G2Affine::zero()),
        ),
        (
            "α is the identity",
            Box::new(|k| k.vk.alpha_g1 = G1Affine::zero()),
        ),
        (
            "β is the identity",
            Box::new(|k| k.beta_g1 = G1Affine::zero()),
        ),
        (
            "γ is the identity",
            Box::new(|k| k.vk.gamma_g2 = G2Affine::zero()),
        ),
        (
            "δ differs between G1 and G2",
            Box::new(move |k| k.delta_g1 = double1(k.delta_g1)),
        ),
        (
            "δ differs between G1 and G2",
            Box::new(move |k| k.vk.beta_g2 = double2(k.vk.beta_g2)),
        ),
        (
            "B queries disagree between G1 and G2",
            Box::new(move |k| {
                let i = k.b_g2_query.len() / 2;
                k.b_g2_query[i] = double2(k.b_g2_query[i]);
            }),
        ),
        (
            "B queries disagree between G1 and G2",
            Box::new(move |k| {
                let i = k.b_g1_query.iter().position(|p| !p.is_zero()).unwrap_or(0);
                k.b_g1_query[i] = G1Affine::zero();
            }),
        ),
        (
            "B queries disagree between G1 and G2",
            Box::new(move |k| k.b_g2_query[0] = g2),
        ),
    ];
    check_proving_key(&pk).expect("the honest key passes");
    for (why, craft) in &cases {
        let mut bad = pk.clone();
        craft(&mut bad);
        refused(check_proving_key(&bad), why);
        refused(pk_from_bytes(&f.shape, &pk_to_bytes(&f.shape, &bad)), why);
    }
    // A query of the wrong length is refused before any pairing.
    let mut short = pk.clone();
    short.h_query.pop();
    assert!(matches!(
        Prover::new(&f.shape, short),
        Err(ProofError::Malformed {
            what: "proving key",
            ..
        })
    ));
    let mut short = pk;
    short.b_g2_query.pop();
    assert!(matches!(
        check_proving_key(&short),
        Err(ProofError::Malformed {
            what: "proving key",
            ..
        })
    ));
}

/// The honest key still stores, loads, proves (its proof verified on the way) and verifies.
#[test]
fn the_honest_key_loads_proves_and_verifies() {
    let f = fixture(vec![], 1, 0.01);
    let mut rng = ChaCha20Rng::seed_from_u64(613);
    let dir = std::env::temp_dir().join(format!("cairn-honest-key-{}", std::process::id()));
    let store = KeyStore::new(&dir);
    store.load_or_setup(&f.shape, &mut rng).expect("setup");
    let (pk, vk) = store.load(&f.shape).expect("load").expect("both files");
    let _ = std::fs::remove_dir_all(&dir);
    let prover = Prover::new(&f.shape, pk).expect("honest key");
    let (proof, t) = prover
        .prove_timed(&f.witness, &mut rng)
        .expect("honest proof");
    assert!(t.verify > std::time::Duration::ZERO);
    let decoded = Proof::from_bytes(&proof.to_bytes()).expect("decodes");
    assert!(verify(&prepare(&vk), &f.witness.public, &decoded).expect("verify"));
}

/// Load-time cost of the checks (run with `--ignored --nocapture`; `CAIRN_PK` names a key
/// file to time as well, e.g. one `cairn keygen proof` made).
#[test]
#[ignore = "timing"]
fn key_validation_costs() {
    use ark_serialize::{CanonicalDeserialize, Compress, Validate};
    use std::time::Instant;
    let time = |name: &str, bytes: &[u8]| {
        let clock = Instant::now();
        let pk =
            ProvingKey::deserialize_with_mode(bytes, Compress::Yes, Validate::No).expect("key");
        let plain = clock.elapsed();
        let clock = Instant::now();
        let _ = ProvingKey::deserialize_with_mode(bytes, Compress::Yes, Validate::Yes)
            .expect("valid key");
        let validated = clock.elapsed();
        let clock = Instant::now();
        check_proving_key(&pk).expect("sound key");
        let checked = clock.elapsed();
        println!(
            "{name}: {} bytes, {} variables: unvalidated {plain:?}, validated {validated:?}, \
             structure {checked:?}",
            bytes.len(),
            pk.a_query.len()
        );
    };
    for (hidden, k) in [(vec![], 1), (vec![3], 2)] {
        let f = fixture(hidden, k, 0.01);
        let (pk, _) = setup(&f.shape, &mut rand::thread_rng()).expect("setup");
        let bytes = pk_to_bytes(&f.shape, &pk);
        time(&f.shape.id(), &bytes[40..]);
        let prover = Prover::new(&f.shape, pk).expect("prover");
        let (_, t) = prover
            .prove_timed(&f.witness, &mut rand::thread_rng())
            .expect("proof");
        println!("  prove: msm {:?}, self-verification {:?}", t.msm, t.verify);
    }
    if let Ok(path) = std::env::var("CAIRN_PK") {
        let bytes = std::fs::read(&path).expect("CAIRN_PK");
        time(&path, &bytes[40..]);
    }
}
