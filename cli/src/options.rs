//! Command-line and TOML options shared by the subcommands: where the data comes from,
//! the job's model and training settings. A `--config FILE` TOML supplies any value not
//! given as a flag; flags win.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_coordinator::job_file::{EnrolmentSection, ProofSection};
use cairn_datasets::txfeatures::extract_account_features;
use cairn_datasets::{
    default_fraud_csv, load_raw, prepare, synthetic_table, DataSpec, Dataset, ExtractOptions,
    LoadOptions, LoadReport, Partition, Prepared,
};

/// Rows and feature columns of the synthetic table (`--synthetic`, or when the fraud
/// table is absent).
const SYNTHETIC_ROWS: usize = 6000;
const SYNTHETIC_FEATURES: usize = 12;
use cairn_protocol::job::JobConfig;
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::server_opt::ServerOptimizer;
use clap::Args;
use serde::{Deserialize, Deserializer};

/// Where the rows come from and how they are split.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataArgs {
    /// Labelled feature table: CSV (`.gz` read too) or Parquet (`.parquet`); with --labels,
    /// a raw transaction export [default: the shared Ethereum fraud table, else synthetic data]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Labels (`address` and the --label column) of a raw per-account transaction export:
    /// `--data TXS` is then Etherscan `txlist` rows (with `AccountId` and `txn type`), turned
    /// into one row of per-account features per labelled account
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// CSV field delimiter: `,` `;` `|` or `tab` (`\t`) [default: tab for a .tsv file, else `,`]
    #[arg(long)]
    #[serde(default, deserialize_with = "delimiter_key")]
    pub delimiter: Option<Delimiter>,
    /// Use the embedded synthetic generator instead of a file.
    #[arg(long)]
    #[serde(default)]
    pub synthetic: bool,
    /// Name of the 0/1 label column [default: FLAG]
    #[arg(long)]
    pub label: Option<String>,
    /// Fraction of rows held out for testing [default: 0.2]
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// How training rows are dealt to holders: `iid` or `dirichlet:ALPHA` [default: iid]
    #[arg(long)]
    #[serde(default, deserialize_with = "partition_key")]
    pub partition: Option<PartitionArg>,
    /// Seed of the split and the partition [default: 7]
    #[arg(long)]
    pub data_seed: Option<u64>,
}

/// The job's model and training settings.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainArgs {
    /// Hidden layer widths, comma-separated; `none` for logistic regression [default: 16]
    #[arg(long, value_parser = hidden_flag)]
    #[serde(default, deserialize_with = "hidden_key")]
    pub hidden: Option<String>,
    /// Federated rounds [default: 20]
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Local SGD steps per round (K) [default: 20]
    #[arg(long)]
    pub steps: Option<u32>,
    /// Mini-batch size (B) [default: 32]
    #[arg(long)]
    pub batch: Option<u32>,
    /// Local learning rate [default: 0.1]
    #[arg(long)]
    pub lr: Option<f32>,
    /// L2 clip bound of each update [default: 10]
    #[arg(long)]
    pub clip: Option<f32>,
    /// Server learning rate (1 = plain FedAvg) [default: 1]
    #[arg(long)]
    pub server_lr: Option<f32>,
    /// Seconds a round waits for updates [default: 120]
    #[arg(long)]
    pub round_timeout: Option<u64>,
    /// Seconds to wait for participants to join [default: 300]
    #[arg(long)]
    pub join_timeout: Option<u64>,
    /// Seed of the initial model [default: 7] (round seeds come from the holders' commit-reveal)
    #[arg(long)]
    pub seed: Option<u64>,
    /// How updates are aggregated: `secure` (SecAgg+: the coordinator learns only the
    /// sum) or `plain` (FedAvg on the clear updates) [default: secure]
    #[arg(long, value_parser = AGGREGATIONS)]
    #[serde(default, deserialize_with = "aggregation_key")]
    pub aggregation: Option<String>,
    /// Secure aggregation: fraction of participants that may drop in a round [default: 0.2]
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Secure aggregation: fraction of participants that may collude with the coordinator [default: 0.1]
    #[arg(long)]
    pub corruption: Option<f64>,
    /// Prove every update (Groth16): holders commit to their rows, send a commitment and a
    /// proof of honest training with their masked input, the coordinator verifies them and
    /// checks the aggregate against the commitments [default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub proofs: Option<bool>,
    /// Proofs: largest gap τ allowed between the float update and the fixed-point replay [default: 0.001]
    #[arg(long)]
    pub tolerance: Option<f32>,
    /// Proofs: depth of each holder's dataset tree, in index bits (even; holds 2^depth blocks of --block-rows rows) [default: 12]
    #[arg(long)]
    pub tree_depth: Option<u32>,
    /// Proofs: signed bits of each committed fixed-point feature (20: features in [−8, 8)) [default: 20]
    #[arg(long)]
    pub feature_bits: Option<u32>,
    /// Proofs: rows per leaf of the dataset tree; divides the batch size [default: the largest of 8, 4, 2, 1 that does]
    #[arg(long)]
    pub block_rows: Option<u32>,
    /// Proofs: local steps each proof covers, `all` or a number s < K that each holder is
    /// challenged on after committing to all K intermediate models [default: 1 when K > 1, else all]
    // The doc comment is the flag's help text, in clap's `[default: …]` form, not rustdoc.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long)]
    pub proved_steps: Option<cairn_protocol::challenge::ProvedSteps>,
    /// Proofs: directory of the Groth16 keys, made on first use per circuit shape [default: cairn-keys]
    #[arg(long)]
    pub keys: Option<PathBuf>,
}

