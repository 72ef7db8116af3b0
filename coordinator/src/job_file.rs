//! The job file a researcher submits: one TOML document with the data schema, the model,
//! the rounds and their participants, local training, the server optimiser, secure
//! aggregation, proofs, enrolment, deadlines and the test metrics' decision threshold
//! (`[metrics] threshold`). `examples/job.toml` is a complete
//! example; `cairn coordinator --job FILE` runs one.
//!
//! `[enrolment] allowed` lists the data holders' Ed25519 identity public keys, 64 hex
//! digits each, as `cairn keygen identity` prints them and writes to `<file>.pub`. The
//! coordinator then completes the mutual-TLS handshake only with a participant whose
//! certificate carries one of them. Without `allowed` enrolment is open: any identity key
//! may join (demos and tests whose holders draw fresh keys); an empty list is refused, as
//! no one could join. The keys are inline (not a file of keys) so that the job file alone
//! says who may take part.
//!
//! Every table and key is optional and has a default (those of `cairn demo`), unknown keys
//! are refused, and [`JobFile::validate`] reports every bad value at once, each naming its
//! key and the reason (`rounds: must be at least 1`, `train.lr: must be positive, got -1`).
//! [`JobFile::to_config`] turns a valid file into the coordinator's
//! [`JobConfig`] (with its proof settings when `[proofs] enabled`) plus what that type does
//! not carry (server optimiser, enrolment policy, the loader's options).
//!
//! ```toml
//! name = "eth-fraud"
//! rounds = 50
//! [model]
//! hidden = [16]
//! [server]
//! optimizer = "fedadam"
//! lr = 0.01
//! [enrolment]
//! allowed = ["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"]
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use cairn_crypto::quant::check_ring_capacity;
use cairn_crypto::ring::RING_BITS;
use cairn_datasets::LoadOptions;
use cairn_protocol::challenge::ProvedSteps;
use cairn_protocol::enrolment::{parse_identity, Enrolment};
use cairn_protocol::job::{JobConfig, JobConfigError, MAX_PARTICIPANTS};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::privacy::{DpSettings, SkellamParams};
use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::secure_round::MIN_SECURE_PARTICIPANTS;
use cairn_protocol::server_opt::{ServerOptError, ServerOptimizer};

/// Longest accepted job name.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest accepted deadline (one week): bounds every timer the file can set.
pub const MAX_DEADLINE_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// A job file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// A display name [default: `job`].
    #[serde(default = "default_name")]
    pub name: String,
    /// Federated rounds to run [default: 20].
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Seed of the initial model [default: 7]. The round seeds come from the holders'
    /// commit-reveal, never from this public number.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The data schema and the coordinator's evaluation table.
    #[serde(default)]
    pub data: DataSection,
    /// The model's shape.
    #[serde(default)]
    pub model: ModelSection,
    /// Who takes part in a round.
    #[serde(default)]
    pub participants: ParticipantsSection,
    /// Local training on each holder.
    #[serde(default)]
    pub train: TrainSection,
    /// The server optimiser (`optimizer = "fedavg" | "fedadam" | "fedyogi"` and its settings).
    #[serde(default)]
    pub server: ServerOptimizer,
    /// Secure or plain aggregation.
    #[serde(default)]
    pub aggregation: AggregationSection,
    /// Proofs of correct training.
    #[serde(default)]
    pub proofs: ProofSection,
    /// Who may join.
    #[serde(default)]
    pub enrolment: EnrolmentSection,
    /// Deadlines.
    #[serde(default)]
    pub deadlines: DeadlineSection,
    /// How the test metrics are computed.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Distributed differential privacy [default: absent, none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySection>,
}

/// `[privacy]`: distributed differential privacy with the distributed Skellam mechanism
/// (secure aggregation; in a proven job every holder also proves its noise): each holder
/// adds its share of integer noise to its clipped, rotated, rounded update, so the
/// coordinator learns only a noisy sum. Give `epsilon` (the noise multiplier is derived for
/// the job's rounds), `noise_multiplier` (ε is reported after each round), or both (the
/// job runs at that noise and `epsilon` is a budget it stops at: a budget below what its
/// rounds would spend); the L2 clip is `train.clip`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// The ε of the job's (ε, δ) over all its rounds; with `noise_multiplier` also given,
    /// the budget the job stops at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// δ [default: 1e-5].
    #[serde(default = "default_delta")]
    pub delta: f64,
    /// z: the noise's standard deviation in the sum over the clip (instead of `epsilon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_multiplier: Option<f64>,
    /// Stop the job before a round that would pass `epsilon` [default: true; with only a
    /// noise multiplier there is no budget to stop at].
    #[serde(default = "default_true")]
    pub stop_when_spent: bool,
    /// The fewest holders whose noise every released sum carries [default:
    /// `participants.min`]. Holders colluding with the coordinator know their own noise: set
    /// it to the fewest honest survivors you count on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_survivors: Option<u32>,
    /// γ, the grid step of the rotated update [default: clip / (4 √d), d the model's
    /// parameters padded to a power of two: rounding then moves an update by at most an
    /// eighth of the clip].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<f64>,
}

