//! The seed corpora: small valid encodings of everything each target decodes, built from
//! the real encoders (every wire message variant, a transcript with every kind of entry
//! and its records, real certificates and keys, the repository's example job files, the
//! head of the shared tables). `examples/seeds.rs` writes them to `fuzz/corpus/<target>/`;
//! `tests/corpora.rs` checks that each still decodes, so a wire format change shows up as
//! stale seeds to regenerate, not as a silent loss of coverage.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use cairn_circuits::training::proof::{self, Proof, ProvingKey, VerifyingKey};
use cairn_circuits::training::Shape;
use cairn_crypto::keys::AgreementSecret;
use cairn_crypto::secagg::{
    AdvertiseKeys, ConsistencySignature, EncryptedShare, MaskedInput, RevealedShare, ShareKeys,
    UnmaskRequest, UnmaskResponse,
};
use cairn_crypto::shamir::{self, SECRET_BYTES};
use cairn_crypto::sign::{IdentityKey, Signature};
use cairn_crypto::ParticipantId as CryptoId;
use cairn_datasets::{ColumnTransform, DataSpec, Normalizer};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::randomness::{self, Contribution};
use cairn_protocol::server_opt::ServerOptimizer;
use cairn_protocol::transcript::{Entry, Transcript};
use cairn_protocol::transport::{ClientIdentity, ServerIdentity};
use cairn_protocol::wire::{
    self, DatasetCommitment, Hello, Offer, ProofSpec, ProvenInput, RoundSpec, SecureDown,
    SecureSpec, SecureUp, StepChain, ToCoordinator, ToParticipant, Update, Welcome,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// One seed file: its name and contents.
pub type Seed = (String, Vec<u8>);

/// The circuit shape the key targets read keys for (any fixed shape: the decoders check
/// a key's header against it).
pub fn key_shape() -> Shape {
    Shape {
        model: ModelSpec::mlp(2, vec![]),
        local_steps: 1,
        batch_size: 1,
        tree_depth: 2,
        feature_bits: 20,
        block_rows: 1,
        sampled_steps: None,
        noise: None,
    }
}

/// The model the `model_safetensors` target reads models of.
pub fn model_spec() -> ModelSpec {
    ModelSpec::mlp(3, vec![2])
}

/// A job's data spec of `model_spec().n_features` columns, as a coordinator fits it: one
/// column signed-log transformed, one with a large mean and spread, the default clamp.
pub fn data_spec() -> DataSpec {
    let column = |name: &str, fill: f64, signed_log: bool, mean: f64, sd: f64| ColumnTransform {
        name: name.into(),
        fill,
        signed_log,
        mean,
        sd,
    };
    DataSpec {
        label: "FLAG".into(),
        classes: cairn_datasets::binary_classes(),
        normalizer: Normalizer {
            columns: vec![
                column("Sent tnx", 3.0, false, 12.5, 40.0),
                column("total ether received", 0.0, true, 4.2, 2.5),
                column("avg gas price", 4.1e10, false, 3.9e10, 1.7e10),
            ],
            clamp: 8.0,
        },
    }
}

/// Data specs that decode but each break one rule of `DataSpec::validate` (what a holder
/// must refuse before it prepares anything), or sit at its edge and pass: each with its
/// name and whether it is valid.
pub fn data_spec_near_misses() -> Vec<(&'static str, DataSpec, bool)> {
    let edit = |f: &dyn Fn(&mut DataSpec)| {
        let mut d = data_spec();
        f(&mut d);
        d
    };
    vec![
        (
            "sd-zero",
            edit(&|d| d.normalizer.columns[1].sd = 0.0),
            false,
        ),
        (
            "sd-subnormal",
            edit(&|d| d.normalizer.columns[0].sd = 5e-324),
            true,
        ),
        (
            "mean-huge",
            edit(&|d| d.normalizer.columns[2].mean = f64::MAX),
            true,
        ),
        (
            "fill-huge",
            edit(&|d| d.normalizer.columns[0].fill = -f64::MAX),
            true,
        ),
        (
            "fill-inf",
            edit(&|d| d.normalizer.columns[0].fill = f64::INFINITY),
            false,
        ),
        (
            "mean-nan",
            edit(&|d| d.normalizer.columns[1].mean = f64::NAN),
            false,
        ),
        ("clamp-zero", edit(&|d| d.normalizer.clamp = 0.0), false),
        ("clamp-tiny", edit(&|d| d.normalizer.clamp = 1e-45), true),
        ("clamp-max", edit(&|d| d.normalizer.clamp = f32::MAX), true),
        ("clamp-nan", edit(&|d| d.normalizer.clamp = f32::NAN), false),
        (
            "column-twice",
            edit(&|d| d.normalizer.columns[2].name = "Sent tnx".into()),
            false,
        ),
        (
            "label-is-input",
            edit(&|d| d.label = "Sent tnx".into()),
            false,
        ),
        ("label-empty", edit(&|d| d.label = " ".into()), false),
        (
            "name-control",
            edit(&|d| d.normalizer.columns[0].name = "a\u{1b}[2Jb".into()),
            false,
        ),
        (
            "name-long",
            edit(&|d| {
                d.normalizer.columns[0].name = "n".repeat(cairn_datasets::MAX_COLUMN_NAME_BYTES + 1)
            }),
            false,
        ),
        ("no-columns", edit(&|d| d.normalizer.columns.clear()), false),
        (
            "classes-three",
            edit(&|d| d.classes = vec!["benign".into(), "bot".into(), "phish".into()]),
            true,
        ),
        (
            "classes-one",
            edit(&|d| d.classes = vec!["1".into()]),
            false,
        ),
        (
            "classes-twice",
            edit(&|d| d.classes = vec!["a".into(), "b".into(), "a".into()]),
            false,
        ),
        (
            "classes-too-many",
            edit(&|d| {
                d.classes = (0..=cairn_datasets::MAX_CLASSES)
                    .map(|c| c.to_string())
                    .collect()
            }),
            false,
        ),
        (
            "class-control",
            edit(&|d| d.classes = vec!["0".into(), "\u{1b}[2J".into()]),
            false,
        ),
    ]
}

/// Every target's seeds, by target name (the names of [`crate::TARGETS`]).
pub fn all() -> Vec<(&'static str, Vec<Seed>)> {
    vec![
        ("wire_to_coordinator", frames("up", &to_coordinator())),
        ("wire_to_participant", frames("down", &to_participant())),
        (
            "transcript",
            vec![("transcript".into(), transcript().to_bytes())],
        ),
        (
            "transcript_record",
            transcript()
                .records
                .iter()
                .map(|r| (format!("record-{}", r.seq), r.to_bytes()))
                .collect(),
        ),
        ("cert_identity", certificates()),
        ("identity_text", identity_texts()),
        ("server_identity", server_identities()),
        ("job_file", job_files()),
        ("csv_table", csv_tables()),
        ("account_txs", account_txs()),
        ("verifying_key", verifying_keys()),
        ("proving_key", proving_keys()),
        ("groth16_proof", groth16_proofs()),
        ("snarkjs_json", snarkjs_files()),
        ("model_safetensors", models()),
    ]
}

fn frames<T: serde::Serialize>(prefix: &str, msgs: &[T]) -> Vec<Seed> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            (
                format!("{prefix}-{i:02}"),
                wire::encode(m).expect("a seed message encodes"),
            )
        })
        .collect()
}

