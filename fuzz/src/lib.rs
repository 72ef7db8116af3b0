//! Fuzz targets for every cairn decoder that reads the network or a file (issue #12,
//! item 10).
//!
//! Each target is a `fn(&[u8])` that feeds the bytes to one decoder and, where it is
//! cheap, checks a property of what decoded (a decoded wire message re-encodes, and the
//! re-encoding decodes to the same message). A target must return on every input: a
//! panic, an abort or a hang is a bug in the decoder (or in the property), never an
//! accepted outcome. [`TARGETS`] lists them by name.
//!
//! They run three ways:
//!
//! - coverage guided, under AFL++ (afl.rs on the stable toolchain): the `afl` binary,
//!   built with `cargo afl build --features afl`, runs the target named by its first
//!   argument (`fuzz/README.md`);
//! - in CI, `tests/corpora.rs` replays every committed corpus file and regression input
//!   through its target, with a bounded number of deterministic mutants of each;
//! - `examples/seeds.rs` writes the seed corpora that [`seeds::all`] builds from real
//!   encodings.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_circuits::training::proof::{self, Proof};
use cairn_coordinator::job_file::JobFile;
use cairn_datasets::txfeatures::{extract_from_reader, read_labels};
use cairn_datasets::{prepare_for_job, DataSpec, Dataset, ExtractOptions, LoadOptions, LoadReport};
use cairn_protocol::enrolment::{identity_from_cert, parse_identity};
use cairn_protocol::transcript::{Record, Transcript};
use cairn_protocol::transport::ServerIdentity;
use cairn_protocol::wire::{
    self, SecureDown, SecureUp, ToCoordinator, ToParticipant, MAX_FRAME_BYTES, MAX_NAME_BYTES,
    MAX_REASON_BYTES,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod seeds;

/// A fuzz target: feeds its input to one decoder; panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by name (the name of its corpus folder `fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_to_coordinator", wire_to_coordinator),
    ("wire_to_participant", wire_to_participant),
    ("transcript", transcript),
    ("transcript_record", transcript_record),
    ("cert_identity", cert_identity),
    ("identity_text", identity_text),
    ("server_identity", server_identity),
    ("job_file", job_file),
    ("csv_table", csv_table),
    ("account_txs", account_txs),
    ("verifying_key", verifying_key),
    ("proving_key", proving_key),
    ("groth16_proof", groth16_proof),
    ("snarkjs_json", snarkjs_json),
    ("model_safetensors", model_safetensors),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Decodes a frame as `T`; if it decodes, the message must re-encode, the re-encoding must
/// decode, and encoding that again must give the same bytes (the canonical form is a fixed
/// point, so what a peer signed or hashed after decoding is what it would send).
fn wire_roundtrip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let msg: T = wire::decode(data, MAX_FRAME_BYTES).ok()?;
    let frame = wire::encode(&msg).expect("a decoded message re-encodes");
    let again: T = wire::decode(&frame, MAX_FRAME_BYTES).expect("a re-encoded message decodes");
    let frame2 = wire::encode(&again).expect("a re-decoded message re-encodes");
    assert!(
        frame == frame2,
        "re-encoding a decoded message is not a fixed point"
    );
    Some(msg)
}

/// A frame from a participant ([`ToCoordinator`], every variant), as the coordinator reads
/// it, then the size and text checks it applies to what decoded (a `CannotJoin`'s name and
/// reason reach its logs printable and within their limits).
pub fn wire_to_coordinator(data: &[u8]) {
    let Some(msg) = wire_roundtrip::<ToCoordinator>(data) else {
        return;
    };
    match &msg {
        ToCoordinator::Hello(h) => {
            let _ = wire::printable(&h.name, MAX_NAME_BYTES);
            let _ = h.identity.validate();
        }
        ToCoordinator::Leave { reason } | ToCoordinator::Decline { reason, .. } => {
            let _ = wire::printable(reason, MAX_REASON_BYTES);
        }
        ToCoordinator::CannotJoin { name, reason } => {
            // What the coordinator logs, reports and shows on the holder board.
            for (text, limit) in [(name, MAX_NAME_BYTES), (reason, MAX_REASON_BYTES)] {
                let shown = wire::printable(text, limit);
                assert!(
                    shown.len() <= limit && !shown.chars().any(char::is_control),
                    "a holder's name or reason reaches the logs unprintable or too long"
                );
            }
        }
        ToCoordinator::Secure(SecureUp::Masked {
            proof: Some(input), ..
        }) if input.check_sizes().is_ok() => {
            let _ = Proof::from_bytes(&input.proof);
        }
        _ => {}
    }
}