fn default_delta() -> f64 {
    1e-5
}

fn default_true() -> bool {
    true
}

/// Conditional rounding's β (Kairouz, Liu, Steinke's choice, e^(−1/2)).
const DP_BETA: f64 = 0.606_530_659_712_633_4;

/// `[metrics]`: how the coordinator evaluates each round's model on its test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// The decision threshold of the test accuracy, precision, recall and F1: a row is
    /// called positive when its score is at least this; strictly between 0 and 1
    /// [default: 0.5]. (Loss, AUC and PR-AUC do not depend on it.)
    pub threshold: f64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            threshold: cairn_protocol::metrics::DEFAULT_THRESHOLD,
        }
    }
}

/// `[data]`: the label, the expected feature columns, and the table the coordinator
/// evaluates on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// The 0/1 label column [default: `FLAG`].
    pub label: String,
    /// The model's input columns, in order, after the loader's preparation. When given, the
    /// coordinator's table must have exactly these; when absent, its table defines them.
    pub features: Option<Vec<String>>,
    /// Columns to drop before preparation (e.g. a suspected label leak).
    pub drop_columns: Vec<String>,
    /// The coordinator's labelled table (CSV or Parquet) for evaluation [default: the
    /// coordinator's]; with `labels`, a raw per-account transaction export.
    pub path: Option<PathBuf>,
    /// The labels (`address` and the `label` column) of the transaction export `path`:
    /// each labelled account becomes one row of per-account features (as `--data TXS
    /// --labels LABELS`). Needs `path`; held to the data directory as `path` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Field delimiter of the CSV table `path`: `,` `;` `|` or `tab` (also `\t`), as
    /// `--delimiter` takes them [default: tab for a `.tsv` file, else `,`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// Evaluate on the embedded synthetic generator instead of a table.
    pub synthetic: bool,
    /// Fraction of the table held out for testing, in (0, 1) [default: 0.2].
    pub test_fraction: f64,
    /// Seed of the train/test split [default: 7].
    pub split_seed: u64,
}

/// `[model]`: an MLP with ReLU hidden layers and a logistic output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Hidden layer widths; `[]` is logistic regression [default: `[16]`].
    pub hidden: Vec<usize>,
}

/// `[participants]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParticipantsSection {
    /// Participants to wait for and take into each round [default: 5].
    pub per_round: usize,
    /// Fewest valid updates for a round to count [default: half of `per_round`, rounded up].
    pub min: Option<usize>,
}

/// `[train]`: each holder's local training in a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Local SGD steps K [default: 20].
    pub steps: u32,
    /// Mini-batch size B [default: 32].
    pub batch: u32,
    /// Local learning rate [default: 0.1].
    pub lr: f32,
    /// L2 bound each update is clipped to [default: 10].
    pub clip: f32,
}

/// `[aggregation]`: `mode = "secure"` (SecAgg+, the coordinator learns only the sum) with
/// its tolerances, or `mode = "plain"` (FedAvg on the clear updates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum AggregationSection {
    /// Plain FedAvg: the coordinator sees each update. (A struct variant, so that serde
    /// refuses keys beside `mode`: it ignores them for a unit variant.)
    Plain {},
    /// Secure aggregation.
    Secure {
        /// Fraction of a round's participants that may drop, in [0, 1) [default: 0.2].
        #[serde(default = "default_dropout")]
        dropout: f64,
        /// Fraction that may collude with the coordinator, in [0, 1) [default: 0.1].
        #[serde(default = "default_corruption")]
        corruption: f64,
        /// Fixed-point scale of the quantised update, 2^scale_bits [default: 16].
        #[serde(default = "default_scale_bits")]
        scale_bits: u32,
    },
}

/// `[proofs]`: Groth16 proofs that each update is honest training on committed data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProofSection {
    /// Prove every update (needs secure aggregation) [default: false].
    pub enabled: bool,
    /// Tolerance τ between a submitted update and the fixed-point replay of its training,
    /// per coordinate [default: 0.001].
    pub tolerance: f32,
    /// Depth of each holder's dataset tree, in index bits: even, in 2..=32; a leaf is a
    /// block of `block_rows` rows, so a holder may have up to 2^depth × block_rows rows
    /// [default: 12].
    pub tree_depth: u32,
    /// Signed bits of each committed fixed-point feature (scale 2^16): every feature a
    /// holder commits must lie in [−2^(bits−17), 2^(bits−17)), checked in the proof. 20 is
    /// [−8, 8), the loader's default clamp [default: 20].
    pub feature_bits: u32,
    /// Rows per leaf of the dataset tree: a step trains on `batch / block_rows` blocks of
    /// consecutive rows the round seed picks; must divide the batch size [default: the
    /// largest of 8, 4, 2, 1 that does].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_rows: Option<u32>,
    /// Local steps each proof covers: `"all"`, or a number s < K of steps each holder is
    /// challenged on after committing to all K intermediate models \[default: 1 when K > 1
    /// (why: `cairn_protocol::challenge::ProvedSteps::default_for`), else `"all"`\].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<ProvedSteps>,
}