/// `--partition` (and `[data] partition`): `iid` or `dirichlet:ALPHA` with ALPHA > 0, checked as the
/// flag is parsed, before any data loads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionArg(pub Partition);

impl FromStr for PartitionArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().split_once(':') {
            None if s.trim() == "iid" => Ok(Self(Partition::Iid)),
            Some(("dirichlet", a)) => {
                let alpha: f64 = a.trim().parse().map_err(|_| {
                    format!("dirichlet alpha {a:?} is not a number (expected e.g. dirichlet:0.5)")
                })?;
                if !(alpha.is_finite() && alpha > 0.0) {
                    return Err(format!("dirichlet alpha must be positive, got {alpha}"));
                }
                Ok(Self(Partition::Dirichlet { alpha }))
            }
            _ => Err(format!("expected `iid` or `dirichlet:ALPHA`, got {s:?}")),
        }
    }
}

/// `--delimiter` (and `[data] delimiter`): the CSV field delimiter, one of `,` `;` `|` or a tab
/// (`tab`, `\t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delimiter(pub u8);

impl FromStr for Delimiter {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "," => Ok(Self(b',')),
            ";" => Ok(Self(b';')),
            "|" => Ok(Self(b'|')),
            "\\t" | "\t" => Ok(Self(b'\t')),
            t if t.eq_ignore_ascii_case("tab") => Ok(Self(b'\t')),
            _ => Err(format!(
                "expected `,` `;` `|` or `tab` (also written \\t), got {s:?}"
            )),
        }
    }
}

/// Hidden layer widths as `--hidden` and `[train] hidden` write them: `16`, `32,16`, or
/// `none` (also empty or `0`) for logistic regression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HiddenWidths(pub Vec<usize>);

impl FromStr for HiddenWidths {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s == "0" || s.eq_ignore_ascii_case("none") {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|w| match w.trim().parse::<usize>() {
                Ok(0) => {
                    Err("hidden widths must be positive (`none` for no hidden layer)".to_string())
                }
                Ok(n) => Ok(n),
                Err(_) => Err(format!(
                    "hidden width {w:?} is not a number (expected e.g. 16, 32,16 or none)"
                )),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Self)
    }
}

/// The values `--aggregation` takes.
const AGGREGATIONS: [&str; 2] = ["secure", "plain"];

/// `--hidden`'s value parser: checked as [`HiddenWidths`], kept as written.
fn hidden_flag(s: &str) -> std::result::Result<String, String> {
    s.parse::<HiddenWidths>().map(|_| s.to_string())
}

/// A TOML string checked by `check`, its error naming the key (`[train] hidden: …`).
fn checked_key<'de, D: Deserializer<'de>, T>(
    d: D,
    key: &str,
    check: impl FnOnce(&str) -> std::result::Result<T, String>,
) -> std::result::Result<Option<T>, D::Error> {
    let text = String::deserialize(d)?;
    check(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{key}: {e}")))
}

fn hidden_key<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    checked_key(d, "[train] hidden", hidden_flag)
}