/// A frame from the coordinator ([`ToParticipant`], every variant), as a participant reads
/// it, then the checks it applies to the job's offer (a data spec that passes
/// `DataSpec::validate` applies to a table with its columns: `data_spec_applies`), to a
/// round's proof settings and to the job's randomness (the roster of commitments, the
/// revealed contributions).
pub fn wire_to_participant(data: &[u8]) {
    let Some(msg) = wire_roundtrip::<ToParticipant>(data) else {
        return;
    };
    match &msg {
        ToParticipant::Offer(offer) => {
            // A holder checks the job's spec, then prepares its own table with it.
            if let Some(spec) = &offer.data {
                if spec.validate().is_ok() {
                    data_spec_applies(spec);
                }
            }
        }
        ToParticipant::Welcome(w) => {
            let _ = w.model.validate();
            if let Some(p) = &w.proof {
                let _ = p.refuse_rows(w.model.n_features as u64, w.hyper.batch_size);
            }
        }
        ToParticipant::Round(r) => {
            if let Some(p) = &r.proof {
                let _ = p.refuse_rows(r.global.len() as u64, r.hyper.batch_size);
            }
        }
        ToParticipant::Secure(SecureDown::Inbox { shares, .. }) => {
            let _ = shares.len();
        }
        ToParticipant::Finished { message, .. } => {
            let _ = wire::printable(message, MAX_REASON_BYTES);
        }
        ToParticipant::Rejected { reason } => {
            let _ = wire::printable(reason, MAX_REASON_BYTES);
        }
        ToParticipant::Reveal { roster } => {
            let _ = cairn_protocol::randomness::check_roster(roster);
        }
        ToParticipant::Randomness { contributions }
            if cairn_protocol::randomness::check(contributions).is_ok() =>
        {
            let _ = cairn_protocol::randomness::beacon("job", contributions);
        }
        _ => {}
    }
}

/// Cells of the small tables a spec is applied to: zero, ±1, a missing cell, f32's extremes,
/// the smallest normal and a subnormal value.
const SPEC_CELLS: [f32; 8] = [
    0.0,
    1.0,
    -1.0,
    f32::NAN,
    f32::MAX,
    -f32::MAX,
    f32::MIN_POSITIVE,
    1e-45,
];

/// What a holder (and `cairn predict`) relies on of a data spec that passed
/// [`DataSpec::validate`]: it applies ([`DataSpec::apply`]) to a small table with its
/// columns — in reverse order, with one column more, cells from [`SPEC_CELLS`] and each
/// column's own mean — and so does the holder's whole preparation ([`prepare_for_job`]);
/// every value either gives is finite and within `±clamp`.
fn data_spec_applies(spec: &DataSpec) {
    let clamp = spec.normalizer.clamp;
    let ok = |x: &f32| x.is_finite() && x.abs() <= clamp;
    let columns = spec.columns();
    let mut names: Vec<String> = columns.iter().rev().cloned().collect();
    let mut extra = String::from("extra");
    while names.contains(&extra) {
        extra.push('_');
    }
    names.push(extra);
    let by_name = |name: &str| spec.normalizer.columns.iter().find(|c| c.name == name);
    let rows = SPEC_CELLS.len() + 1;
    let mut features = Vec::with_capacity(rows * names.len());
    for r in 0..rows {
        for (j, name) in names.iter().enumerate() {
            let cell = match by_name(name) {
                // The last row holds each column's mean, where f32 can hold it.
                Some(c) if r == SPEC_CELLS.len() => Some(c.mean as f32).filter(|m| m.is_finite()),
                _ => None,
            };
            features.push(cell.unwrap_or(SPEC_CELLS[(r + j) % SPEC_CELLS.len()]));
        }
    }
    let labels = (0..rows).map(|r| (r % 2) as f32).collect();
    let table = Dataset::new(features, labels, names).expect("a table of 0/1 labels");
    let (applied, _) = spec
        .apply(&table)
        .expect("a valid spec applies to a table with its columns");
    assert!(
        applied.feature_names == columns && applied.n_rows() == rows,
        "a spec applied gives other columns or rows"
    );
    assert!(
        applied.features.iter().all(ok),
        "a valid spec gives a value that is not finite or past its clamp"
    );
    if let Ok(p) = prepare_for_job(table, LoadReport::default(), spec, &LoadOptions::default()) {
        assert!(
            p.train.features.iter().all(ok) && p.test.features.iter().all(ok),
            "a holder's table prepared for a valid spec holds a value that is not finite or past its clamp"
        );
    }
}

/// A transcript file (`cairn audit FILE`, `cairn export-verifier --transcript`): decodes,
/// checks its chain, and must re-encode to a fixed point.
pub fn transcript(data: &[u8]) {
    let Ok(t) = Transcript::from_bytes(data) else {
        return;
    };
    let _ = t.verify_chain();
    let bytes = t.to_bytes();
    let again = Transcript::from_bytes(&bytes).expect("a re-encoded transcript decodes");
    assert!(
        again.to_bytes() == bytes,
        "re-encoding a decoded transcript is not a fixed point"
    );
}

