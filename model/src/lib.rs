//! The job's model: an MLP with ReLU hidden layers and a logistic output (binary labels)
//! or a softmax output (K ≥ 3 classes), as a flat parameter vector with one fixed layout
//! shared by the trainers (tch, native), the coordinator's evaluation, the wire, and the
//! proof circuit (which proves binary models only).
//!
//! Layout: for each layer `l` (inputs `n_in`, outputs `n_out`), first the weight matrix
//! `W_l` row-major with shape `[n_out, n_in]` (the shape `torch.nn.Linear` uses), then the
//! bias `b_l` of length `n_out`. The last layer has [`ModelSpec::outputs`] outputs: one
//! logit (probability of class 1 by the sigmoid), or K logits (class probabilities by the
//! softmax).

use serde::{Deserialize, Serialize};

pub mod sampling;

/// Largest model a job may use: bounds every allocation a peer can cause.
pub const MAX_PARAMS: usize = 16 * 1024 * 1024;

/// Most classes a model may predict: the data's limit, one fact
/// ([`cairn_datasets::MAX_CLASSES`]).
pub const MAX_CLASSES: usize = cairn_datasets::MAX_CLASSES;

fn one_output() -> usize {
    1
}

/// The shape of the job's model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Number of input features.
    pub n_features: usize,
    /// Widths of the ReLU hidden layers; empty means logistic (or softmax) regression.
    pub hidden: Vec<usize>,
    /// Outputs of the last layer: 1 for two classes (one logit, the sigmoid gives class
    /// 1's probability), K for K ≥ 3 classes (K logits, the softmax gives each class's
    /// probability). Never 2: a two-class model has one output. Descriptions written
    /// before multi-class models (JSON) read as 1.
    #[serde(default = "one_output")]
    pub outputs: usize,
}

/// One dense layer's place in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    /// Inputs of the layer.
    pub n_in: usize,
    /// Outputs of the layer.
    pub n_out: usize,
    /// Offset of the weight matrix (row-major `[n_out, n_in]`).
    pub w_offset: usize,
    /// Offset of the bias vector (`n_out`).
    pub b_offset: usize,
}

/// Why a model shape or parameter vector is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// An output count other than 1 or 3..=[`MAX_CLASSES`].
    #[error("model has {0} outputs: want 1 (two classes) or 3 to {MAX_CLASSES} (one per class)")]
    Outputs(usize),
    /// A zero-width layer or zero features.
    #[error("model has a zero-width layer (features {n_features}, hidden {hidden:?})")]
    ZeroWidth {
        /// Input features.
        n_features: usize,
        /// Hidden widths.
        hidden: Vec<usize>,
    },
    /// More parameters than [`MAX_PARAMS`].
    #[error("model has {0} parameters, more than the limit {MAX_PARAMS}")]
    TooLarge(usize),
    /// A parameter vector of the wrong length.
    #[error("parameter vector has {got} values, the model needs {want}")]
    WrongLength {
        /// Length received.
        got: usize,
        /// Length the spec implies.
        want: usize,
    },
}

impl ModelSpec {
    /// Logistic regression on `n_features` inputs.
    pub fn logistic(n_features: usize) -> Self {
        Self::mlp(n_features, Vec::new())
    }

    /// A binary classifier (one output) with the ReLU hidden layers `hidden`.
    pub fn mlp(n_features: usize, hidden: Vec<usize>) -> Self {
        Self {
            n_features,
            hidden,
            outputs: 1,
        }
    }

    /// The same layers predicting `classes` classes: one output for two, else one per class.
    pub fn with_classes(mut self, classes: usize) -> Self {
        self.outputs = if classes == 2 { 1 } else { classes };
        self
    }

    /// Number of classes the model tells apart: 2 for one output, else the outputs.
    pub fn classes(&self) -> usize {
        if self.outputs == 1 {
            2
        } else {
            self.outputs
        }
    }

    /// Whether the model is a binary classifier (one logit, sigmoid output).
    pub fn is_binary(&self) -> bool {
        self.outputs == 1
    }