/// `[enrolment]`: which data holders may join, by Ed25519 identity key (see the module
/// documentation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrolmentSection {
    /// The allowed identity public keys, 64 hex digits each [default: absent, open
    /// enrolment].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

impl EnrolmentSection {
    /// The enrolment policy, or every bad entry (field `enrolment.allowed`, the entry's
    /// number and why).
    pub fn enrolment(&self) -> Result<Enrolment, Vec<FieldError>> {
        let Some(keys) = &self.allowed else {
            return Ok(Enrolment::Open);
        };
        let mut p = Problems::default();
        if keys.is_empty() {
            p.add(
                "enrolment.allowed",
                "must list at least one identity key (leave it out for open enrolment)",
            );
        }
        let mut parsed = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            match parse_identity(k) {
                Ok(key) if parsed.contains(&key) => p.add(
                    "enrolment.allowed",
                    format!("entry {}: key {} is listed twice", i + 1, k.trim()),
                ),
                Ok(key) => parsed.push(key),
                Err(e) => p.add("enrolment.allowed", format!("entry {}: {e}", i + 1)),
            }
        }
        match p.finish() {
            Ok(()) => Ok(Enrolment::allow(parsed)),
            Err(e) => Err(e.fields().to_vec()),
        }
    }
}

/// `[deadlines]`, in seconds (fractions allowed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSection {
    /// How long a round waits for updates [default: 120].
    pub round_timeout_secs: f64,
    /// How long to wait for `participants.per_round` to join [default: 300].
    pub join_timeout_secs: f64,
}

fn default_name() -> String {
    "job".into()
}
fn default_rounds() -> u32 {
    20
}
fn default_seed() -> u64 {
    7
}
fn default_dropout() -> f64 {
    SecureSettings::default().dropout
}
fn default_corruption() -> f64 {
    SecureSettings::default().corruption
}
fn default_scale_bits() -> u32 {
    SecureSettings::default().scale_bits
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            label: "FLAG".into(),
            features: None,
            drop_columns: Vec::new(),
            path: None,
            labels: None,
            delimiter: None,
            synthetic: false,
            test_fraction: 0.2,
            split_seed: 7,
        }
    }
}

/// A CSV delimiter as `data.delimiter` (and `--delimiter`) write it: `,` `;` `|` or a tab
/// (`tab` in any case, `\t`, or a tab character).
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "," => Ok(b','),
        ";" => Ok(b';'),
        "|" => Ok(b'|'),
        "\\t" | "\t" => Ok(b'\t'),
        t if t.eq_ignore_ascii_case("tab") => Ok(b'\t'),
        _ => Err(format!(
            "expected `,` `;` `|` or `tab` (also written \\t), got {s:?}"
        )),
    }
}

/// How `data.delimiter` writes the delimiter `byte` (`tab` for a tab): what
/// [`parse_delimiter`] reads back as `byte`.
pub fn delimiter_text(byte: u8) -> String {
    if byte == b'\t' {
        "tab".into()
    } else {
        char::from(byte).to_string()
    }
}

impl DataSection {
    /// The CSV delimiter `delimiter` names (`None` when absent; when invalid too, which
    /// [`JobFile::validate`] refuses).
    pub fn delimiter_byte(&self) -> Option<u8> {
        self.delimiter
            .as_deref()
            .and_then(|d| parse_delimiter(d).ok())
    }
}

impl Default for ModelSection {
    fn default() -> Self {
        Self { hidden: vec![16] }
    }
}

impl Default for ParticipantsSection {
    fn default() -> Self {
        Self {
            per_round: 5,
            min: None,
        }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        let h = HyperParams::default();
        Self {
            steps: h.local_steps,
            batch: h.batch_size,
            lr: h.learning_rate,
            clip: h.clip_norm,
        }
    }
}

impl Default for AggregationSection {
    fn default() -> Self {
        let s = SecureSettings::default();
        AggregationSection::Secure {
            dropout: s.dropout,
            corruption: s.corruption,
            scale_bits: s.scale_bits,
        }
    }
}

impl Default for ProofSection {
    fn default() -> Self {
        Self {
            enabled: false,
            tolerance: 1e-3,
            tree_depth: 12,
            feature_bits: cairn_circuits::rows::DEFAULT_FEATURE_BITS,
            block_rows: None,
            steps: None,
        }
    }
}

impl Default for DeadlineSection {
    fn default() -> Self {
        Self {
            round_timeout_secs: 120.0,
            join_timeout_secs: 300.0,
        }
    }
}