/// One transcript record as the coordinator's store keeps it.
pub fn transcript_record(data: &[u8]) {
    let Ok(r) = Record::from_bytes(data) else {
        return;
    };
    let bytes = r.to_bytes();
    let again = Record::from_bytes(&bytes).expect("a re-encoded record decodes");
    assert!(
        again.to_bytes() == bytes,
        "re-encoding a decoded record is not a fixed point"
    );
}

/// A participant's TLS client certificate (DER), read by the coordinator's hand-written
/// DER reader: a key it returns is one the certificate carries.
pub fn cert_identity(data: &[u8]) {
    if let Ok(key) = identity_from_cert(data) {
        assert!(
            data.windows(32).any(|w| w == key.0),
            "the identity key is not in the certificate"
        );
    }
}

/// An allow-listed identity key as an operator writes it (a job file's
/// `enrolment.allowed`, 64 hex digits): a key that parses prints back to itself.
pub fn identity_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = parse_identity(text) {
        let printed = hex::encode(key.0);
        assert!(
            printed.eq_ignore_ascii_case(text.trim()),
            "a parsed key prints as another"
        );
        assert!(
            parse_identity(&printed) == Ok(key),
            "a printed key parses as another"
        );
    }
}

/// The coordinator's saved TLS identity (`server-identity` in its output directory: a
/// `cert <hex DER>` and a `key <hex PKCS#8>` line): what reads back writes back the same.
pub fn server_identity(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(id) = ServerIdentity::from_text(text) else {
        return;
    };
    let again = ServerIdentity::from_text(&id.to_text()).expect("a written identity reads back");
    assert!(
        again.fingerprint == id.fingerprint,
        "a saved identity reads back with another fingerprint"
    );
}

/// A job file (`cairn job submit FILE`, `cairn coordinator --job FILE`, the admin
/// interface's submissions): parsed and validated, then resolved as the coordinator does
/// (enrolment, load options, the job's configuration); a file that validates writes back
/// as TOML that reads back as the same file.
pub fn job_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = JobFile::from_toml(text) else {
        return;
    };
    let toml = file.to_toml().expect("a valid job file writes as TOML");
    let again = JobFile::from_toml(&toml).expect("a written job file reads back");
    assert!(again == file, "a job file reads back as another");
    let _ = file.enrolment.enrolment();
    let _ = file.load_options().validate();
    let columns: Vec<String> = file
        .data
        .features
        .clone()
        .unwrap_or_else(|| vec!["a".into(), "b".into(), "c".into()]);
    let _ = file.check_schema(&columns);
    // The table's width as the coordinator would find it (bounded: the model's size is
    // checked against it, not allocated).
    let _ = file.to_config("job-1", columns.len(), 2);
}

/// Distinct temporary file names within one process (tests run targets on many threads).
static TEMP_FILES: AtomicU64 = AtomicU64::new(0);

