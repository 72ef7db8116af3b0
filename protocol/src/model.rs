//! The job's model: an MLP with ReLU hidden layers and a logistic output, as a flat
//! parameter vector with one fixed layout shared by the trainers (tch, native), the
//! coordinator's evaluation, the wire, and later the proof circuit.
//!
//! Layout: for each layer `l` (inputs `n_in`, outputs `n_out`), first the weight matrix
//! `W_l` row-major with shape `[n_out, n_in]` (the shape `torch.nn.Linear` uses), then the
//! bias `b_l` of length `n_out`. The last layer has one output: the logit.

use serde::{Deserialize, Serialize};

/// Largest model a job may use: bounds every allocation a peer can cause.
pub const MAX_PARAMS: usize = 16 * 1024 * 1024;

/// The shape of the job's model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Number of input features.
    pub n_features: usize,
    /// Widths of the ReLU hidden layers; empty means logistic regression.
    pub hidden: Vec<usize>,
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
        Self {
            n_features,
            hidden: Vec::new(),
        }
    }

    /// Checks the shape is non-degenerate and within [`MAX_PARAMS`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.n_features == 0 || self.hidden.contains(&0) {
            return Err(ModelError::ZeroWidth {
                n_features: self.n_features,
                hidden: self.hidden.clone(),
            });
        }
        // Checked arithmetic: a peer-supplied spec must not overflow.
        let mut total: usize = 0;
        let mut n_in = self.n_features;
        for &n_out in self.hidden.iter().chain(std::iter::once(&1)) {
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
        for &n_out in self.hidden.iter().chain(std::iter::once(&1)) {
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

    /// A short human-readable name, e.g. `45→16→1`.
    pub fn describe(&self) -> String {
        let mut s = self.n_features.to_string();
        for h in self.hidden.iter().chain(std::iter::once(&1)) {
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

/// The model's logit for one row (`x.len() == n_features`), in f32.
///
/// This is the reference forward pass: the coordinator evaluates with it, and the tch
/// trainer's forward must agree with it to float precision (tested in `participant`).
pub fn logit(spec: &ModelSpec, params: &[f32], x: &[f32]) -> f32 {
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
    act[0]
}

/// Probabilities for a row-major batch of rows.
pub fn predict_proba(spec: &ModelSpec, params: &[f32], rows: &[f32]) -> Vec<f32> {
    rows.chunks_exact(spec.n_features)
        .map(|x| sigmoid(logit(spec, params, x)))
        .collect()
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
        let spec = ModelSpec {
            n_features: 3,
            hidden: vec![2],
        };
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
        let spec = ModelSpec {
            n_features: 2,
            hidden: vec![2],
        };
        // W1 = [[1, -1], [0.5, 0.5]], b1 = [0, -1]; W2 = [[2, 3]], b2 = [0.25]
        let p = [1.0, -1.0, 0.5, 0.5, 0.0, -1.0, 2.0, 3.0, 0.25];
        // x = [2, 1]: h = relu([1, 0.5]) = [1, 0.5]; z = 2 + 1.5 + 0.25
        assert!((logit(&spec, &p, &[2.0, 1.0]) - 3.75).abs() < 1e-6);
        // x = [-1, 1]: h = relu([-2, -1]) = [0, 0]; z = 0.25
        assert!((logit(&spec, &p, &[-1.0, 1.0]) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn validation_rejects_degenerate_and_huge_models() {
        assert!(ModelSpec {
            n_features: 0,
            hidden: vec![]
        }
        .validate()
        .is_err());
        assert!(ModelSpec {
            n_features: 4,
            hidden: vec![0]
        }
        .validate()
        .is_err());
        assert!(matches!(
            ModelSpec {
                n_features: 1 << 20,
                hidden: vec![1 << 20]
            }
            .validate(),
            Err(ModelError::TooLarge(_))
        ));
        assert!(ModelSpec {
            n_features: usize::MAX,
            hidden: vec![usize::MAX]
        }
        .validate()
        .is_err());
        assert!(ModelSpec::logistic(45).validate().is_ok());
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
        let spec = ModelSpec {
            n_features: 5,
            hidden: vec![4],
        };
        assert_eq!(spec.init_params(7), spec.init_params(7));
        assert_ne!(spec.init_params(7), spec.init_params(8));
    }
}
