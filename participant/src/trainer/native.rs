//! The reference engine: K steps of mini-batch SGD in plain Rust `f32`, with the
//! backward pass written out by hand.
//!
//! Same algorithm and layout as the tch engine; the tests hold the two to 1e-4. It is
//! single-threaded and allocation-light but makes no attempt at speed beyond that.

use cairn_protocol::model::{sigmoid, softmax_in_place, LayerShape};

use super::{
    bce_with_logit, check_input, cross_entropy_with_logits, gather_batches, LocalUpdate,
    TrainError, TrainInput, Trainer,
};

/// Local training without libtorch.
#[derive(Clone, Debug, Default)]
pub struct NativeTrainer;

impl NativeTrainer {
    /// A native trainer (stateless).
    pub fn new() -> Self {
        Self
    }
}

impl Trainer for NativeTrainer {
    fn train(&mut self, input: &TrainInput<'_>) -> Result<LocalUpdate, TrainError> {
        let checked = check_input(input)?;
        let (xs, ys) = gather_batches(input, checked.n_examples);
        let nf = input.spec.n_features;
        let layers = input.spec.layers();
        let lr = input.hyper.learning_rate;

        let mut w = input.global.to_vec();
        let mut grad = vec![0.0f32; w.len()];
        let mut scratch = Scratch::default();
        let mut loss_sum = 0.0f64;
        let mut start = 0usize;
        for batch in input.batches {
            let b = batch.len();
            let x = &xs[start * nf..(start + b) * nf];
            let y = &ys[start..start + b];
            start += b;
            loss_sum += f64::from(step_gradient(&layers, &w, x, y, &mut grad, &mut scratch));
            for (wi, gi) in w.iter_mut().zip(&grad) {
                *wi -= lr * gi;
            }
        }
        let delta = w.iter().zip(input.global).map(|(a, b)| a - b).collect();
        Ok(LocalUpdate {
            delta,
            n_examples: checked.n_examples,
            mean_loss: (loss_sum / input.batches.len() as f64) as f32,
        })
    }

    fn device(&self) -> String {
        "native-cpu".to_owned()
    }
}

/// Buffers reused across steps.
#[derive(Default)]
struct Scratch {
    /// `acts[l]`: the input of layer `l` (`acts[0]` is the batch), row-major `b × n_in`.
    acts: Vec<Vec<f32>>,
    /// Gradient of the loss with respect to the current layer's output.
    dz: Vec<f32>,
    /// Gradient with respect to the current layer's input.
    da: Vec<f32>,
}

/// Writes the gradient of the mean loss over the batch `(x, y)` at `w` into `grad` (binary
/// cross-entropy for one output, softmax cross-entropy with class-index labels for K);
/// returns that loss.
fn step_gradient(
    layers: &[LayerShape],
    w: &[f32],
    x: &[f32],
    y: &[f32],
    grad: &mut [f32],
    s: &mut Scratch,
) -> f32 {
    let b = y.len();
    let last = layers.len() - 1;
    s.acts.resize_with(layers.len() + 1, Vec::new);
    s.acts[0].clear();
    s.acts[0].extend_from_slice(x);

    // Forward: acts[l + 1] = relu(acts[l]·Wᵀ + b), no relu on the output layer.
    for (l, shape) in layers.iter().enumerate() {
        let (head, tail) = s.acts.split_at_mut(l + 1);
        let (input, out) = (&head[l], &mut tail[0]);
        out.clear();
        out.resize(b * shape.n_out, 0.0);
        let wm = &w[shape.w_offset..shape.b_offset];
        let bias = &w[shape.b_offset..shape.b_offset + shape.n_out];
        for (row_in, row_out) in input
            .chunks_exact(shape.n_in)
            .zip(out.chunks_exact_mut(shape.n_out))
        {
            for (o, z) in row_out.iter_mut().enumerate() {
                let wr = &wm[o * shape.n_in..(o + 1) * shape.n_in];
                let v = wr.iter().zip(row_in).map(|(a, c)| a * c).sum::<f32>() + bias[o];
                *z = if l < last { v.max(0.0) } else { v };
            }
        }
    }

    // Loss and its gradient at the logits: d(mean BCE)/dz = (σ(z) − y) / b for one output;
    // d(mean CE)/dz = (softmax(z) − onehot(y)) / b for K.
    let logits = &s.acts[layers.len()];
    let k = layers[last].n_out;
    let inv_b = 1.0 / b as f32;
    let mut loss = 0.0f32;
    s.dz.clear();
    if k == 1 {
        for (&z, &t) in logits.iter().zip(y) {
            loss += bce_with_logit(z, t);
            s.dz.push((sigmoid(z) - t) * inv_b);
        }
    } else {
        for (z, &t) in logits.chunks_exact(k).zip(y) {
            loss += cross_entropy_with_logits(z, t);
            let start = s.dz.len();
            s.dz.extend_from_slice(z);
            let p = &mut s.dz[start..];
            softmax_in_place(p);
            if let Some(pt) = p.get_mut(t as usize) {
                *pt -= 1.0;
            }
            p.iter_mut().for_each(|v| *v *= inv_b);
        }
    }

    // Backward, last layer first.
    grad.iter_mut().for_each(|g| *g = 0.0);
    for (l, shape) in layers.iter().enumerate().rev() {
        let input = &s.acts[l];
        let (gw, gb) = grad[shape.w_offset..shape.b_offset + shape.n_out]
            .split_at_mut(shape.b_offset - shape.w_offset);
        for (dz_row, in_row) in
            s.dz.chunks_exact(shape.n_out)
                .zip(input.chunks_exact(shape.n_in))
        {
            for (o, &d) in dz_row.iter().enumerate() {
                gb[o] += d;
                for (g, &a) in gw[o * shape.n_in..(o + 1) * shape.n_in]
                    .iter_mut()
                    .zip(in_row)
                {
                    *g += d * a;
                }
            }
        }
        if l == 0 {
            break;
        }
        // dA = dZ·W, then through the ReLU that produced `input` (its output > 0).
        let wm = &w[shape.w_offset..shape.b_offset];
        s.da.clear();
        s.da.resize(b * shape.n_in, 0.0);
        for ((dz_row, da_row), in_row) in
            s.dz.chunks_exact(shape.n_out)
                .zip(s.da.chunks_exact_mut(shape.n_in))
                .zip(input.chunks_exact(shape.n_in))
        {
            for (o, &d) in dz_row.iter().enumerate() {
                for (a, &wv) in da_row
                    .iter_mut()
                    .zip(&wm[o * shape.n_in..(o + 1) * shape.n_in])
                {
                    *a += d * wv;
                }
            }
            for (a, &act) in da_row.iter_mut().zip(in_row) {
                if act <= 0.0 {
                    *a = 0.0;
                }
            }
        }
        std::mem::swap(&mut s.dz, &mut s.da);
    }
    loss * inv_b
}