fn proof_spec() -> ProofSpec {
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

fn dp_params() -> cairn_protocol::privacy::SkellamParams {
    cairn_protocol::privacy::SkellamParams {
        clip: 1.0,
        noise_multiplier: 1.1,
        granularity: 1.0 / 64.0,
        beta: 0.6,
        min_survivors: 3,
        dim: 19,
    }
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x5eed)
}

fn advertise(i: u32) -> AdvertiseKeys {
    let key = IdentityKey::from_seed(&[i as u8 + 1; 32]);
    AdvertiseKeys {
        sender: CryptoId(i),
        c_pk: AgreementSecret::from_bytes([i as u8 + 10; 32]).public(),
        s_pk: AgreementSecret::from_bytes([i as u8 + 20; 32]).public(),
        signature: key.sign(b"advertise"),
    }
}

fn encrypted_share(from: u32, to: u32) -> EncryptedShare {
    EncryptedShare {
        sender: CryptoId(from),
        receiver: CryptoId(to),
        ciphertext: (0..100u8).collect(),
    }
}

fn revealed(owner: u32) -> Vec<RevealedShare> {
    shamir::split(&[7u8; SECRET_BYTES], 2, &[1, 2, 3], &mut rng())
        .expect("shares")
        .into_iter()
        .map(|share| RevealedShare {
            owner: CryptoId(owner),
            share,
        })
        .collect()
}