fn aggregation_key<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    checked_key(d, "[train] aggregation", |s| {
        if AGGREGATIONS.contains(&s) {
            Ok(s.to_string())
        } else {
            Err(format!("expected `secure` or `plain`, got {s:?}"))
        }
    })
}

fn partition_key<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<PartitionArg>, D::Error> {
    checked_key(d, "[data] partition", str::parse)
}

fn delimiter_key<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Delimiter>, D::Error> {
    checked_key(d, "[data] delimiter", str::parse)
}

/// A `--config` TOML file: `[data]` and `[train]` tables with the flags' names, and for a
/// coordinator an `[enrolment]` table as in a job file (`allowed = ["<hex key>", …]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Data settings.
    #[serde(default)]
    pub data: DataArgs,
    /// Training settings.
    #[serde(default)]
    pub train: TrainArgs,
    /// Who may join (a coordinator's setting; open when absent).
    #[serde(default)]
    pub enrolment: EnrolmentSection,
    /// `cairn simulate`'s settings.
    #[serde(default)]
    pub simulate: crate::simulate::SimulateOptions,
}

impl ConfigFile {
    /// Reads a TOML config; a missing path gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }
}

macro_rules! merge {
    ($flag:expr, $file:expr, [$($f:ident),*]) => { $( if $flag.$f.is_none() { $flag.$f = $file.$f.clone(); } )* };
}
/// For the other option tables (`[simulate]`).
pub(crate) use merge;

impl DataArgs {
    /// Fills unset values from the config file.
    pub fn merge(mut self, file: &DataArgs) -> Self {
        merge!(
            self,
            file,
            [
                data,
                labels,
                delimiter,
                label,
                test_fraction,
                partition,
                data_seed
            ]
        );
        self.synthetic |= file.synthetic;
        self
    }

    /// The loader options these arguments give.
    pub fn load_options(&self) -> LoadOptions {
        let mut o = LoadOptions::with_label(self.label.clone().unwrap_or_else(|| "FLAG".into()));
        o.test_fraction = self.test_fraction.unwrap_or(0.2);
        o.seed = self.data_seed.unwrap_or(7);
        o.delimiter = self.delimiter.map(|d| d.0);
        o
    }

    /// Loads and prepares the table (or the synthetic default), with a line saying which.
    /// A `--test-fraction` outside (0, 1) is refused first, as a job file's is.
    pub fn load(&self) -> Result<(Prepared, String)> {
        self.check()?;
        self.load_with(&self.load_options())
    }

    /// What can be refused before any table is read: a `--test-fraction` outside (0, 1), as
    /// a job file's is refused.
    pub fn check(&self) -> Result<()> {
        if let Some(f) = self.test_fraction {
            if !(f.is_finite() && f > 0.0 && f < 1.0) {
                bail!("--test-fraction must be in (0, 1), got {f}");
            }
        }
        Ok(())
    }

    /// [`DataArgs::load`] with the given loader options (a job file's `[data]`).
    pub fn load_with(&self, opts: &LoadOptions) -> Result<(Prepared, String)> {
        let (table, report, source) = self.raw_table(opts)?;
        let prepared =
            prepare(table, report, opts).with_context(|| format!("preparing {source}"))?;
        Ok((prepared, source))
    }

    /// The table these arguments name, read into numbers but not yet pruned, split or
    /// normalised (missing cells are `NaN`), with a line saying where it came from: what a
    /// holder prepares for each job with the job's columns and transforms. The table is a
    /// CSV or Parquet file (by its extension), the per-account features of a transaction
    /// export with `--labels`, or the synthetic one.
    pub fn raw_table(&self, opts: &LoadOptions) -> Result<(Dataset, LoadReport, String)> {
        if let Some(labels) = &self.labels {
            if self.synthetic {
                bail!("--labels labels a transaction export given with --data, not --synthetic");
            }
            let Some(txs) = &self.data else {
                bail!(
                    "--labels {} needs --data TXS, the transaction export it labels",
                    labels.display()
                );
            };
            return account_table(txs, labels, opts);
        }
        let synthetic = |msg: String| {
            let table = synthetic_table(SYNTHETIC_ROWS, SYNTHETIC_FEATURES, opts.seed);
            let report = LoadReport {
                source: format!("synthetic(seed {})", opts.seed),
                label: "label".to_string(),
                ..LoadReport::default()
            };
            (table, report, msg)
        };
        if self.synthetic {
            return Ok(synthetic(format!(
                "synthetic data ({SYNTHETIC_ROWS} rows, {SYNTHETIC_FEATURES} features)"
            )));
        }
        let path = match &self.data {
            Some(p) => p.clone(),
            None => {
                let p = default_fraud_csv();
                if !p.exists() {
                    return Ok(synthetic(format!(
                        "{} not found: using synthetic data",
                        p.display()
                    )));
                }
                p
            }
        };
        let (table, report) =
            load_raw(&path, opts).with_context(|| format!("loading {}", path.display()))?;
        Ok((table, report, path.display().to_string()))
    }

