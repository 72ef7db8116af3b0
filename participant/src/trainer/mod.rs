//! Local training: K steps of plain mini-batch SGD of the job's model on the rows the
//! round seed picked, returning the weight change.
//!
//! Two engines behind one [`Trainer`] trait:
//! - [`TchTrainer`]: libtorch through `tch`, autograd, on the GPU when there is one. The
//!   real training engine.
//! - [`NativeTrainer`]: the same algorithm in plain Rust `f32` with hand-written
//!   backprop. The reference the tch engine is tested against, and an engine for tests
//!   that should not depend on libtorch's numerics or devices.
//!
//! The model layout is [`cairn_protocol::model`]'s (flat vector, per layer `W` row-major
//! `[n_out, n_in]` then `b`); the loss is binary cross-entropy on the logit, averaged
//! over the batch; each step is `w ← w − lr·∇L(w; batch_k)`.

mod native;
mod tch;

pub use self::native::NativeTrainer;
pub use self::tch::{TchTrainer, DEFAULT_CPU_THREADS};

use std::str::FromStr;

use cairn_protocol::model::{logits, HyperParams, ModelError, ModelSpec};

/// Everything one round of local training needs. Borrowed: the trainer copies only what
/// it uses (the batch rows), never the whole table.
#[derive(Clone, Copy, Debug)]
pub struct TrainInput<'a> {
    /// The job's model shape.
    pub spec: &'a ModelSpec,
    /// The round's global parameters `w` (layout of [`ModelSpec::layers`]).
    pub global: &'a [f32],
    /// The participant's rows, row-major `n_rows × spec.n_features`.
    pub features: &'a [f32],
    /// One label per row, `0.0` or `1.0`.
    pub labels: &'a [f32],
    /// The round's hyper-parameters (only the learning rate is used here: K and B are
    /// already fixed by `batches`).
    pub hyper: &'a HyperParams,
    /// The K mini-batches of row indices, from `cairn_protocol::sampling::batch_indices`.
    pub batches: &'a [Vec<u32>],
}

/// What a round of local training produced.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalUpdate {
    /// `w_K − w`, not clipped (clipping is the caller's job, with the job's bound).
    pub delta: Vec<f32>,
    /// Rows seen over the K steps (the sum of the batch sizes).
    pub n_examples: u64,
    /// Mean of the K batch losses, each taken before its step.
    pub mean_loss: f32,
}

/// A local training engine.
pub trait Trainer: Send {
    /// Runs the K steps of `input.batches` from `input.global`.
    fn train(&mut self, input: &TrainInput<'_>) -> Result<LocalUpdate, TrainError>;
    /// Where the training runs, e.g. `cpu`, `cuda:0`, `native-cpu`.
    fn device(&self) -> String;
}

/// Why local training could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrainError {
    /// The model shape is degenerate or too large, or `global` has the wrong length.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// `features` is not a whole number of rows.
    #[error("features hold {len} values, not a multiple of {n_features} features per row")]
    FeaturesLength {
        /// Length of `features`.
        len: usize,
        /// Features per row.
        n_features: usize,
    },
    /// One label per row is required.
    #[error("{labels} labels for {rows} rows")]
    LabelsLength {
        /// Length of `labels`.
        labels: usize,
        /// Rows in `features`.
        rows: usize,
    },
    /// A batch row's label is no class of the model.
    #[error("row {row} has label {value}: the model's classes are 0 to {}", classes - 1)]
    Label {
        /// The row.
        row: u32,
        /// Its label.
        value: f32,
        /// The model's classes.
        classes: usize,
    },
    /// K = 0: nothing to train on.
    #[error("no mini-batches to train on")]
    NoBatches,
    /// A mini-batch without rows.
    #[error("mini-batch {step} is empty")]
    EmptyBatch {
        /// Index of the batch.
        step: usize,
    },
    /// A batch names a row the table does not have.
    #[error("mini-batch {step} names row {row}, the table has {rows} rows")]
    RowOutOfRange {
        /// Index of the batch.
        step: usize,
        /// The offending row index.
        row: u32,
        /// Rows in the table.
        rows: usize,
    },
    /// The learning rate is NaN or infinite.
    #[error("learning rate {0} is not finite")]
    LearningRate(f32),
    /// CUDA was asked for and is not usable here.
    #[error("CUDA requested but not available (no GPU, or libtorch_cuda not linked: see gpu.md)")]
    CudaUnavailable,
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(String),
}

