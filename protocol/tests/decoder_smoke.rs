//! A bounded mutation smoke test of the decoders that read the network or a file (issue 12
//! item 10, its CI part): valid encodings of every kind of wire message and of a
//! transcript, mutated (bit flips, byte changes, truncations, insertions, length bytes
//! pushed to their extremes), must decode to a value or a typed error — never panic,
//! never hang. Seeded, so a failure reproduces.

use std::time::Instant;

use cairn_crypto::sign::{IdentityKey, Signature};
use cairn_crypto::ParticipantId as CryptoId;
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::server_opt::ServerOptimizer;
use cairn_protocol::transcript::{Entry, Record, Transcript};
use cairn_protocol::wire::{
    self, DatasetCommitment, Hello, ProofSpec, RoundSpec, SecureSpec, ToCoordinator, ToParticipant,
    Update, Welcome, MAX_FRAME_BYTES,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Mutants per seed.
const MUTANTS: usize = 20_000;

fn proof() -> ProofSpec {
    ProofSpec {
        tolerance: 1e-3,
        tree_depth: 8,
        blinding_limbs: 4,
        feature_bits: 20,
        block_rows: 1,
        sampled_steps: Some(1),
        noise: None,
    }
}

fn to_coordinator() -> Vec<ToCoordinator> {
    let key = IdentityKey::from_seed(&[3; 32]);
    vec![
        ToCoordinator::Hello(Hello {
            version: wire::PROTOCOL_VERSION,
            name: "holder".into(),
            n_rows: 40,
            n_features: 3,
            identity: key.public(),
        }),
        ToCoordinator::Dataset(DatasetCommitment::sign("job", [9; 32], 40, &key)),
        ToCoordinator::Update(Update {
            round: 3,
            n_examples: 10,
            delta: vec![0.5, -1.25, 3.0, 7.0],
            train_loss: 0.7,
        }),
        ToCoordinator::Leave {
            reason: "bye".into(),
        },
        ToCoordinator::Decline {
            round: 2,
            reason: "lr: too large".into(),
        },
        ToCoordinator::Countersign {
            signature: key.sign(b"head"),
        },
    ]
}

fn to_participant() -> Vec<ToParticipant> {
    let key = IdentityKey::from_seed(&[4; 32]);
    vec![
        ToParticipant::Welcome(Welcome {
            participant: 2,
            job_id: "j".into(),
            model: ModelSpec::mlp(4, vec![3]),
            rounds: 5,
            hyper: HyperParams::default(),
            proof: Some(proof()),
        }),
        ToParticipant::Round(RoundSpec {
            round: 1,
            global: vec![0.25; 19],
            hyper: HyperParams::default(),
            round_seed: [5; 32],
            deadline_ms: 60_000,
            secure: Some(SecureSpec {
                roster: (0..4).map(|i| (CryptoId(i), key.public())).collect(),
                k: 3,
                threshold: 2,
                graph_seed: [6; 32],
                scale_bits: 16,
                dropout: 0.2,
                corruption: 0.1,
                privacy: None,
            }),
            proof: Some(proof()),
            beacon_commitment: Some([7; 32]),
        }),
        ToParticipant::Seal {
            head: [1; 32],
            last_round: 4,
            rounds_completed: 3,
            final_model_hash: [2; 32],
        },
        ToParticipant::Finished {
            rounds: 3,
            completed: true,
            message: "done".into(),
        },
        ToParticipant::Rejected {
            reason: "full".into(),
        },
    ]
}

fn transcript() -> Transcript {
    let key = IdentityKey::from_seed(&[8; 32]);
    let mut t = Transcript::default();
    t.append(Entry::Job {
        job_id: "job".into(),
        model: ModelSpec::mlp(3, vec![]),
        hyper: HyperParams::default(),
        server: ServerOptimizer::FedAvg { lr: 1.0 },
        scale_bits: 16,
        proof: proof(),
        verifying_key: vec![1, 2, 3, 4],
        initial_model: vec![0.1, 0.2, 0.3, 0.4],
        min_participants: 2,
        dropout: 0.2,
        corruption: 0.1,
        coordinator: key.public(),
        privacy: None,
    });
    t.append(Entry::Enrolled {
        participant: 0,
        identity: key.public(),
        dataset: DatasetCommitment::sign("job", [9; 32], 40, &key),
    });
    t.append(Entry::RoundFailed {
        round: 1,
        reason: "too few".into(),
        dropped: vec![(0, "timed out".into())],
    });
    t.append(Entry::Finished {
        last_round: 1,
        rounds_completed: 0,
        final_model_hash: [3; 32],
        error: None,
        coordinator_signature: key.sign(b"seal"),
        countersignatures: vec![(key.public(), Signature(vec![0; 64]))],
    });
    t
}

/// A mutant of `seed`: one to four edits.
fn mutate(seed: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        if b.is_empty() {
            b.push(rng.gen());
            continue;
        }
        let i = rng.gen_range(0..b.len());
        match rng.gen_range(0..6) {
            0 => b[i] ^= 1 << rng.gen_range(0..8),
            1 => b[i] = rng.gen(),
            2 => b.truncate(i),
            3 => b.insert(i, rng.gen()),
            // Length and varint bytes at their extremes (bincode's u64 and u32 varint tags).
            4 => b[i] = [0xff, 0xfe, 0xfd, 0xfc, 0xfb][rng.gen_range(0..5)],
            _ => {
                let n = rng.gen_range(1..=8).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
    }
    b
}

fn smoke(name: &str, seeds: &[Vec<u8>], decode: impl Fn(&[u8]) -> bool) {
    let mut rng = ChaCha20Rng::seed_from_u64(0xcafe);
    let t0 = Instant::now();
    let (mut ok, mut refused) = (0usize, 0usize);
    for seed in seeds {
        assert!(decode(seed), "{name}: a valid seed must decode");
        for _ in 0..MUTANTS {
            if decode(&mutate(seed, &mut rng)) {
                ok += 1;
            } else {
                refused += 1;
            }
        }
    }
    eprintln!(
        "{name}: {} mutants in {:.2} s ({ok} decoded, {refused} refused with an error)",
        ok + refused,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        refused > 0,
        "{name}: no mutant was refused: the mutator does nothing"
    );
}

#[test]
fn wire_decoders_survive_mutated_frames() {
    let up: Vec<Vec<u8>> = to_coordinator()
        .iter()
        .map(|m| wire::encode(m).expect("encode"))
        .collect();
    smoke("ToCoordinator frames", &up, |f| {
        wire::decode::<ToCoordinator>(f, MAX_FRAME_BYTES).is_ok()
    });
    let down: Vec<Vec<u8>> = to_participant()
        .iter()
        .map(|m| wire::encode(m).expect("encode"))
        .collect();
    smoke("ToParticipant frames", &down, |f| {
        wire::decode::<ToParticipant>(f, MAX_FRAME_BYTES).is_ok()
    });
}

#[test]
fn transcript_decoders_survive_mutated_files_and_records() {
    let t = transcript();
    smoke("transcript files", &[t.to_bytes()], |b| {
        Transcript::from_bytes(b).is_ok()
    });
    let records: Vec<Vec<u8>> = t.records.iter().map(Record::to_bytes).collect();
    smoke("stored records", &records, |b| {
        Record::from_bytes(b).is_ok()
    });
}

/// The hand-written DER reader that takes a holder's identity key out of its TLS client
/// certificate: real certificates, mutated, give a key or a typed error.
#[cfg(feature = "transport")]
#[test]
fn the_certificate_identity_parser_survives_mutated_certificates() {
    use cairn_protocol::enrolment::identity_from_cert;
    use cairn_protocol::transport::ClientIdentity;
    let seeds: Vec<Vec<u8>> = (1..=3u8)
        .map(|i| {
            ClientIdentity::new(&IdentityKey::from_seed(&[i; 32]))
                .expect("certificate")
                .certificate()
                .to_vec()
        })
        .collect();
    smoke("client certificates", &seeds, |der| {
        identity_from_cert(der).is_ok()
    });
}

/// A holder's allow-listed key, as an operator writes it (64 hex digits).
#[test]
fn the_identity_key_text_parser_survives_mutated_text() {
    let seeds: Vec<Vec<u8>> = (1..=3u8)
        .map(|i| hex::encode(IdentityKey::from_seed(&[i; 32]).public().0).into_bytes())
        .collect();
    smoke("identity key text", &seeds, |b| {
        std::str::from_utf8(b).is_ok_and(|t| cairn_protocol::enrolment::parse_identity(t).is_ok())
    });
}