impl Default for JobFile {
    fn default() -> Self {
        Self {
            privacy: None,
            name: default_name(),
            rounds: default_rounds(),
            seed: default_seed(),
            data: DataSection::default(),
            model: ModelSection::default(),
            participants: ParticipantsSection::default(),
            train: TrainSection::default(),
            server: ServerOptimizer::default(),
            aggregation: AggregationSection::default(),
            proofs: ProofSection::default(),
            enrolment: EnrolmentSection::default(),
            deadlines: DeadlineSection::default(),
            metrics: MetricsSection::default(),
        }
    }
}

/// One bad value: its key (`train.lr`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The key, dotted from the top of the file.
    pub field: String,
    /// What is wrong, with the value found.
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Why a job file was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, a value of the wrong type, or an unknown key (the message names it and
    /// its line).
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    /// Values out of range, one line each.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

impl JobFileError {
    /// The bad values (empty for read and parse errors).
    pub fn fields(&self) -> &[FieldError] {
        match self {
            JobFileError::Invalid(v) => v,
            _ => &[],
        }
    }
}

/// A valid job file resolved against the coordinator's data: what `Job` runs, and what
/// [`JobConfig`] does not carry.
#[derive(Clone, Debug)]
pub struct ResolvedJob {
    /// The job's settings (`config.server` is `server`).
    pub config: JobConfig,
    /// The server optimiser.
    pub server: ServerOptimizer,
    /// Proof settings (`enabled` needs secure aggregation, checked); when enabled,
    /// `config.proof` carries them.
    pub proofs: ProofSection,
    /// Who may join (`Open` without `[enrolment] allowed`).
    pub enrolment: Enrolment,
    /// How the coordinator loads its evaluation table.
    pub load: LoadOptions,
}

/// Collects field errors.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn deadline(&mut self, field: &str, secs: f64) {
        if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DEADLINE_SECS) {
            self.add(
                field,
                format!("must be positive and at most {MAX_DEADLINE_SECS} seconds, got {secs}"),
            );
        }
    }

    fn column_names(&mut self, field: &str, names: &[String]) {
        for (i, n) in names.iter().enumerate() {
            if n.trim().is_empty() {
                self.add(field, format!("entry {} is empty", i + 1));
            } else if names[..i].contains(n) {
                self.add(field, format!("{n:?} is listed twice"));
            }
        }
    }

    fn finish(self) -> Result<(), JobFileError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(JobFileError::Invalid(self.0))
        }
    }
}

impl JobFile {
    /// Rows per block of the holders' trees: `[proofs] block_rows`, or the default for the
    /// batch size.
    pub fn block_rows(&self) -> u32 {
        self.proofs
            .block_rows
            .unwrap_or_else(|| cairn_proofs::rounds::default_block_rows(self.train.batch))
    }

    /// The proof settings the job announces when `[proofs] enabled`.
    pub fn proof_spec(&self) -> cairn_protocol::wire::ProofSpec {
        cairn_protocol::wire::ProofSpec {
            sampled_steps: self.proved_steps().sampled(self.train.steps),
            ..cairn_proofs::rounds::proof_spec(
                self.proofs.tolerance,
                self.proofs.tree_depth,
                self.proofs.feature_bits,
                self.block_rows(),
            )
        }
    }

    /// Steps each proof covers: `[proofs] steps`, or the default for K.
    pub fn proved_steps(&self) -> ProvedSteps {
        self.proofs
            .steps
            .unwrap_or_else(|| ProvedSteps::default_for(self.train.steps))
    }

    /// Parses and validates a job file's text.
    pub fn from_toml(text: &str) -> Result<Self, JobFileError> {
        let file: JobFile = toml::from_str(text)?;
        file.validate()?;
        Ok(file)
    }

    /// Reads, parses and validates a job file.
    pub fn load(path: &Path) -> Result<Self, JobFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The file as TOML with every default written out (what a coordinator stores).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Fewest valid updates for a round to count.
    pub fn min_participants(&self) -> usize {
        self.participants
            .min
            .unwrap_or(self.participants.per_round.div_ceil(2))
    }