    /// Checks the shape is non-degenerate and within [`MAX_PARAMS`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.outputs != 1 && !(3..=MAX_CLASSES).contains(&self.outputs) {
            return Err(ModelError::Outputs(self.outputs));
        }
        if self.n_features == 0 || self.hidden.contains(&0) {
            return Err(ModelError::ZeroWidth {
                n_features: self.n_features,
                hidden: self.hidden.clone(),
            });
        }
        // Checked arithmetic: a peer-supplied spec must not overflow.
        let mut total: usize = 0;
        let mut n_in = self.n_features;
        for &n_out in self.hidden.iter().chain(std::iter::once(&self.outputs)) {
            let layer = n_in
                .checked_mul(n_out)
                .and_then(|w| w.checked_add(n_out))
                .ok_or(ModelError::TooLarge(usize::MAX))?;
            total = total
                .checked_add(layer)
                .ok_or(ModelError::TooLarge(usize::MAX))?;
            n_in = n_out;
        }
        if total > MAX_PARAMS {
            return Err(ModelError::TooLarge(total));
        }
        Ok(())
    }

    /// The layers in order, with their offsets in the flat vector.
    pub fn layers(&self) -> Vec<LayerShape> {
        let mut out = Vec::with_capacity(self.hidden.len() + 1);
        let mut offset = 0;
        let mut n_in = self.n_features;
        for &n_out in self.hidden.iter().chain(std::iter::once(&self.outputs)) {
            let w_offset = offset;
            let b_offset = w_offset + n_in * n_out;
            offset = b_offset + n_out;
            out.push(LayerShape {
                n_in,
                n_out,
                w_offset,
                b_offset,
            });
            n_in = n_out;
        }
        out
    }

    /// Total number of parameters.
    pub fn param_count(&self) -> usize {
        self.layers().last().map_or(0, |l| l.b_offset + l.n_out)
    }

    /// Checks `params` has this model's length.
    pub fn check_params(&self, params: &[f32]) -> Result<(), ModelError> {
        let want = self.param_count();
        if params.len() != want {
            return Err(ModelError::WrongLength {
                got: params.len(),
                want,
            });
        }
        Ok(())
    }

    /// Deterministic initial parameters: Kaiming-uniform weights as `torch.nn.Linear` draws
    /// them (bound 1/sqrt(n_in)), zero biases, from a seeded ChaCha stream.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut p = vec![0.0f32; self.param_count()];
        for l in self.layers() {
            let bound = 1.0 / (l.n_in as f32).sqrt();
            for w in &mut p[l.w_offset..l.b_offset] {
                *w = rng.gen_range(-bound..bound);
            }
        }
        p
    }

    /// A short human-readable name, e.g. `45→16→1` (`45→16→3` for three classes).
    pub fn describe(&self) -> String {
        let mut s = self.n_features.to_string();
        for h in self.hidden.iter().chain(std::iter::once(&self.outputs)) {
            s.push('→');
            s.push_str(&h.to_string());
        }
        s
    }
}

/// Hyper-parameters of one round's local training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HyperParams {
    /// Local SGD steps K.
    pub local_steps: u32,
    /// Mini-batch size B.
    pub batch_size: u32,
    /// Learning rate of local SGD.
    pub learning_rate: f32,
    /// L2 bound the update is clipped to (robustness, and the proof's norm bound).
    pub clip_norm: f32,
}

/// Most local steps a round may ask for.
pub const MAX_LOCAL_STEPS: u32 = 100_000;
/// Largest batch a round may ask for.
pub const MAX_BATCH: u32 = 1 << 16;
/// Most rows a round may draw (K · B): its batches are sent to the trainer as indices.
pub const MAX_ROUND_ROWS: u64 = 1 << 24;
/// Largest local learning rate: past it f32 SGD on standardised features diverges to
/// non-finite updates within a few steps (a job asking for more is refused up front
/// rather than failing in every holder).
pub const MAX_LEARNING_RATE: f32 = 1000.0;
/// Largest clip bound.
pub const MAX_CLIP_NORM: f32 = 1.0e6;

impl HyperParams {
    /// What a holder refuses to train with, field by field (`steps`, `batch`, `lr`,
    /// `clip`) with the reason; empty when the parameters are usable. The coordinator
    /// checks a job with this before it starts and every holder checks each round spec.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, v, max) in [
            ("steps", self.local_steps, MAX_LOCAL_STEPS),
            ("batch", self.batch_size, MAX_BATCH),
        ] {
            if v == 0 {
                out.push((field, "must be at least 1".to_string()));
            } else if v > max {
                out.push((
                    field,
                    format!("must be at most {max} (holders refuse more), got {v}"),
                ));
            }
        }
        let rows = u64::from(self.local_steps) * u64::from(self.batch_size);
        if rows > MAX_ROUND_ROWS {
            out.push((
                "batch",
                format!(
                    "steps × batch must be at most {MAX_ROUND_ROWS} rows a round (holders refuse more), got {rows}"
                ),
            ));
        }
        for (field, v, max, why) in [
            (
                "lr",
                self.learning_rate,
                MAX_LEARNING_RATE,
                " (SGD diverges to non-finite updates past it)",
            ),
            ("clip", self.clip_norm, MAX_CLIP_NORM, ""),
        ] {
            if !(v.is_finite() && v > 0.0) {
                out.push((field, format!("must be positive, got {v}")));
            } else if v > max {
                out.push((field, format!("must be at most {max}{why}, got {v}")));
            }
        }
        out
    }
}