impl From<::tch::TchError> for TrainError {
    fn from(e: ::tch::TchError) -> Self {
        Self::Torch(e.to_string())
    }
}

/// Checked facts about a [`TrainInput`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Rows in the table.
    pub rows: usize,
    /// Sum of the batch sizes.
    pub n_examples: u64,
}

/// Validates shapes and indices: every engine calls this first, so they fail alike.
pub(crate) fn check_input(input: &TrainInput<'_>) -> Result<Checked, TrainError> {
    input.spec.validate()?;
    input.spec.check_params(input.global)?;
    let nf = input.spec.n_features;
    if !input.features.len().is_multiple_of(nf) {
        return Err(TrainError::FeaturesLength {
            len: input.features.len(),
            n_features: nf,
        });
    }
    let rows = input.features.len() / nf;
    if input.labels.len() != rows {
        return Err(TrainError::LabelsLength {
            labels: input.labels.len(),
            rows,
        });
    }
    if !input.hyper.learning_rate.is_finite() {
        return Err(TrainError::LearningRate(input.hyper.learning_rate));
    }
    if input.batches.is_empty() {
        return Err(TrainError::NoBatches);
    }
    let mut n_examples = 0u64;
    for (step, batch) in input.batches.iter().enumerate() {
        if batch.is_empty() {
            return Err(TrainError::EmptyBatch { step });
        }
        if let Some(&row) = batch.iter().find(|&&r| r as usize >= rows) {
            return Err(TrainError::RowOutOfRange { step, row, rows });
        }
        let classes = input.spec.classes();
        let is_class = |v: f32| v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes;
        if let Some(&row) = batch.iter().find(|&&r| !is_class(input.labels[r as usize])) {
            return Err(TrainError::Label {
                row,
                value: input.labels[row as usize],
                classes,
            });
        }
        n_examples += batch.len() as u64;
    }
    Ok(Checked { rows, n_examples })
}

/// Which device the tch engine should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA when `tch::Cuda::is_available()`, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA device; an error where there is none.
    Cuda,
}

/// A device name other than `auto`, `cpu` or `cuda`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown device {0:?}: expected auto, cpu or cuda")]
pub struct ParseDeviceError(pub String);

impl FromStr for DeviceChoice {
    type Err = ParseDeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            _ => Err(ParseDeviceError(s.to_owned())),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        })
    }
}

/// Binary cross-entropy of logit `z` against label `y`, in the stable form
/// `max(z, 0) − z·y + ln(1 + e^{−|z|})` (what `binary_cross_entropy_with_logits` computes).
pub fn bce_with_logit(z: f32, y: f32) -> f32 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

/// Softmax cross-entropy of the logits `z` against the class index `y`, in the stable
/// form `logsumexp(z) − z_y` (what `cross_entropy` on logits computes); +∞ for a class
/// index outside `z` (a label the model has no output for).
pub fn cross_entropy_with_logits(z: &[f32], y: f32) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
    z.get(y as usize).map_or(f32::INFINITY, |zy| lse - zy)
}

/// Mean loss of `params` over all rows of a table (binary or softmax cross-entropy, as the
/// model's outputs say), with the reference forward pass
/// [`cairn_protocol::model::logits`]. For checks and evaluation, not for speed.
pub fn evaluate_loss(
    spec: &ModelSpec,
    params: &[f32],
    features: &[f32],
    labels: &[f32],
) -> Result<f32, TrainError> {
    spec.validate()?;
    spec.check_params(params)?;
    let nf = spec.n_features;
    if !features.len().is_multiple_of(nf) {
        return Err(TrainError::FeaturesLength {
            len: features.len(),
            n_features: nf,
        });
    }
    let rows = features.len() / nf;
    if labels.len() != rows {
        return Err(TrainError::LabelsLength {
            labels: labels.len(),
            rows,
        });
    }
    if rows == 0 {
        return Ok(0.0);
    }
    let sum: f64 = features
        .chunks_exact(nf)
        .zip(labels)
        .map(|(x, &y)| {
            let z = logits(spec, params, x);
            f64::from(if spec.is_binary() {
                bce_with_logit(z[0], y)
            } else {
                cross_entropy_with_logits(&z, y)
            })
        })
        .sum();
    Ok((sum / rows as f64) as f32)
}