#[cfg(test)]
mod tests {
    use cairn_protocol::model::{HyperParams, ModelSpec};

    use super::*;
    use crate::trainer::evaluate_loss;

    /// Central finite differences of the batch loss, in f64 through the reference forward.
    fn numeric_grad(spec: &ModelSpec, w: &[f32], x: &[f32], y: &[f32]) -> Vec<f32> {
        let h = 1e-3f32;
        (0..w.len())
            .map(|i| {
                let mut p = w.to_vec();
                p[i] += h;
                let up = evaluate_loss(spec, &p, x, y).expect("shapes are consistent");
                p[i] -= 2.0 * h;
                let down = evaluate_loss(spec, &p, x, y).expect("shapes are consistent");
                (up - down) / (2.0 * h)
            })
            .collect()
    }

    /// Backprop's gradient and loss at `w` on `(x, y)` against central finite differences
    /// of the reference loss; returns the gradient.
    fn checked_gradient(spec: &ModelSpec, w: &[f32], x: &[f32], y: &[f32]) -> Vec<f32> {
        let mut grad = vec![0.0; w.len()];
        let loss = step_gradient(&spec.layers(), w, x, y, &mut grad, &mut Scratch::default());
        let want_loss = evaluate_loss(spec, w, x, y).expect("shapes are consistent");
        assert!((loss - want_loss).abs() < 1e-6, "{loss} vs {want_loss}");
        let num = numeric_grad(spec, w, x, y);
        for (i, (a, n)) in grad.iter().zip(&num).enumerate() {
            assert!((a - n).abs() < 2e-3, "param {i}: backprop {a}, numeric {n}");
        }
        assert!(
            grad.iter().any(|g| g.abs() > 1e-3),
            "a gradient of all zeros proves nothing"
        );
        grad
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let spec = ModelSpec::mlp(3, vec![4, 2]);
        let x = [0.5, -1.0, 2.0, 1.5, 0.3, -0.2, -0.7, 0.9, 0.1];
        checked_gradient(&spec, &spec.init_params(11), &x, &[1.0, 0.0, 1.0]);
    }

    #[test]
    fn softmax_gradient_matches_finite_differences() {
        let spec = ModelSpec::mlp(3, vec![4]).with_classes(3);
        let x = [
            0.5, -1.0, 2.0, 1.5, 0.3, -0.2, -0.7, 0.9, 0.1, 0.0, 1.0, -1.0,
        ];
        let grad = checked_gradient(&spec, &spec.init_params(5), &x, &[2.0, 0.0, 1.0, 2.0]);
        // The output biases' gradients sum to zero: softmax − one-hot sums to 0 per row.
        let out = spec.layers()[1];
        let bias_sum: f32 = grad[out.b_offset..out.b_offset + 3].iter().sum();
        assert!(bias_sum.abs() < 1e-6, "{bias_sum}");
    }

    #[test]
    fn one_step_is_minus_lr_times_the_gradient() {
        let spec = ModelSpec::logistic(2);
        let global = [0.5, -0.25, 0.1];
        let features = [1.0, 2.0, -1.0, 0.5];
        let labels = [1.0, 0.0];
        let hyper = HyperParams {
            learning_rate: 0.5,
            ..HyperParams::default()
        };
        let batches = vec![vec![0, 1]];
        let input = TrainInput {
            spec: &spec,
            global: &global,
            features: &features,
            labels: &labels,
            hyper: &hyper,
            batches: &batches,
        };
        let up = NativeTrainer::new()
            .train(&input)
            .expect("valid input trains");
        // By hand: z0 = 0.5 − 0.5 + 0.1 = 0.1, z1 = −0.5 − 0.125 + 0.1 = −0.525.
        let (r0, r1) = (sigmoid(0.1) - 1.0, sigmoid(-0.525));
        let g = [
            (r0 - r1) / 2.0,
            (r0 * 2.0 + r1 * 0.5) / 2.0,
            (r0 + r1) / 2.0,
        ];
        for (d, gi) in up.delta.iter().zip(g) {
            assert!((d + 0.5 * gi).abs() < 1e-6, "{d} vs {}", -0.5 * gi);
        }
        assert_eq!(up.n_examples, 2);
        let want = (bce_with_logit(0.1, 1.0) + bce_with_logit(-0.525, 0.0)) / 2.0;
        assert!((up.mean_loss - want).abs() < 1e-6);
    }
}