fn consistency(i: u32) -> ConsistencySignature {
    ConsistencySignature {
        sender: CryptoId(i),
        signature: IdentityKey::from_seed(&[i as u8 + 1; 32]).sign(b"survivors"),
    }
}

/// Contributions to the job's randomness of holders 1..=n, sorted by identity key.
fn contributions(n: u8) -> Vec<Contribution> {
    let mut c: Vec<Contribution> = (1..=n)
        .map(|i| {
            let key = IdentityKey::from_seed(&[i; 32]);
            let reveal = randomness::contribution(&key, "job");
            Contribution {
                identity: key.public(),
                commitment: randomness::commit(&reveal),
                reveal,
            }
        })
        .collect();
    c.sort_by_key(|c| c.identity.0);
    c
}

fn a_proof() -> Proof {
    Proof(ark_groth16::Proof {
        a: (G1Affine::generator() * Fr::from(3u64)).into_affine(),
        b: (G2Affine::generator() * Fr::from(5u64)).into_affine(),
        c: (G1Affine::generator() * Fr::from(7u64)).into_affine(),
    })
}

fn proven_input() -> ProvenInput {
    ProvenInput {
        commitment: vec![9; 32],
        proof: a_proof().to_bytes(),
        steps: Some(StepChain {
            digests: vec![[1; 32], [2; 32]],
            beacon: [3; 32],
        }),
    }
}