    /// Checks every value; the error lists each bad one with its key and the reason.
    pub fn validate(&self) -> Result<(), JobFileError> {
        let mut p = Problems::default();
        let name_chars = self.name.chars().count();
        if self.name.trim().is_empty() || name_chars > MAX_NAME_CHARS {
            p.add(
                "name",
                format!("must have 1 to {MAX_NAME_CHARS} characters, got {name_chars}"),
            );
        } else if self.name.chars().any(char::is_control) {
            p.add("name", "must not contain control characters");
        }
        if self.rounds == 0 {
            p.add("rounds", "must be at least 1");
        }
        self.validate_data(&mut p);
        for (i, &w) in self.model.hidden.iter().enumerate() {
            if w == 0 {
                p.add(
                    "model.hidden",
                    format!(
                        "layer {} has width 0; every hidden layer needs at least 1 unit",
                        i + 1
                    ),
                );
            }
        }
        self.validate_participants(&mut p);
        let t = &self.train;
        // What every holder would refuse (or turn into non-finite updates), named here
        // rather than discovered at the first round.
        let hyper = HyperParams {
            local_steps: t.steps,
            batch_size: t.batch,
            learning_rate: t.lr,
            clip_norm: t.clip,
        };
        for (field, reason) in hyper.problems() {
            p.add(format!("train.{field}"), reason);
        }
        if self.proofs.enabled {
            // What the prover's fixed point cannot hold (η = lr / B, clip, τ).
            if let Err(e) = cairn_circuits::training::FixedHyper::new(&hyper, self.proofs.tolerance)
            {
                p.add(
                    "proofs",
                    format!(
                        "the proofs' fixed point cannot hold this job's training settings: {e}"
                    ),
                );
            }
        }
        if let Err(e) = self.server.validate() {
            match e {
                ServerOptError::InvalidConfig { field, reason } => {
                    p.add(format!("server.{field}"), reason);
                }
                other => p.add("server", other.to_string()),
            }
        }
        self.validate_aggregation(&mut p);
        // The proof settings' rules live in one place (`ProofSpec::problems`, which the job
        // config and the circuit call too); checked even when proofs are off, except that
        // blocks must divide the batch only when the holders will cut batches into them.
        let spec = self.proof_spec();
        for (field, reason) in spec.problems(self.train.steps, self.train.batch) {
            if field == "block_rows" && !self.proofs.enabled && spec.block_rows > 0 {
                continue;
            }
            let key = match field {
                "blinding_limbs" => "proofs".to_string(),
                other => format!("proofs.{other}"),
            };
            p.add(key, reason);
        }
        let bits = spec.feature_bits;
        if self.proofs.enabled && (2..=cairn_protocol::wire::MAX_FEATURE_BITS).contains(&bits) {
            // The holders commit their prepared rows, clamped to the loader's bound.
            if let Err(why) = cairn_circuits::rows::check_clamp(bits, self.load_options().clamp) {
                p.add("proofs.feature_bits", why);
            }
        }
        if let Err(fields) = self.enrolment.enrolment() {
            p.0.extend(fields);
        }
        if self.proofs.enabled && matches!(self.aggregation, AggregationSection::Plain {}) {
            p.add(
                "proofs.enabled",
                "proofs need aggregation.mode = \"secure\" (the commitments are checked against the unmasked sum)",
            );
        }
        p.deadline(
            "deadlines.round_timeout_secs",
            self.deadlines.round_timeout_secs,
        );
        p.deadline(
            "deadlines.join_timeout_secs",
            self.deadlines.join_timeout_secs,
        );
        if let Err(e) = cairn_protocol::metrics::check_threshold(self.metrics.threshold) {
            p.add("metrics.threshold", e);
        }
        if let Some(dp) = &self.privacy {
            self.validate_privacy(dp, &mut p);
        }
        p.finish()
    }

    fn validate_data(&self, p: &mut Problems) {
        let d = &self.data;
        if d.label.trim().is_empty() {
            p.add("data.label", "must name the label column");
        }
        if let Some(features) = &d.features {
            if features.is_empty() {
                p.add(
                    "data.features",
                    "must list at least one column (or be left out)",
                );
            }
            p.column_names("data.features", features);
            if features.iter().any(|f| f.trim() == d.label.trim()) {
                p.add(
                    "data.features",
                    format!("contains the label column {:?}", d.label),
                );
            }
        }
        p.column_names("data.drop_columns", &d.drop_columns);
        if !(d.test_fraction.is_finite() && d.test_fraction > 0.0 && d.test_fraction < 1.0) {
            p.add(
                "data.test_fraction",
                format!("must be in (0, 1), got {}", d.test_fraction),
            );
        }
        if d.synthetic && d.path.is_some() {
            p.add("data.synthetic", "cannot be true together with data.path");
        }
        if d.path.as_ref().is_some_and(|x| x.as_os_str().is_empty()) {
            p.add("data.path", "is empty");
        }
        if let Some(labels) = &d.labels {
            if labels.as_os_str().is_empty() {
                p.add("data.labels", "is empty");
            } else if d.synthetic {
                p.add(
                    "data.labels",
                    "labels a transaction export given with data.path, not synthetic data",
                );
            } else if d.path.is_none() {
                p.add(
                    "data.labels",
                    "needs data.path, the transaction export it labels",
                );
            }
        }
        if let Some(delimiter) = &d.delimiter {
            if let Err(e) = parse_delimiter(delimiter) {
                p.add("data.delimiter", e);
            } else if d.synthetic {
                p.add(
                    "data.delimiter",
                    "applies to a CSV table in data.path, not to synthetic data",
                );
            } else if d.labels.is_some() {
                p.add(
                    "data.delimiter",
                    "applies to a CSV table; a transaction export with data.labels is read with commas",
                );
            }
        }
    }

