//! K steps of mini-batch SGD of the job's MLP (ReLU hidden layers, logistic output, binary
//! cross-entropy) in fixed point, written once for both [`Arith`] implementations.
//!
//! Parameters use `cairn_protocol::model`'s layout (per layer `W` row-major `[n_out, n_in]`,
//! then the bias). Per step, with `η = lr / B` in fixed point:
//!
//! - forward: `z = rescale(W·a + b·2^F)`, `a' = relu(z)` (hidden) or `p = σ(z)` (output);
//! - backward: `δ_out = p − y`; `δ_hidden = [z ≥ 0] · rescale(Wᵀ·δ)`;
//! - update: `W −= rescale(η · Σ_batch δ·aᵀ, 2F)`, `b −= rescale(η · Σ_batch δ, F)`.
//!
//! Every dot product is summed exactly and rescaled once.

use cairn_protocol::model::ModelSpec;

use super::arith::Arith;
use crate::fixed::FRAC_BITS;

/// One SGD step on `batch` (each row: features, then the label). Returns the new parameters.
pub(crate) fn sgd_step<A: Arith>(
    a: &mut A,
    spec: &ModelSpec,
    params: &[A::V],
    batch: &[Vec<A::V>],
    step: &A::V,
) -> Result<Vec<A::V>, A::Error> {
    let layers = spec.layers();
    let nl = layers.len();
    let nf = spec.n_features;
    // inputs[r][l]: the input of layer l for row r; deltas[r][l]: gradient at layer l's output.
    let mut inputs: Vec<Vec<Vec<A::V>>> = Vec::with_capacity(batch.len());
    let mut deltas: Vec<Vec<Vec<A::V>>> = Vec::with_capacity(batch.len());
    for row in batch {
        let mut input = row[..nf].to_vec();
        let mut row_inputs = Vec::with_capacity(nl);
        let mut gates: Vec<Vec<A::Bit>> = Vec::with_capacity(nl);
        for (li, l) in layers.iter().enumerate() {
            let mut out = Vec::with_capacity(l.n_out);
            let mut gs = Vec::with_capacity(l.n_out);
            for o in 0..l.n_out {
                let w = &params[l.w_offset + o * l.n_in..l.w_offset + (o + 1) * l.n_in];
                let wa = a.dot(w, &input);
                let z = a.add(&wa, &a.upscale(&params[l.b_offset + o]));
                let s = a.rescale(&z, FRAC_BITS)?;
                if li + 1 < nl {
                    let g = a.active(&s);
                    let v = a.value(&s);
                    out.push(a.gate(&g, &v));
                    gs.push(g);
                } else {
                    out.push(a.sigmoid(&s)?);
                }
            }
            row_inputs.push(std::mem::replace(&mut input, out));
            gates.push(gs);
        }
        let mut row_deltas: Vec<Vec<A::V>> = vec![Vec::new(); nl];
        row_deltas[nl - 1] = vec![a.sub(&input[0], &row[nf])];
        for li in (1..nl).rev() {
            let l = layers[li];
            let mut below = Vec::with_capacity(l.n_in);
            for i in 0..l.n_in {
                let col: Vec<A::V> = (0..l.n_out)
                    .map(|o| params[l.w_offset + o * l.n_in + i].clone())
                    .collect();
                let back = a.dot(&col, &row_deltas[li]);
                let s = a.rescale(&back, FRAC_BITS)?;
                let v = a.value(&s);
                below.push(a.gate(&gates[li - 1][i], &v));
            }
            row_deltas[li - 1] = below;
        }
        inputs.push(row_inputs);
        deltas.push(row_deltas);
    }
    let mut new = params.to_vec();
    for (li, l) in layers.iter().enumerate() {
        for o in 0..l.n_out {
            let ds: Vec<A::V> = deltas.iter().map(|d| d[li][o].clone()).collect();
            for i in 0..l.n_in {
                let xs: Vec<A::V> = inputs.iter().map(|x| x[li][i].clone()).collect();
                let g = a.dot(&ds, &xs);
                let eg = a.mul(step, &g);
                let upd = a.rescale(&eg, 2 * FRAC_BITS)?;
                let k = l.w_offset + o * l.n_in + i;
                new[k] = a.sub(&params[k], &a.value(&upd));
            }
            let mut gb = ds[0].clone();
            for d in &ds[1..] {
                gb = a.add(&gb, d);
            }
            let eg = a.mul(step, &gb);
            let upd = a.rescale(&eg, FRAC_BITS)?;
            let k = l.b_offset + o;
            new[k] = a.sub(&params[k], &a.value(&upd));
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{dequantize, quantize};
    use crate::training::arith::Native;
    use cairn_protocol::model::{logit, sigmoid};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Float SGD with the same loss, for comparison.
    fn float_step(spec: &ModelSpec, p: &[f32], batch: &[Vec<f32>], lr: f32) -> Vec<f32> {
        let eps = 1e-3f32;
        let loss = |q: &[f32]| -> f32 {
            batch
                .iter()
                .map(|r| {
                    let pr = sigmoid(logit(spec, q, &r[..spec.n_features])).clamp(1e-7, 1.0 - 1e-7);
                    let y = r[spec.n_features];
                    -(y * pr.ln() + (1.0 - y) * (1.0 - pr).ln())
                })
                .sum::<f32>()
                / batch.len() as f32
        };
        (0..p.len())
            .map(|k| {
                let (mut up, mut dn) = (p.to_vec(), p.to_vec());
                up[k] += eps;
                dn[k] -= eps;
                p[k] - lr * (loss(&up) - loss(&dn)) / (2.0 * eps)
            })
            .collect()
    }

    #[test]
    fn fixed_point_step_tracks_float_sgd() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let spec = ModelSpec {
            n_features: 4,
            hidden: vec![3],
        };
        let p = spec.init_params(1);
        let batch: Vec<Vec<f32>> = (0..4)
            .map(|_| {
                let mut r: Vec<f32> = (0..4).map(|_| rng.gen_range(-1.0..1.0)).collect();
                r.push(f32::from(rng.gen_bool(0.5)));
                r
            })
            .collect();
        let lr = 0.5;
        let want = float_step(&spec, &p, &batch, lr);
        let q = |xs: &[f32]| -> Vec<i128> {
            xs.iter()
                .map(|&x| i128::from(quantize(x).unwrap()))
                .collect()
        };
        let qb: Vec<Vec<i128>> = batch.iter().map(|r| q(r)).collect();
        let step = i128::from(quantize(lr / 4.0).unwrap());
        let got = sgd_step(&mut Native, &spec, &q(&p), &qb, &step).unwrap();
        for (g, w) in got.iter().zip(&want) {
            let g = dequantize(*g as i64);
            // The sigmoid approximation (≤ 0.0035) times lr bounds the difference.
            assert!((g - w).abs() < 3e-3, "fixed {g} vs float {w}");
        }
        assert_ne!(got, q(&p), "the step must move the parameters");
    }
}