impl Default for HyperParams {
    fn default() -> Self {
        Self {
            local_steps: 20,
            batch_size: 32,
            learning_rate: 0.1,
            clip_norm: 10.0,
        }
    }
}

/// Numerically stable logistic function.
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The model's output layer for one row (`x.len() == n_features`), in f32: its
/// [`ModelSpec::outputs`] logits.
///
/// This is the reference forward pass: the coordinator evaluates with it, and the tch
/// trainer's forward must agree with it to float precision (tested in `participant`).
pub fn logits(spec: &ModelSpec, params: &[f32], x: &[f32]) -> Vec<f32> {
    let mut act: Vec<f32> = x.to_vec();
    let layers = spec.layers();
    for (i, l) in layers.iter().enumerate() {
        let mut next = vec![0.0f32; l.n_out];
        for (o, out) in next.iter_mut().enumerate() {
            let row = &params[l.w_offset + o * l.n_in..l.w_offset + (o + 1) * l.n_in];
            let z: f32 =
                row.iter().zip(&act).map(|(w, a)| w * a).sum::<f32>() + params[l.b_offset + o];
            *out = if i + 1 < layers.len() { z.max(0.0) } else { z };
        }
        act = next;
    }
    act
}

/// The first logit of one row: a binary model's only one ([`logits`]).
pub fn logit(spec: &ModelSpec, params: &[f32], x: &[f32]) -> f32 {
    logits(spec, params, x).first().copied().unwrap_or(f32::NAN)
}