    fn validate_privacy(&self, dp: &PrivacySection, p: &mut Problems) {
        match (dp.epsilon, dp.noise_multiplier) {
            (Some(_), Some(_)) if !dp.stop_when_spent => p.add(
                "privacy",
                "epsilon with noise_multiplier is a budget to stop at: it needs stop_when_spent = true (or give one of them)",
            ),
            (None, None) => p.add("privacy", "give epsilon or noise_multiplier"),
            _ => {}
        }
        if let Some(e) = dp.epsilon {
            if !(e.is_finite() && e > 0.0) {
                p.add(
                    "privacy.epsilon",
                    format!("must be finite and positive, got {e}"),
                );
            }
        }
        if let Some(z) = dp.noise_multiplier {
            if !(z.is_finite() && z > 0.0) {
                p.add(
                    "privacy.noise_multiplier",
                    format!("must be finite and positive, got {z}"),
                );
            }
        }
        if !(dp.delta > 0.0 && dp.delta < 0.1) {
            p.add(
                "privacy.delta",
                format!("must be in (0, 0.1), got {}", dp.delta),
            );
        }
        if let Some(g) = dp.granularity {
            if !(g.is_finite() && g > 0.0) {
                p.add(
                    "privacy.granularity",
                    format!("must be finite and positive, got {g}"),
                );
            }
        }
        if let Some(t) = dp.min_survivors {
            let min = self.min_participants();
            if t == 0 || t as usize > min {
                p.add(
                    "privacy.min_survivors",
                    format!(
                        "must be in 1..={min} (participants.min: a round completes with that many)"
                    ),
                );
            }
        }
        if matches!(self.aggregation, AggregationSection::Plain {}) {
            p.add(
                "privacy",
                "distributed DP needs aggregation.mode = \"secure\" (the coordinator must see only the noisy sum)",
            );
        }
    }

    /// The DP settings of a job whose model has `dim` parameters: the noise multiplier given,
    /// or the smallest one that keeps the job's rounds within `epsilon`.
    fn dp_settings(&self, dp: &PrivacySection, dim: usize) -> Result<DpSettings, String> {
        let clip = f64::from(self.train.clip);
        let padded = cairn_privacy::rotation::padded_len(dim)
            .ok_or_else(|| format!("a model of {dim} parameters is too large to rotate"))?;
        let mut granularity = dp
            .granularity
            .unwrap_or_else(|| clip / (4.0 * (padded as f64).sqrt()));
        // A proven job's circuit checks the grid in whole steps of 2^-16 after the
        // unnormalised rotation: the default grid moves to the nearest one it can check (a
        // granularity given by hand must already be one: the circuit's rule says which).
        if self.proofs.enabled && dp.granularity.is_none() {
            granularity = cairn_proofs::noise::proven_granularity(granularity, padded);
        }
        let min_survivors = dp
            .min_survivors
            .unwrap_or_else(|| u32::try_from(self.min_participants()).unwrap_or(u32::MAX));
        let mut params = SkellamParams {
            clip,
            noise_multiplier: dp.noise_multiplier.unwrap_or(1.0),
            granularity,
            beta: DP_BETA,
            min_survivors,
            dim,
        };
        params.validate().map_err(|e| e.to_string())?;
        // Only epsilon: the noise for all the rounds to fit it. Both: the noise given, and
        // epsilon the budget the job stops at.
        if let (Some(epsilon), None) = (dp.epsilon, dp.noise_multiplier) {
            let model = params.noise_model().map_err(|e| e.to_string())?;
            let target = cairn_privacy::Target {
                epsilon,
                delta: dp.delta,
            };
            params.noise_multiplier =
                cairn_privacy::noise_multiplier_for(&model, target, 1.0, u64::from(self.rounds))
                    .map_err(|e| e.to_string())?;
        }
        Ok(DpSettings {
            params,
            delta: dp.delta,
            budget: dp.epsilon.filter(|_| dp.stop_when_spent),
        })
    }

    fn validate_participants(&self, p: &mut Problems) {
        let n = self.participants.per_round;
        if n == 0 {
            p.add("participants.per_round", "must be at least 1");
        } else if n > MAX_PARTICIPANTS {
            p.add(
                "participants.per_round",
                format!("must be at most {MAX_PARTICIPANTS}, got {n}"),
            );
        }
        let min = self.min_participants();
        if min == 0 || min > n.max(1) {
            p.add(
                "participants.min",
                format!("must be between 1 and participants.per_round ({n}), got {min}"),
            );
        }
    }