    /// The partition scheme (checked when the flag or the config was parsed).
    pub fn partition(&self) -> Result<Partition> {
        Ok(self.partition.map_or(Partition::Iid, |p| p.0))
    }
}

/// The per-account features of the transaction export `txs` labelled by `labels` (their
/// `address` and `opts.label` columns), with the extraction's report.
fn account_table(
    txs: &Path,
    labels: &Path,
    opts: &LoadOptions,
) -> Result<(Dataset, LoadReport, String)> {
    opts.validate().context("loader options")?;
    let extract = ExtractOptions {
        label: opts.label.clone(),
        ..ExtractOptions::default()
    };
    let features = extract_account_features(txs, labels, &extract).with_context(|| {
        format!(
            "per-account features of {} labelled by {}",
            txs.display(),
            labels.display()
        )
    })?;
    let source = format!(
        "per-account features of {} ({} transaction rows) labelled by {}",
        txs.display(),
        features.tx_rows,
        labels.display()
    );
    Ok((features.table, features.report, source))
}

/// Parses `iid` or `dirichlet:ALPHA`.
pub fn parse_partition(s: &str) -> Result<Partition> {
    s.parse::<PartitionArg>()
        .map(|p| p.0)
        .map_err(|e| anyhow::anyhow!("partition: {e}"))
}

impl TrainArgs {
    /// Fills unset values from the config file.
    pub fn merge(mut self, file: &TrainArgs) -> Self {
        merge!(
            self,
            file,
            [
                hidden,
                rounds,
                steps,
                batch,
                lr,
                clip,
                server_lr,
                round_timeout,
                join_timeout,
                seed,
                aggregation,
                dropout,
                corruption,
                proofs,
                tolerance,
                tree_depth,
                feature_bits,
                block_rows,
                proved_steps,
                keys
            ]
        );
        self
    }