/// Numerically stable softmax of `z`, in place (the maximum is subtracted first).
pub fn softmax_in_place(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

/// Probability of class 1 for a row-major batch of rows of a binary model (for a
/// multi-class model use [`class_probabilities`]).
pub fn predict_proba(spec: &ModelSpec, params: &[f32], rows: &[f32]) -> Vec<f32> {
    rows.chunks_exact(spec.n_features)
        .map(|x| sigmoid(logit(spec, params, x)))
        .collect()
}

/// Each class's probability for a row-major batch of rows: row-major
/// `rows × spec.classes()`, `[1 − p, p]` for a binary model, the softmax of the logits
/// for a multi-class one.
pub fn class_probabilities(spec: &ModelSpec, params: &[f32], rows: &[f32]) -> Vec<f32> {
    let k = spec.classes();
    let mut out = Vec::with_capacity(rows.len() / spec.n_features.max(1) * k);
    for x in rows.chunks_exact(spec.n_features) {
        let mut z = logits(spec, params, x);
        if spec.is_binary() {
            let p = sigmoid(z[0]);
            out.extend([1.0 - p, p]);
        } else {
            softmax_in_place(&mut z);
            out.extend(z);
        }
    }
    out
}

/// Scales `update` down in place so its L2 norm is at most `clip`; returns the norm before.
pub fn clip_l2(update: &mut [f32], clip: f32) -> f32 {
    let norm = update
        .iter()
        .map(|v| f64::from(*v) * f64::from(*v))
        .sum::<f64>()
        .sqrt() as f32;
    if norm > clip && norm > 0.0 {
        let s = clip / norm;
        update.iter_mut().for_each(|v| *v *= s);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_a_two_layer_mlp() {
        let spec = ModelSpec::mlp(3, vec![2]);
        let l = spec.layers();
        assert_eq!(
            l[0],
            LayerShape {
                n_in: 3,
                n_out: 2,
                w_offset: 0,
                b_offset: 6
            }
        );
        assert_eq!(
            l[1],
            LayerShape {
                n_in: 2,
                n_out: 1,
                w_offset: 8,
                b_offset: 10
            }
        );
        assert_eq!(spec.param_count(), 11);
        assert_eq!(spec.describe(), "3→2→1");
    }

    #[test]
    fn forward_matches_hand_computation() {
        let spec = ModelSpec::mlp(2, vec![2]);
        // W1 = [[1, -1], [0.5, 0.5]], b1 = [0, -1]; W2 = [[2, 3]], b2 = [0.25]
        let p = [1.0, -1.0, 0.5, 0.5, 0.0, -1.0, 2.0, 3.0, 0.25];
        // x = [2, 1]: h = relu([1, 0.5]) = [1, 0.5]; z = 2 + 1.5 + 0.25
        assert!((logit(&spec, &p, &[2.0, 1.0]) - 3.75).abs() < 1e-6);
        // x = [-1, 1]: h = relu([-2, -1]) = [0, 0]; z = 0.25
        assert!((logit(&spec, &p, &[-1.0, 1.0]) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn validation_rejects_degenerate_and_huge_models() {
        assert!(ModelSpec::mlp(0, vec![]).validate().is_err());
        assert!(ModelSpec::mlp(4, vec![0]).validate().is_err());
        assert!(matches!(
            ModelSpec::mlp(1 << 20, vec![1 << 20]).validate(),
            Err(ModelError::TooLarge(_))
        ));
        assert!(ModelSpec::mlp(usize::MAX, vec![usize::MAX])
            .validate()
            .is_err());
        assert!(ModelSpec::logistic(45).validate().is_ok());
    }

    #[test]
    fn output_counts_follow_the_classes() {
        let three = ModelSpec::mlp(3, vec![2]).with_classes(3);
        assert_eq!((three.outputs, three.classes()), (3, 3));
        assert_eq!(three.describe(), "3→2→3");
        assert_eq!(three.param_count(), 3 * 2 + 2 + 2 * 3 + 3);
        assert!(three.validate().is_ok());
        // Two classes are one output (sigmoid), never two.
        let two = ModelSpec::logistic(3).with_classes(2);
        assert_eq!((two.outputs, two.classes(), two.is_binary()), (1, 2, true));
        for bad in [0, 2, MAX_CLASSES + 1] {
            let spec = ModelSpec {
                outputs: bad,
                ..ModelSpec::logistic(3)
            };
            assert_eq!(spec.validate(), Err(ModelError::Outputs(bad)));
        }
    }

    #[test]
    fn class_probabilities_are_the_softmax_of_the_logits() {
        // Softmax regression on 2 features, 3 classes: W = [[1,0],[0,1],[-1,-1]], b = 0.
        let spec = ModelSpec::logistic(2).with_classes(3);
        let p = [1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0];
        let x = [1.0, 2.0];
        assert_eq!(logits(&spec, &p, &x), vec![1.0, 2.0, -3.0]);
        let probs = class_probabilities(&spec, &p, &x);
        let denom = 1f32.exp() + 2f32.exp() + (-3f32).exp();
        for (got, z) in probs.iter().zip([1.0f32, 2.0, -3.0]) {
            assert!((got - z.exp() / denom).abs() < 1e-6, "{got}");
        }
        // Large logits do not overflow.
        let mut big = vec![1000.0, 0.0, 1000.0];
        softmax_in_place(&mut big);
        assert!((big[0] - 0.5).abs() < 1e-6 && big[1] == 0.0, "{big:?}");
        // A binary model's class probabilities are [1 − p, p].
        let bin = ModelSpec::logistic(2);
        let q = class_probabilities(&bin, &[1.0, -1.0, 0.5], &x);
        let p1 = sigmoid(1.0 - 2.0 + 0.5);
        assert!((q[1] - p1).abs() < 1e-6 && (q[0] - (1.0 - p1)).abs() < 1e-6);
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let mut u = vec![3.0, 4.0];
        assert_eq!(clip_l2(&mut u, 1.0), 5.0);
        assert!((u[0] - 0.6).abs() < 1e-6 && (u[1] - 0.8).abs() < 1e-6);
        let mut v = vec![0.3, 0.4];
        clip_l2(&mut v, 1.0);
        assert_eq!(v, vec![0.3, 0.4]);
    }

    #[test]
    fn steps_times_batch_is_bounded() {
        // #12 item 8: each bound alone holds, their product (rows a round draws) does not.
        let h = HyperParams {
            local_steps: MAX_LOCAL_STEPS,
            batch_size: MAX_BATCH,
            ..HyperParams::default()
        };
        let p = h.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "batch");
        assert!(
            p[0].1.contains("steps × batch must be at most"),
            "{}",
            p[0].1
        );
        let ok = HyperParams {
            local_steps: 256,
            batch_size: 1 << 16,
            ..HyperParams::default()
        };
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
    }

    #[test]
    fn init_is_seeded() {
        let spec = ModelSpec::mlp(5, vec![4]);
        assert_eq!(spec.init_params(7), spec.init_params(7));
        assert_ne!(spec.init_params(7), spec.init_params(8));
    }
}