    fn validate_aggregation(&self, p: &mut Problems) {
        let AggregationSection::Secure {
            dropout,
            corruption,
            scale_bits,
        } = self.aggregation
        else {
            return;
        };
        let n = self.participants.per_round;
        let mut ok = true;
        for (field, rate) in [
            ("aggregation.dropout", dropout),
            ("aggregation.corruption", corruption),
        ] {
            if !(rate.is_finite() && (0.0..1.0).contains(&rate)) {
                p.add(field, format!("must be in [0, 1), got {rate}"));
                ok = false;
            }
        }
        if ok && dropout + corruption >= 1.0 {
            p.add(
                "aggregation.corruption",
                format!("dropout + corruption must be below 1, got {dropout} + {corruption}"),
            );
            ok = false;
        }
        if !(1..=30).contains(&scale_bits) {
            p.add(
                "aggregation.scale_bits",
                format!("must be in 1..=30, got {scale_bits}"),
            );
        } else if self.train.clip.is_finite() && self.train.clip > 0.0 {
            if let Err(e) =
                check_ring_capacity(n as u64, f64::from(self.train.clip), scale_bits, RING_BITS)
            {
                p.add(
                    "aggregation.scale_bits",
                    format!(
                        "too fine for train.clip = {} and {n} participants: {e}",
                        self.train.clip
                    ),
                );
            }
        }
        if n < MIN_SECURE_PARTICIPANTS {
            p.add(
                "participants.per_round",
                format!(
                    "secure aggregation needs at least {MIN_SECURE_PARTICIPANTS} participants, got {n}"
                ),
            );
        } else if ok {
            let settings = SecureSettings {
                dropout,
                corruption,
                scale_bits,
            };
            if let Err(e) = settings.params(n) {
                p.add(
                    "aggregation",
                    format!(
                        "no SecAgg+ parameters tolerate dropout {dropout} and corruption {corruption} with {n} participants against a malicious coordinator ({e}); lower them or add participants"
                    ),
                );
            }
        }
    }