/// Copies the rows of every batch, in order, into one contiguous `(features, labels)`
/// pair: the engines train on slices of it, so each row is copied exactly once per step.
pub(crate) fn gather_batches(input: &TrainInput<'_>, n_examples: u64) -> (Vec<f32>, Vec<f32>) {
    let nf = input.spec.n_features;
    let n = usize::try_from(n_examples).unwrap_or(usize::MAX);
    let mut xs = Vec::with_capacity(n.saturating_mul(nf));
    let mut ys = Vec::with_capacity(n);
    for &r in input.batches.iter().flatten() {
        let r = r as usize;
        xs.extend_from_slice(&input.features[r * nf..(r + 1) * nf]);
        ys.push(input.labels[r]);
    }
    (xs, ys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choice_parses() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!(" CPU ".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda));
        assert_eq!(
            "tpu".parse::<DeviceChoice>(),
            Err(ParseDeviceError("tpu".into()))
        );
        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda] {
            assert_eq!(d.to_string().parse(), Ok(d));
        }
    }

    #[test]
    fn bce_matches_the_naive_formula_and_is_stable() {
        for (z, y) in [(0.3f32, 1.0f32), (-1.2, 0.0), (2.5, 0.0), (-0.7, 1.0)] {
            let p = 1.0 / (1.0 + (-z).exp());
            let naive = -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
            assert!((bce_with_logit(z, y) - naive).abs() < 1e-5, "z={z} y={y}");
        }
        assert!((bce_with_logit(-200.0, 1.0) - 200.0).abs() < 1e-3);
        assert!(bce_with_logit(200.0, 1.0).abs() < 1e-6);
    }

    #[test]
    fn check_input_rejects_bad_shapes_and_indices() {
        let spec = ModelSpec::logistic(2);
        let global = vec![0.0; 3];
        let features = vec![0.0; 6];
        let labels = vec![0.0; 3];
        let hyper = HyperParams::default();
        let batches = vec![vec![0, 2]];
        let ok = TrainInput {
            spec: &spec,
            global: &global,
            features: &features,
            labels: &labels,
            hyper: &hyper,
            batches: &batches,
        };
        assert_eq!(
            check_input(&ok),
            Ok(Checked {
                rows: 3,
                n_examples: 2
            })
        );

        let short = [0.0; 2];
        assert!(matches!(
            check_input(&TrainInput {
                global: &short,
                ..ok
            }),
            Err(TrainError::Model(_))
        ));
        assert!(matches!(
            check_input(&TrainInput {
                features: &features[..5],
                ..ok
            }),
            Err(TrainError::FeaturesLength { len: 5, .. })
        ));
        assert!(matches!(
            check_input(&TrainInput {
                labels: &labels[..2],
                ..ok
            }),
            Err(TrainError::LabelsLength { labels: 2, rows: 3 })
        ));
        assert_eq!(
            check_input(&TrainInput { batches: &[], ..ok }),
            Err(TrainError::NoBatches)
        );
        let empty = vec![vec![0], vec![]];
        assert_eq!(
            check_input(&TrainInput {
                batches: &empty,
                ..ok
            }),
            Err(TrainError::EmptyBatch { step: 1 })
        );
        let oob = vec![vec![3]];
        assert_eq!(
            check_input(&TrainInput {
                batches: &oob,
                ..ok
            }),
            Err(TrainError::RowOutOfRange {
                step: 0,
                row: 3,
                rows: 3
            })
        );
        let nan = HyperParams {
            learning_rate: f32::NAN,
            ..HyperParams::default()
        };
        assert!(matches!(
            check_input(&TrainInput { hyper: &nan, ..ok }),
            Err(TrainError::LearningRate(_))
        ));
    }
}