/// One of every message a participant sends (every `SecureUp` phase included).
pub fn to_coordinator() -> Vec<ToCoordinator> {
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
        // A proven DP job's: with the noise-seed commitment.
        ToCoordinator::Dataset(DatasetCommitment::sign_with_noise(
            "job",
            [9; 32],
            40,
            Some([4; 32]),
            &key,
        )),
        ToCoordinator::Update(Update {
            round: 3,
            n_examples: 10,
            delta: vec![0.5, -1.25, 3.0, 7.0],
            train_loss: 0.7,
        }),
        ToCoordinator::Secure(SecureUp::Keys {
            round: 1,
            msg: advertise(0),
        }),
        ToCoordinator::Secure(SecureUp::Shares {
            round: 1,
            msg: ShareKeys {
                sender: CryptoId(0),
                shares: vec![encrypted_share(0, 1), encrypted_share(0, 2)],
            },
        }),
        ToCoordinator::Secure(SecureUp::Chain {
            round: 1,
            digests: vec![[4; 32], [5; 32]],
        }),
        ToCoordinator::Secure(SecureUp::Masked {
            round: 1,
            msg: MaskedInput {
                sender: CryptoId(0),
                y: vec![1, 2, 3, u32::MAX],
            },
            proof: Some(proven_input()),
        }),
        ToCoordinator::Secure(SecureUp::Consistency {
            round: 1,
            msg: consistency(0),
        }),
        ToCoordinator::Secure(SecureUp::Unmask {
            round: 1,
            msg: UnmaskResponse {
                sender: CryptoId(0),
                self_mask_shares: revealed(1),
                mask_key_shares: revealed(2),
            },
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
        ToCoordinator::Commit {
            commitment: contributions(1)[0].commitment,
        },
        ToCoordinator::Reveal {
            contribution: contributions(1)[0].reveal,
        },
        ToCoordinator::CannotJoin {
            name: "wallet".into(),
            reason: "the table lacks 1 of the job's 3 input columns (or they are not numeric in it): avg gas price".into(),
        },
        // Near misses the coordinator must make printable and cut before it logs them.
        ToCoordinator::CannotJoin {
            name: "\u{1b}[31mexchange\r\nINFO forged".into(),
            reason: "\u{7}".repeat(3),
        },
        ToCoordinator::CannotJoin {
            name: "é".repeat(40),
            reason: "x".repeat(wire::MAX_REASON_BYTES + 100),
        },
    ]
}

/// One of every message the coordinator sends (every `SecureDown` phase included).
pub fn to_participant() -> Vec<ToParticipant> {
    let key = IdentityKey::from_seed(&[4; 32]);
    let round = RoundSpec {
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
        proof: Some(proof_spec()),
        beacon_commitment: Some([7; 32]),
    };
    vec![
        ToParticipant::Welcome(Welcome {
            participant: 2,
            job_id: "j".into(),
            model: ModelSpec::mlp(4, vec![3]),
            rounds: 5,
            hyper: HyperParams::default(),
            proof: Some(proof_spec()),
        }),
        ToParticipant::Round(round.clone()),
        // A DP round: the mechanism's parameters in the secure spec.
        ToParticipant::Round(RoundSpec {
            round: 2,
            secure: round.secure.clone().map(|s| SecureSpec {
                privacy: Some(dp_params()),
                ..s
            }),
            proof: None,
            beacon_commitment: None,
            ..round.clone()
        }),
        // A proven DP round: the proof settings carry the same mechanism.
        ToParticipant::Round(RoundSpec {
            round: 3,
            secure: round.secure.clone().map(|s| SecureSpec {
                privacy: Some(dp_params()),
                ..s
            }),
            proof: Some(ProofSpec {
                noise: Some(dp_params()),
                sampled_steps: None,
                ..proof_spec()
            }),
            beacon_commitment: None,
            ..round
        }),
        ToParticipant::Secure(SecureDown::Roster {
            round: 1,
            keys: vec![advertise(0), advertise(1)],
        }),
        ToParticipant::Secure(SecureDown::Inbox {
            round: 1,
            shares: vec![encrypted_share(1, 0), encrypted_share(2, 0)],
        }),
        ToParticipant::Secure(SecureDown::Challenge {
            round: 1,
            beacon: [8; 32],
        }),
        ToParticipant::Secure(SecureDown::Survivors {
            round: 1,
            survivors: vec![CryptoId(0), CryptoId(2)],
        }),
        ToParticipant::Secure(SecureDown::Unmask {
            round: 1,
            request: UnmaskRequest {
                survivors: vec![CryptoId(0), CryptoId(2)],
                signatures: vec![consistency(0), consistency(2)],
                dropped: vec![CryptoId(1)],
            },
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
        ToParticipant::Reveal {
            roster: contributions(3)
                .iter()
                .map(|c| (c.identity, c.commitment))
                .collect(),
        },
        ToParticipant::Randomness {
            contributions: contributions(3),
        },
        ToParticipant::Offer(Offer {
            job_id: "eth-fraud-1".into(),
            data: Some(data_spec()),
        }),
        ToParticipant::Offer(Offer {
            job_id: "j".into(),
            data: None,
        }),
    ]
    .into_iter()
    .chain(data_spec_near_misses().into_iter().map(|(_, d, _)| {
        ToParticipant::Offer(Offer {
            job_id: "j".into(),
            data: Some(d),
        })
    }))
    .collect()
}

/// A transcript with one record of every kind of entry.
pub fn transcript() -> Transcript {
    let key = IdentityKey::from_seed(&[8; 32]);
    let mut t = Transcript::default();
    t.append(Entry::Job {
        job_id: "job".into(),
        model: ModelSpec::mlp(3, vec![]),
        hyper: HyperParams::default(),
        server: ServerOptimizer::FedAvg { lr: 1.0 },
        scale_bits: 16,
        proof: proof_spec(),
        verifying_key: proof::vk_to_bytes(&key_shape(), &a_verifying_key(2)),
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
    t.append(Entry::Randomness {
        contributions: contributions(2),
    });
    t.append(Entry::Round {
        round: 1,
        round_seed: [1; 32],
        global_hash: [2; 32],
        participants: vec![0, 1],
        inputs: vec![(0, proven_input())],
        dropped: vec![(1, "timed out".into())],
        threshold: 1,
        survivor_signatures: vec![(0, key.sign(b"survivors"))],
        update_sum: vec![1, -2, 3, -4],
        blinding_limb_sums: vec![5, 6, 7, 8],
        new_model_hash: [3; 32],
        beacon: Some([4; 32]),
    });
    t.append(Entry::RoundFailed {
        round: 2,
        reason: "too few".into(),
        dropped: vec![(0, "timed out".into())],
    });
    t.append(Entry::Resumed {
        next_round: 4,
        abandoned: Some(3),
    });
    t.append(Entry::Finished {
        last_round: 4,
        rounds_completed: 1,
        final_model_hash: [3; 32],
        error: None,
        coordinator_signature: key.sign(b"seal"),
        countersignatures: vec![(key.public(), Signature(vec![0; 64]))],
    });
    t
}

fn certificates() -> Vec<Seed> {
    (1..=3u8)
        .map(|i| {
            let cert = ClientIdentity::new(&IdentityKey::from_seed(&[i; 32]))
                .expect("a client certificate")
                .certificate()
                .to_vec();
            (format!("client-{i}.der"), cert)
        })
        .collect()
}

fn identity_texts() -> Vec<Seed> {
    let keys: Vec<String> = (1..=3u8)
        .map(|i| hex::encode(IdentityKey::from_seed(&[i; 32]).public().0))
        .collect();
    vec![
        ("key-1.txt".into(), keys[0].clone().into_bytes()),
        ("key-2.txt".into(), format!("  {}\n", keys[1]).into_bytes()),
        ("key-3.txt".into(), keys[2].to_uppercase().into_bytes()),
    ]
}

fn server_identities() -> Vec<Seed> {
    let id = ServerIdentity::generate().expect("a server identity");
    vec![("server-identity".into(), id.to_text().as_bytes().to_vec())]
}

/// The repository's root (the fuzz crate's parent).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

fn job_files() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = ["job.toml", "long-job.toml"]
        .iter()
        .filter_map(|f| {
            let text = std::fs::read(repo_root().join("examples").join(f)).ok()?;
            Some((format!("example-{f}"), text))
        })
        .collect();
    let allowed = hex::encode(IdentityKey::from_seed(&[1; 32]).public().0);
    seeds.push(("minimal.toml".into(), b"name = \"x\"\n".to_vec()));
    seeds.push((
        "plain-proofs-enrolment.toml".into(),
        format!(
            "name = \"p\"\nrounds = 3\n[data]\nlabel = \"y\"\nfeatures = [\"a\", \"b\"]\n\
             [model]\nhidden = []\n[participants]\nper_round = 3\n[train]\nsteps = 2\n\
             batch = 4\n[server]\noptimizer = \"fedavg\"\nlr = 1.0\n[aggregation]\n\
             mode = \"plain\"\n[proofs]\nenabled = false\nsteps = \"all\"\n[enrolment]\n\
             allowed = [\"{allowed}\"]\n[deadlines]\nround_timeout_secs = 1.5\n"
        )
        .into_bytes(),
    ));
    seeds
}

/// The first `n` lines of `path` (gzip when its name ends in `.gz`), if it can be read.
fn head(path: &Path, n: usize) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for line in BufReader::new(input).split(b'\n').take(n) {
        out.extend(line.ok()?);
        out.push(b'\n');
    }
    Some(out)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn csv_tables() -> Vec<Seed> {
    let small = b"FLAG,a,b,c\n0,1,2.5,x\n1,3,4e3,y\n0,5,,x\n1,7,-8,z\n0,1,2.5,x\n".to_vec();
    let mut seeds: Vec<Seed> = vec![
        ("small.csv".into(), small.clone()),
        (
            "quoted-bom.csv".into(),
            "\u{feff} FLAG ,\"a,1\",a,a\ntrue,1,2,3\nfalse,\"4\",5,6\n1.0,7,8,9\n"
                .as_bytes()
                .to_vec(),
        ),
        ("small.csv.gz".into(), gzip(&small)),
    ];
    // The real table's header and rows of both classes (its first rows are all FLAG = 0:
    // the file is sorted by label, and a one-class table is refused).
    if let (Some(h), Ok(text)) = (
        head(&cairn_datasets::default_fraud_csv(), 4),
        std::fs::read_to_string(cairn_datasets::default_fraud_csv()),
    ) {
        let mut seed = h;
        let last: Vec<&str> = text.lines().rev().take(2).collect();
        for line in last.iter().rev() {
            seed.extend_from_slice(line.as_bytes());
            seed.push(b'\n');
        }
        seeds.push(("fraud-head.csv".into(), seed));
    }
    seeds
}

fn account_txs() -> Vec<Seed> {
    let labels = "address,FLAG\n0xAa,1\n0xbb,0\n";
    let txs = "blockNumber,timeStamp,hash,nonce,transactionIndex,from,to,value,gas,gasPrice,\
               isError,txreceipt_status,contractAddress,cumulativeGasUsed,gasUsed,methodId,\
               functionName,eth value,txn type,AccountId\n\
               1,1594562749,0x1,0,0,0xcc,0xaa,10000000000000000,21000,40000000000,0,1,,1,21000,0x,,0.01,received,0xaa\n\
               2,1594563733,0x2,1,0,0xaa,0xbb,20000000000000000000,21000,39000000000,0,1,,2,21000,0x,,20,sent,0xAA\n\
               3,1594563793,0x3,2,0,0xbb,0xcc,5,150000,47850000000,1,0,,3,21000,0x,,0,sent,0xbb\n\
               ,,,,,,,,,,,,,,,,,,,0xdd\n";
    let mut seeds: Vec<Seed> = vec![("small".into(), format!("{labels}\0{txs}").into_bytes())];
    let (l, t) = (
        head(&cairn_datasets::default_account_labels(), 4),
        head(&cairn_datasets::default_account_txs(), 6),
    );
    if let (Some(mut l), Some(t)) = (l, t) {
        l.push(0);
        l.extend(t);
        seeds.push(("shared-head".into(), l));
    }
    seeds
}

fn g1(k: u64) -> G1Affine {
    (G1Affine::generator() * Fr::from(k)).into_affine()
}

fn g2(k: u64) -> G2Affine {
    (G2Affine::generator() * Fr::from(k)).into_affine()
}

fn a_verifying_key(inputs: u64) -> VerifyingKey {
    VerifyingKey {
        alpha_g1: g1(2),
        beta_g2: g2(3),
        gamma_g2: g2(5),
        delta_g2: g2(7),
        gamma_abc_g1: (0..inputs).map(|i| g1(11 + i)).collect(),
    }
}

fn verifying_keys() -> Vec<Seed> {
    let shape = key_shape();
    [1, 3]
        .iter()
        .map(|&n| {
            (
                format!("vk-{n}"),
                proof::vk_to_bytes(&shape, &a_verifying_key(n)),
            )
        })
        .collect()
}

/// A proving key that passes `check_proving_key`: δ and every B-query point the same
/// scalar in both groups, β shared, the query lengths consistent (n = 4, two inputs).
fn a_proving_key() -> ProvingKey {
    let vk = a_verifying_key(2);
    let xs = [13u64, 17, 19, 23];
    ProvingKey {
        beta_g1: g1(3),
        delta_g1: g1(7),
        a_query: xs.iter().map(|&x| g1(x + 1)).collect(),
        b_g1_query: xs.iter().map(|&x| g1(x)).collect(),
        b_g2_query: xs.iter().map(|&x| g2(x)).collect(),
        h_query: vec![g1(29), g1(31)],
        l_query: vec![g1(37), g1(41)],
        vk,
    }
}

fn proving_keys() -> Vec<Seed> {
    vec![(
        "pk".into(),
        proof::pk_to_bytes(&key_shape(), &a_proving_key()),
    )]
}

fn groth16_proofs() -> Vec<Seed> {
    vec![("proof".into(), a_proof().to_bytes())]
}

fn snarkjs_files() -> Vec<Seed> {
    use cairn_circuits::export::snarkjs;
    let json = |v: serde_json::Result<Vec<u8>>| v.expect("JSON into memory");
    let proof: &ark_groth16::Proof<Bn254> = &a_proof().0;
    vec![
        (
            "verification_key.json".into(),
            json(serde_json::to_vec_pretty(&snarkjs::verification_key(
                &a_verifying_key(3),
            ))),
        ),
        (
            "proof.json".into(),
            json(serde_json::to_vec_pretty(&snarkjs::proof(proof))),
        ),
        (
            "public.json".into(),
            json(serde_json::to_vec_pretty(&snarkjs::public_inputs(&[
                Fr::from(1u64),
                -Fr::from(2u64),
            ]))),
        ),
    ]
}

/// A safetensors file's bytes with its `__metadata__` entry `key` set to `value` (removed
/// when `None`): the 8-byte little-endian header length, the JSON header, the tensors.
fn with_metadata(file: &[u8], key: &str, value: Option<&str>) -> Vec<u8> {
    let len = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&file[8..8 + len]).expect("a safetensors header");
    let meta = header
        .get_mut("__metadata__")
        .and_then(serde_json::Value::as_object_mut)
        .expect("metadata");
    match value {
        Some(v) => meta.insert(key.into(), v.into()),
        None => meta.remove(key),
    };
    let mut text = serde_json::to_vec(&header).expect("JSON into memory");
    // safetensors keeps the tensors 8-byte aligned: pad the header with spaces.
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&file[8 + len..]);
    out
}

fn models() -> Vec<Seed> {
    use cairn_coordinator::export::to_safetensors;
    let spec = model_spec();
    let params: Vec<f32> = (0..spec.param_count()).map(|i| i as f32 * 0.25).collect();
    let other = ModelSpec::mlp(2, vec![]);
    let with_data = to_safetensors(&spec, Some(&data_spec()), &params).expect("a model");
    let json = |d: &DataSpec| serde_json::to_string(d).expect("JSON");
    // Three classes: a softmax output of three logits.
    let three = spec.clone().with_classes(3);
    let three_data = DataSpec {
        classes: vec!["benign".into(), "bot".into(), "phish".into()],
        ..data_spec()
    };
    let three_params: Vec<f32> = (0..three.param_count()).map(|i| i as f32 * 0.1).collect();
    let softmax = to_safetensors(&three, Some(&three_data), &three_params).expect("a model");
    let mut seeds: Vec<Seed> = vec![
        (
            "model.safetensors".into(),
            to_safetensors(&spec, None, &params).expect("a model"),
        ),
        (
            "other-shape.safetensors".into(),
            to_safetensors(&other, None, &[1.0, 2.0, 3.0]).expect("a model"),
        ),
        ("with-data.safetensors".into(), with_data.clone()),
        // Near misses `read_model` must refuse, each naming what is wrong.
        (
            "data-two-columns.safetensors".into(),
            with_metadata(
                &with_data,
                "data",
                Some(&{
                    let mut d = data_spec();
                    d.normalizer.columns.pop();
                    json(&d)
                }),
            ),
        ),
        (
            "data-not-json.safetensors".into(),
            with_metadata(&with_data, "data", Some("{\"label\": \"FLAG\", ")),
        ),
        (
            "format-other.safetensors".into(),
            with_metadata(&with_data, "format", Some("onnx")),
        ),
        (
            "no-hidden.safetensors".into(),
            with_metadata(&with_data, "hidden", None),
        ),
        (
            "hidden-zero.safetensors".into(),
            with_metadata(&with_data, "hidden", Some("[0]")),
        ),
        (
            "n-features-text.safetensors".into(),
            with_metadata(&with_data, "n_features", Some("three")),
        ),
        ("softmax.safetensors".into(), softmax.clone()),
        (
            "softmax-one-output.safetensors".into(),
            with_metadata(&softmax, "outputs", Some("1")),
        ),
        (
            "softmax-no-outputs.safetensors".into(),
            with_metadata(&softmax, "outputs", None),
        ),
        (
            "output-other.safetensors".into(),
            with_metadata(&softmax, "output", Some("tanh")),
        ),
        (
            "softmax-binary-data.safetensors".into(),
            with_metadata(&softmax, "data", Some(&json(&data_spec()))),
        ),
    ];
    // JSON has no NaN or infinity: the near misses it can write.
    for (name, d, _) in data_spec_near_misses() {
        if let Ok(text) = serde_json::to_string(&d) {
            seeds.push((
                format!("data-{name}.safetensors"),
                with_metadata(&with_data, "data", Some(&text)),
            ));
        }
    }
    seeds
}