/// A temporary file holding `data`, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(data: &[u8], suffix: &str) -> Option<Self> {
        let n = TEMP_FILES.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("cairn-fuzz-{}-{n}{suffix}", std::process::id()));
        let mut f = std::fs::File::create(&path).ok()?;
        f.write_all(data).ok()?;
        Some(Self(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The CSV loader (`cairn_datasets::load_csv` with the default options: what a coordinator
/// and each participant run on their table): the bytes as a file, gzip-compressed when they
/// start with gzip's magic (the loader decompresses `.gz` files). The prepared table keeps
/// the loaders' promise: finite values within the clamp.
pub fn csv_table(data: &[u8]) {
    let suffix = if data.starts_with(&[0x1f, 0x8b]) {
        ".csv.gz"
    } else {
        ".csv"
    };
    let Some(file) = TempFile::new(data, suffix) else {
        return;
    };
    let opts = LoadOptions::default();
    if let Ok(p) = cairn_datasets::load_csv(&file.0, &opts) {
        check_prepared(&p, &opts);
    }
    let _ = cairn_datasets::load_raw_csv(&file.0, &opts);
}

/// What the loaders promise of a prepared table: every value finite and within `±clamp`
/// (the fixed-point encoders and the circuits rely on it).
fn check_prepared(p: &cairn_datasets::Prepared, opts: &LoadOptions) {
    let ok = |x: &f32| x.is_finite() && x.abs() <= opts.clamp;
    assert!(
        p.train.features.iter().all(ok) && p.test.features.iter().all(ok),
        "a prepared table holds a value that is not finite or past the clamp"
    );
}

/// The per-account transaction loader (`load_account_txs`): a labels CSV, a NUL byte, then
/// a transaction CSV (without a NUL, all of it is the labels file and there are no
/// transactions), extracted and prepared with the default options: the prepared table
/// keeps the loaders' promise (finite values within the clamp).
pub fn account_txs(data: &[u8]) {
    let (labels, txs) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(labels) = read_labels(labels, "labels.csv".as_ref()) else {
        return;
    };
    let Ok(features) =
        extract_from_reader(txs, "txs.csv".as_ref(), &labels, &ExtractOptions::default())
    else {
        return;
    };
    let opts = LoadOptions::default();
    if let Ok(p) = cairn_datasets::prepare(features.table, features.report, &opts) {
        check_prepared(&p, &opts);
    }
}

/// A verifying key file (`training-<shape>.vk`, and the key a transcript records) for
/// [`seeds::key_shape`]: a key that decodes re-encodes to one that decodes to itself.
pub fn verifying_key(data: &[u8]) {
    let shape = seeds::key_shape();
    let Ok(vk) = proof::vk_from_bytes(&shape, data) else {
        return;
    };
    let bytes = proof::vk_to_bytes(&shape, &vk);
    let again = proof::vk_from_bytes(&shape, &bytes).expect("a re-encoded key decodes");
    assert!(again == vk, "a verifying key reads back as another");
    let _ = proof::prepare(&vk);
}

/// A proving key file (`training-<shape>.pk`, which a holder gets from whoever ran the
/// setup) for [`seeds::key_shape`], with every point validated and the structural checks of
/// `check_proving_key`.
pub fn proving_key(data: &[u8]) {
    let shape = seeds::key_shape();
    let Ok(pk) = proof::pk_from_bytes(&shape, data) else {
        return;
    };
    let bytes = proof::pk_to_bytes(&shape, &pk);
    let again = proof::pk_from_bytes(&shape, &bytes).expect("a re-encoded key decodes");
    assert!(again == pk, "a proving key reads back as another");
}

/// A Groth16 proof as a masked input carries it (128 bytes, compressed points).
pub fn groth16_proof(data: &[u8]) {
    let Ok(p) = Proof::from_bytes(data) else {
        return;
    };
    let again = Proof::from_bytes(&p.to_bytes()).expect("a re-encoded proof decodes");
    assert!(again == p, "a proof reads back as another");
}

/// The snarkjs JSON files `cairn export-verifier` writes and its checks read back
/// (`verification_key.json`, `proof.json`, `public.json`): the text goes to each parser.
pub fn snarkjs_json(data: &[u8]) {
    use cairn_circuits::export::snarkjs;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = snarkjs::parse_verification_key(text);
    let _ = snarkjs::parse_proof(text);
    let _ = snarkjs::parse_public_inputs(text);
}

/// An exported model (`model.safetensors`): read whole as `cairn predict` reads it
/// (`read_model`: the shape and the job's data spec from the metadata, checked, then the
/// parameters), and read back for [`seeds::model_spec`]. A model that reads writes back
/// and reads again with the same shape, parameters and data columns, and its data spec
/// applies to a table with its columns, giving finite values within its clamp.
pub fn model_safetensors(data: &[u8]) {
    use cairn_coordinator::export::{from_safetensors, read_model, to_safetensors};
    if let Ok(m) = read_model(data) {
        let bytes =
            to_safetensors(&m.model, m.data.as_ref(), &m.params).expect("a read model writes back");
        let again = read_model(&bytes).expect("a written model reads back");
        // The spec's statistics pass through JSON text; its names and flags must not change.
        let shape = |d: &Option<DataSpec>| {
            d.as_ref().map(|d| {
                let flags: Vec<bool> = d.normalizer.columns.iter().map(|c| c.signed_log).collect();
                (
                    d.label.clone(),
                    d.columns(),
                    flags,
                    d.normalizer.clamp.to_bits(),
                )
            })
        };
        assert!(
            again.model == m.model
                && shape(&again.data) == shape(&m.data)
                && again
                    .params
                    .iter()
                    .map(|x| x.to_bits())
                    .eq(m.params.iter().map(|x| x.to_bits())),
            "a model file reads back as another"
        );
        if let Some(spec) = &m.data {
            data_spec_applies(spec);
        }
    }
    let spec = seeds::model_spec();
    let Ok(params) = from_safetensors(&spec, data) else {
        return;
    };
    let bytes = to_safetensors(&spec, None, &params).expect("read parameters write back");
    let again = from_safetensors(&spec, &bytes).expect("a written model reads back");
    assert!(
        again
            .iter()
            .map(|x| x.to_bits())
            .eq(params.iter().map(|x| x.to_bits())),
        "a model reads back with other parameters"
    );
}