    /// Where the proof keys live.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys
            .clone()
            .unwrap_or_else(|| PathBuf::from("cairn-keys"))
    }

    /// The model for `n_features` inputs and `classes` classes.
    pub fn model(&self, n_features: usize, classes: usize) -> Result<ModelSpec> {
        let hidden = self
            .hidden
            .as_deref()
            .unwrap_or("16")
            .parse::<HiddenWidths>()
            .map_err(|e| anyhow::anyhow!("--hidden: {e}"))?
            .0;
        let spec = ModelSpec::mlp(n_features, hidden).with_classes(classes);
        spec.validate().context("model")?;
        Ok(spec)
    }

    /// Local training hyper-parameters, checked.
    pub fn hyper(&self) -> Result<HyperParams> {
        let h = HyperParams {
            local_steps: self.steps.unwrap_or(20),
            batch_size: self.batch.unwrap_or(32),
            learning_rate: self.lr.unwrap_or(0.1),
            clip_norm: self.clip.unwrap_or(10.0),
        };
        // The limits every holder applies; their fields are these flags' names.
        if let Some((field, why)) = h.problems().into_iter().next() {
            bail!("--{field} {why}");
        }
        Ok(h)
    }

    /// Rounds to run.
    pub fn rounds(&self) -> u32 {
        self.rounds.unwrap_or(20)
    }

    /// Seed of the initial model.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(7)
    }

    /// The aggregation these options choose.
    pub fn aggregation(&self) -> Result<Aggregation> {
        match self.aggregation.as_deref().unwrap_or("secure") {
            "plain" => Ok(Aggregation::Plain),
            "secure" => {
                let d = SecureSettings::default();
                Ok(Aggregation::Secure(SecureSettings {
                    dropout: self.dropout.unwrap_or(d.dropout),
                    corruption: self.corruption.unwrap_or(d.corruption),
                    scale_bits: d.scale_bits,
                }))
            }
            other => bail!("--aggregation must be `secure` or `plain`, got {other:?}"),
        }
    }

    /// The job configuration for `participants` holders (at least `min` per round) training
    /// on the coordinator's `prepared` table: its input columns and label's classes, and its
    /// data spec (what each holder prepares its own table with).
    pub fn job_for(
        &self,
        job_id: &str,
        prepared: &Prepared,
        participants: usize,
        min: usize,
    ) -> Result<JobConfig> {
        let data = DataSpec::of(prepared);
        let binary = self.job(job_id, prepared.train.n_features, participants, min)?;
        if let Some(p) = &binary.proof {
            cairn_circuits::rows::check_clamp(p.feature_bits, data.normalizer.clamp)
                .map_err(|e| anyhow::anyhow!("--feature-bits: {e}"))?;
        }
        let cfg = JobConfig {
            model: self.model(prepared.train.n_features, data.n_classes())?,
            data: Some(data),
            ..binary
        };
        cfg.validate().context("job configuration")?;
        Ok(cfg)
    }

    /// The job configuration of a binary model of `n_features` inputs for `participants`
    /// holders (at least `min` per round), without a data spec.
    pub fn job(
        &self,
        job_id: &str,
        n_features: usize,
        participants: usize,
        min: usize,
    ) -> Result<JobConfig> {
        if participants == 0 || min == 0 || min > participants {
            bail!("need 1 <= --min ({min}) <= --participants ({participants})");
        }
        let rounds = self.rounds();
        if rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        let hyper = self.hyper()?;
        let (hyper_batch, hyper_steps) = (hyper.batch_size, hyper.local_steps);
        let cfg = JobConfig {
            privacy: None,
            job_id: job_id.to_string(),
            model: self.model(n_features, 2)?,
            rounds,
            participants,
            min_participants: min,
            hyper,
            server: ServerOptimizer::FedAvg {
                lr: self.server_lr.unwrap_or(1.0),
            },
            round_timeout: Duration::from_secs(self.round_timeout.unwrap_or(120)),
            join_timeout: Duration::from_secs(self.join_timeout.unwrap_or(300)),
            seed: self.seed(),
            aggregation: self.aggregation()?,
            proof: self.proofs.unwrap_or(false).then(|| {
                let d = ProofSection::default();
                let steps = self.proved_steps.or(d.steps).unwrap_or_else(|| {
                    cairn_protocol::challenge::ProvedSteps::default_for(hyper_steps)
                });
                let spec = cairn_proofs::rounds::proof_spec(
                    self.tolerance.unwrap_or(d.tolerance),
                    self.tree_depth.unwrap_or(d.tree_depth),
                    self.feature_bits.unwrap_or(d.feature_bits),
                    self.block_rows
                        .or(d.block_rows)
                        .unwrap_or_else(|| cairn_proofs::rounds::default_block_rows(hyper_batch)),
                );
                cairn_protocol::wire::ProofSpec {
                    sampled_steps: steps.sampled(hyper_steps),
                    ..spec
                }
            }),
            // Set by the caller from the table it prepared.
            data: None,
        };
        cfg.validate().context("job configuration")?;
        if let Some(spec) = &cfg.proof {
            // What the prover's fixed point cannot hold (η = lr / B, clip, τ), as a job
            // file is checked: refused now, not when the first holder proves.
            cairn_circuits::training::FixedHyper::new(&cfg.hyper, spec.tolerance).map_err(|e| {
                anyhow::anyhow!("the proofs' fixed point cannot hold these training settings: {e}")
            })?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_parsing() {
        assert!(matches!(parse_partition("iid"), Ok(Partition::Iid)));
        assert!(
            matches!(parse_partition("dirichlet:0.5"), Ok(Partition::Dirichlet { alpha }) if alpha == 0.5)
        );
        assert!(parse_partition("dirichlet:-1").is_err());
        assert!(parse_partition("dirichlet:x").is_err());
        assert!(parse_partition("shards").is_err());
    }

    #[test]
    fn config_file_fills_what_flags_leave_unset() {
        let file: ConfigFile =
            toml::from_str("[train]\nrounds = 3\nlr = 0.5\nhidden = \"none\"\n[data]\npartition = \"dirichlet:0.3\"\n")
                .expect("parse");
        let flags = TrainArgs {
            lr: Some(0.2),
            ..TrainArgs::default()
        };
        let t = flags.merge(&file.train);
        assert_eq!(t.rounds(), 3);
        assert_eq!(t.lr, Some(0.2));
        assert!(t.model(4, 2).expect("model").hidden.is_empty());
        let d = DataArgs::default().merge(&file.data);
        assert!(matches!(d.partition(), Ok(Partition::Dirichlet { .. })));
        assert!(
            toml::from_str::<ConfigFile>("[train]\nrunds = 3\n").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let t = TrainArgs {
            lr: Some(-1.0),
            ..TrainArgs::default()
        };
        assert!(t.hyper().is_err_and(|e| e.to_string().contains("--lr")));
        let t = TrainArgs {
            hidden: Some("16,x".into()),
            ..TrainArgs::default()
        };
        assert!(t
            .model(4, 2)
            .is_err_and(|e| e.to_string().contains("\"x\"")));
        assert!(TrainArgs::default().job("j", 4, 2, 3).is_err());
        // #15 item 1: what a holder's prover would refuse is refused with the flags, as a
        // job file's keys are: a clip bound past the fixed point, a tree of odd depth.
        let proven = |t: TrainArgs| {
            TrainArgs {
                proofs: Some(true),
                ..t
            }
            .job("j", 4, 5, 3)
        };
        assert!(proven(TrainArgs::default()).is_ok());
        let clip = proven(TrainArgs {
            clip: Some(200.0),
            ..TrainArgs::default()
        });
        assert!(
            clip.as_ref()
                .is_err_and(|e| format!("{e:#}").contains("clip bound 200")),
            "{clip:?}"
        );
        let depth = proven(TrainArgs {
            tree_depth: Some(7),
            ..TrainArgs::default()
        });
        assert!(
            depth
                .as_ref()
                .is_err_and(|e| format!("{e:#}").contains("tree_depth: must be even")),
            "{depth:?}"
        );
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let d = DataArgs {
                test_fraction: Some(f),
                synthetic: true,
                ..DataArgs::default()
            };
            assert!(
                d.load()
                    .is_err_and(|e| e.to_string().contains("--test-fraction")),
                "{f}"
            );
        }
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;
    use clap::Parser;

    /// The data and training flags as every subcommand flattens them.
    #[derive(Parser, Debug)]
    struct Flags {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        train: TrainArgs,
    }

    fn parse(args: &[&str]) -> std::result::Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("cairn").chain(args.iter().copied()))
    }

    /// The error a flag value gives, rendered as clap prints it.
    fn refusal(args: &[&str]) -> String {
        match parse(args) {
            Ok(f) => panic!("{args:?} parsed: {f:?}"),
            Err(e) => {
                use clap::error::ErrorKind;
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ValueValidation | ErrorKind::InvalidValue
                    ),
                    "{e}"
                );
                e.to_string()
            }
        }
    }

    #[test]
    fn bad_values_are_refused_as_the_flags_are_parsed() {
        let e = refusal(&["--hidden", "16,x"]);
        assert!(e.contains("invalid value '16,x' for '--hidden"), "{e}");
        assert!(e.contains("\"x\" is not a number"), "{e}");
        let e = refusal(&["--hidden", "16,0"]);
        assert!(e.contains("'--hidden") && e.contains("positive"), "{e}");
        let e = refusal(&["--partition", "dirichlet:abc"]);
        assert!(
            e.contains("invalid value 'dirichlet:abc' for '--partition"),
            "{e}"
        );
        assert!(e.contains("\"abc\" is not a number"), "{e}");
        for bad in [
            "dirichlet:-1",
            "dirichlet:0",
            "dirichlet:inf",
            "shards",
            "iid:2",
        ] {
            let e = refusal(&["--partition", bad]);
            assert!(e.contains("'--partition"), "{bad}: {e}");
        }
        let e = refusal(&["--delimiter", ":"]);
        assert!(e.contains("invalid value ':' for '--delimiter"), "{e}");
        let e = refusal(&["--aggregation", "sekure"]);
        assert!(e.contains("'--aggregation"), "{e}");
    }

    #[test]
    fn good_values_parse_to_what_they_say() {
        let f = parse(&[
            "--hidden",
            "32, 16",
            "--partition",
            "dirichlet:0.5",
            "--delimiter",
            "tab",
            "--aggregation",
            "plain",
        ])
        .expect("parses");
        assert_eq!(f.train.model(4, 2).expect("model").hidden, vec![32, 16]);
        assert!(matches!(f.data.partition(), Ok(Partition::Dirichlet { alpha }) if alpha == 0.5));
        assert_eq!(f.data.load_options().delimiter, Some(b'\t'));
        assert!(matches!(f.train.aggregation(), Ok(Aggregation::Plain)));
        for (text, byte) in [
            (",", b','),
            (";", b';'),
            ("|", b'|'),
            ("\\t", b'\t'),
            ("TAB", b'\t'),
        ] {
            assert_eq!(text.parse::<Delimiter>(), Ok(Delimiter(byte)), "{text}");
        }
        let none = parse(&["--hidden", "none"]).expect("parses");
        assert!(none.train.model(4, 2).expect("model").hidden.is_empty());
        let unset = parse(&[]).expect("parses");
        assert!(matches!(unset.data.partition(), Ok(Partition::Iid)));
        assert_eq!(
            unset.data.load_options().delimiter,
            None,
            "by the file's name"
        );
        assert_eq!(unset.train.model(4, 2).expect("model").hidden, vec![16]);
    }

    #[test]
    fn config_values_are_checked_naming_the_key() {
        let err = |text: &str| -> String {
            match toml::from_str::<ConfigFile>(text) {
                Ok(_) => panic!("{text:?} parsed"),
                Err(e) => e.to_string(),
            }
        };
        let e = err("[data]\npartition = \"dirichlet:abc\"\n");
        assert!(
            e.contains("[data] partition: dirichlet alpha \"abc\" is not a number"),
            "{e}"
        );
        let e = err("[train]\nhidden = \"16,x\"\n");
        assert!(e.contains("[train] hidden: hidden width \"x\""), "{e}");
        let e = err("[data]\ndelimiter = \"::\"\n");
        assert!(e.contains("[data] delimiter:"), "{e}");
        let e = err("[train]\naggregation = \"sekure\"\n");
        assert!(e.contains("[train] aggregation:"), "{e}");

        let file: ConfigFile = toml::from_str(
            "[data]\npartition = \"dirichlet:0.5\"\ndelimiter = \";\"\nlabels = \"l.csv\"\ndata = \"t.csv.gz\"\n\
             [train]\nhidden = \"8,4\"\naggregation = \"plain\"\n",
        )
        .expect("a good config parses");
        let d = DataArgs::default().merge(&file.data);
        assert!(matches!(d.partition(), Ok(Partition::Dirichlet { alpha }) if alpha == 0.5));
        assert_eq!(d.load_options().delimiter, Some(b';'));
        assert_eq!(d.labels, Some(PathBuf::from("l.csv")));
        let t = TrainArgs::default().merge(&file.train);
        assert_eq!(t.model(3, 2).expect("model").hidden, vec![8, 4]);
        // Flags win over the file.
        let flags = parse(&["--partition", "iid", "--delimiter", "|"]).expect("parses");
        let d = flags.data.merge(&file.data);
        assert!(matches!(d.partition(), Ok(Partition::Iid)));
        assert_eq!(d.load_options().delimiter, Some(b'|'));
    }

    #[test]
    fn labels_need_a_transaction_export() {
        let d = DataArgs {
            labels: Some(PathBuf::from("labels.csv")),
            ..DataArgs::default()
        };
        let e = d.load().expect_err("labels without --data");
        assert!(e.to_string().contains("--data TXS"), "{e}");
        let d = DataArgs {
            labels: Some(PathBuf::from("labels.csv")),
            synthetic: true,
            ..DataArgs::default()
        };
        assert!(d
            .load()
            .is_err_and(|e| e.to_string().contains("--synthetic")));
        let dir = tempfile::tempdir().expect("temp dir");
        let d = DataArgs {
            data: Some(dir.path().join("absent.csv.gz")),
            labels: Some(dir.path().join("labels.csv")),
            ..DataArgs::default()
        };
        let e = format!("{:#}", d.load().expect_err("absent files"));
        assert!(
            e.contains("absent.csv.gz") || e.contains("labels.csv"),
            "{e}"
        );
    }
}