    /// Holds `data.path` (and `data.labels`) to the operator's data directory: each path
    /// (relative ones from the working directory, as the loader reads them), with every
    /// symbolic link followed, must lie under `root`. A job submitted through the admin
    /// interface cannot make the coordinator read (and report on) any file it can open.
    pub fn check_data_root(&self, root: &Path) -> Result<(), JobFileError> {
        let files = [
            ("data.path", &self.data.path),
            ("data.labels", &self.data.labels),
        ];
        if files.iter().all(|(_, p)| p.is_none()) {
            return Ok(());
        }
        let invalid = |field: &str, reason: String| FieldError {
            field: field.into(),
            reason,
        };
        let real_root = root.canonicalize().map_err(|e| {
            JobFileError::Invalid(vec![invalid(
                "data.path",
                format!("the coordinator's data directory {}: {e}", root.display()),
            )])
        })?;
        let mut bad = Vec::new();
        for (field, path) in files {
            let Some(path) = path else { continue };
            match path.canonicalize() {
                Err(e) => bad.push(invalid(field, format!("{}: {e}", path.display()))),
                Ok(real) if !real.starts_with(&real_root) => bad.push(invalid(
                    field,
                    format!(
                        "{} is outside the coordinator's data directory {} (its operator names it with --data-root)",
                        path.display(),
                        root.display()
                    ),
                )),
                Ok(_) => {}
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(JobFileError::Invalid(bad))
        }
    }

    /// Checks a proven job's `proofs.tree_depth` against the rows its holders bring, before
    /// any key setup: the coordinator's `train_rows` training rows dealt evenly among
    /// `participants.per_round` holders (as this version's holders, simulated holders of
    /// one table, deal them) give some holder at least `⌈train_rows / per_round⌉` rows, and
    /// a tree too shallow for them would make that holder unable to commit after the
    /// setup. The error names the smallest depth that holds them. Nothing to check
    /// without proofs.
    pub fn check_tree_depth(&self, train_rows: usize) -> Result<(), JobFileError> {
        if !self.proofs.enabled {
            return Ok(());
        }
        let holders = self.participants.per_round.max(1) as u64;
        let share = (train_rows as u64).div_ceil(holders);
        let block = self.block_rows().max(1);
        let need = cairn_circuits::merkle::depth_for_rows(share, block);
        let depth = self.proofs.tree_depth;
        if depth >= need {
            return Ok(());
        }
        let blocks = share / u64::from(block);
        Err(JobFileError::Invalid(vec![FieldError {
            field: "proofs.tree_depth".into(),
            reason: format!(
                "a tree of depth {depth} holds {} blocks of {block} rows, but {train_rows} training rows dealt among {holders} holders give a holder {share} rows ({blocks} blocks): the smallest depth that holds them is {need} (tree_depth = {need}, or --tree-depth {need})",
                1u64 << depth.min(32),
            ),
        }]))
    }

    /// Checks the coordinator's prepared feature columns against `data.features` (when
    /// the file lists them).
    pub fn check_schema(&self, columns: &[String]) -> Result<(), JobFileError> {
        let Some(want) = &self.data.features else {
            return Ok(());
        };
        if want.as_slice() == columns {
            return Ok(());
        }
        let missing: Vec<&String> = want.iter().filter(|c| !columns.contains(c)).collect();
        let extra: Vec<&String> = columns.iter().filter(|c| !want.contains(c)).collect();
        let reason = if missing.is_empty() && extra.is_empty() {
            "the table has these columns in another order".to_string()
        } else {
            format!("the table lacks {missing:?} and has unlisted {extra:?}")
        };
        Err(JobFileError::Invalid(vec![FieldError {
            field: "data.features".into(),
            reason,
        }]))
    }

    /// The job for a table of `n_features` prepared columns whose label has `classes`
    /// classes, as the coordinator runs it. Validates first; an error names the key to
    /// change.
    pub fn to_config(
        &self,
        job_id: &str,
        n_features: usize,
        classes: usize,
    ) -> Result<ResolvedJob, JobFileError> {
        self.validate()?;
        let invalid = |field: &str, reason: String| {
            JobFileError::Invalid(vec![FieldError {
                field: field.into(),
                reason,
            }])
        };
        if let Some(f) = &self.data.features {
            if f.len() != n_features {
                return Err(invalid(
                    "data.features",
                    format!("lists {} columns, the table has {n_features}", f.len()),
                ));
            }
        }
        let aggregation = match self.aggregation {
            AggregationSection::Plain {} => Aggregation::Plain,
            AggregationSection::Secure {
                dropout,
                corruption,
                scale_bits,
            } => Aggregation::Secure(SecureSettings {
                dropout,
                corruption,
                scale_bits,
            }),
        };
        let model = ModelSpec::mlp(n_features, self.model.hidden.clone()).with_classes(classes);
        let privacy = match &self.privacy {
            Some(dp) => Some(
                self.dp_settings(dp, model.param_count())
                    .map_err(|e| invalid("privacy", e))?,
            ),
            None => None,
        };
        if let (true, Some(dp)) = (self.proofs.enabled, &privacy) {
            // The circuit checks the grid in whole steps: a granularity given by hand must
            // be one it can check (the default always is).
            cairn_proofs::noise::proven_grid(&dp.params)
                .map_err(|e| invalid("privacy.granularity", e.to_string()))?;
        }
        let config = JobConfig {
            job_id: job_id.to_string(),
            model,
            rounds: self.rounds,
            participants: self.participants.per_round,
            min_participants: self.min_participants(),
            hyper: HyperParams {
                local_steps: self.train.steps,
                batch_size: self.train.batch,
                learning_rate: self.train.lr,
                clip_norm: self.train.clip,
            },
            server: self.server,
            round_timeout: Duration::from_secs_f64(self.deadlines.round_timeout_secs),
            join_timeout: Duration::from_secs_f64(self.deadlines.join_timeout_secs),
            seed: self.seed,
            aggregation,
            proof: self
                .proofs
                .enabled
                .then(|| cairn_protocol::wire::ProofSpec {
                    noise: privacy.map(|dp| dp.params),
                    ..self.proof_spec()
                }),
            // The caller sets it from the table it prepared ([`cairn_datasets::DataSpec::of`]).
            data: None,
            privacy,
        };
        config.validate().map_err(|e| {
            // By kind, with a catch-all: JobConfig may learn new checks.
            let field = if matches!(e, JobConfigError::Model(_)) && n_features == 0 {
                return invalid("data", "the table has no feature columns".into());
            } else if matches!(e, JobConfigError::Model(_)) {
                "model.hidden"
            } else if matches!(e, JobConfigError::Counts { .. }) {
                "participants.min"
            } else if matches!(e, JobConfigError::Ring(_)) {
                "aggregation.scale_bits"
            } else if matches!(e, JobConfigError::TooFewForSecure(_)) {
                "participants.per_round"
            } else if matches!(e, JobConfigError::Proof(_)) {
                "proofs"
            } else if matches!(e, JobConfigError::Privacy(_)) {
                "privacy"
            } else {
                "job"
            };
            invalid(field, e.to_string())
        })?;
        // A circuit too large to set up is refused now, not when its setup runs out of
        // memory (a few small circuits are built to estimate it: about a second).
        if let Some(spec) = config.proof {
            let shape = cairn_proofs::rounds::shape(&config.model, &config.hyper, &spec)
                .map_err(|e| invalid("privacy", e.to_string()))?;
            cairn_circuits::training::proof::check_size(&shape)
                .map_err(|e| invalid("proofs", e.to_string()))?;
        }
        let enrolment = self.enrolment.enrolment().map_err(JobFileError::Invalid)?;
        Ok(ResolvedJob {
            config,
            server: self.server,
            proofs: self.proofs.clone(),
            enrolment,
            load: self.load_options(),
        })
    }

    /// How the coordinator loads its evaluation table (`[data]`).
    pub fn load_options(&self) -> LoadOptions {
        let d = &self.data;
        let mut load = LoadOptions::with_label(d.label.trim().to_string());
        load.test_fraction = d.test_fraction;
        load.seed = d.split_seed;
        load.drop_columns = d.drop_columns.clone();
        load.delimiter = d.delimiter_byte();
        load
    }
}

#[cfg(test)]
mod tests;
