//! Command-line and TOML options shared by the subcommands: where the data comes from,
//! the job's model and training settings. A `--config FILE` TOML supplies any value not
//! given as a flag; flags win.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_coordinator::job_file::{EnrolmentSection, ProofSection};
use cairn_datasets::{
    default_fraud_csv, load_raw_csv, prepare, synthetic_table, Dataset, LoadOptions, LoadReport,
    Partition, Prepared,
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
use serde::Deserialize;

/// Where the rows come from and how they are split.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataArgs {
    /// Labelled CSV feature table [default: the shared Ethereum fraud table, else synthetic data]
    #[arg(long)]
    pub data: Option<PathBuf>,
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
    pub partition: Option<String>,
    /// Seed of the split and the partition [default: 7]
    #[arg(long)]
    pub data_seed: Option<u64>,
}

/// The job's model and training settings.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainArgs {
    /// Hidden layer widths, comma-separated; `none` for logistic regression [default: 16]
    #[arg(long)]
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
    #[arg(long)]
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
    #[arg(long)]
    pub proved_steps: Option<cairn_protocol::challenge::ProvedSteps>,
    /// Proofs: directory of the Groth16 keys, made on first use per circuit shape [default: cairn-keys]
    #[arg(long)]
    pub keys: Option<PathBuf>,
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
            [data, label, test_fraction, partition, data_seed]
        );
        self.synthetic |= file.synthetic;
        self
    }

    /// The loader options these arguments give.
    pub fn load_options(&self) -> LoadOptions {
        let mut o = LoadOptions::with_label(self.label.clone().unwrap_or_else(|| "FLAG".into()));
        o.test_fraction = self.test_fraction.unwrap_or(0.2);
        o.seed = self.data_seed.unwrap_or(7);
        o
    }

    /// Loads and prepares the table (or the synthetic default), with a line saying which.
    /// A `--test-fraction` outside (0, 1) is refused first, as a job file's is.
    pub fn load(&self) -> Result<(Prepared, String)> {
        if let Some(f) = self.test_fraction {
            if !(f.is_finite() && f > 0.0 && f < 1.0) {
                bail!("--test-fraction must be in (0, 1), got {f}");
            }
        }
        self.load_with(&self.load_options())
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
    /// holder prepares for each job with the job's columns and transforms.
    pub fn raw_table(&self, opts: &LoadOptions) -> Result<(Dataset, LoadReport, String)> {
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
            load_raw_csv(&path, opts).with_context(|| format!("loading {}", path.display()))?;
        Ok((table, report, path.display().to_string()))
    }

    /// The partition scheme.
    pub fn partition(&self) -> Result<Partition> {
        parse_partition(self.partition.as_deref().unwrap_or("iid"))
    }
}

/// Parses `iid` or `dirichlet:ALPHA`.
pub fn parse_partition(s: &str) -> Result<Partition> {
    match s.split_once(':') {
        None if s == "iid" => Ok(Partition::Iid),
        Some(("dirichlet", a)) => {
            let alpha: f64 = a
                .parse()
                .with_context(|| format!("dirichlet alpha {a:?} is not a number"))?;
            if !(alpha.is_finite() && alpha > 0.0) {
                bail!("dirichlet alpha must be positive, got {alpha}");
            }
            Ok(Partition::Dirichlet { alpha })
        }
        _ => bail!("partition must be `iid` or `dirichlet:ALPHA`, got {s:?}"),
    }
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

    /// The model for `n_features` inputs.
    pub fn model(&self, n_features: usize) -> Result<ModelSpec> {
        let hidden = match self.hidden.as_deref().unwrap_or("16").trim() {
            "" | "none" | "0" => Vec::new(),
            s => s
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<usize>()
                        .with_context(|| format!("hidden width {w:?} is not a number"))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let spec = ModelSpec { n_features, hidden };
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

    /// The job configuration for `participants` holders (at least `min` per round).
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
            job_id: job_id.to_string(),
            model: self.model(n_features)?,
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
                let spec = cairn_circuits::rounds::proof_spec(
                    self.tolerance.unwrap_or(d.tolerance),
                    self.tree_depth.unwrap_or(d.tree_depth),
                    self.feature_bits.unwrap_or(d.feature_bits),
                    self.block_rows
                        .or(d.block_rows)
                        .unwrap_or_else(|| cairn_circuits::rounds::default_block_rows(hyper_batch)),
                );
                cairn_protocol::wire::ProofSpec {
                    sampled_steps: steps.sampled(hyper_steps),
                    ..spec
                }
            }),
        };
        cfg.validate().context("job configuration")?;
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
        assert!(t.model(4).expect("model").hidden.is_empty());
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
        assert!(t.model(4).is_err_and(|e| e.to_string().contains("\"x\"")));
        assert!(TrainArgs::default().job("j", 4, 2, 3).is_err());
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
