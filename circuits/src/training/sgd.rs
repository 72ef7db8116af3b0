//! K steps of mini-batch SGD of the job's MLP (ReLU hidden layers, logistic output, binary
//! cross-entropy) in fixed point, written once for both [`Arith`] implementations.
//!
//! Parameters use `cairn_model`'s layout (per layer `W` row-major `[n_out, n_in]`,
//! then the bias). After the first update the parameters are carried at the finer scale
//! `2^(F + WEIGHT_SHIFT) = 2^48` and rescaled once at the end of the K steps ([`train`]), so a
//! weight update needs no rescale of its own. Per step, with `η = lr / B` at scale 2^F and
//! the parameters at scale `2^(F + s)` (`s = 0` in the first step, `WEIGHT_SHIFT` after):
//!
//! - forward: `z = rescale(W·a + b·2^F, F + s)`, `a' = relu(z)` (hidden) or `p = σ(z)`;
//! - backward: `δ_out = p − y`; `δ_hidden = [z ≥ 0] · rescale(Wᵀ·δ, F + s)`;
//! - update, exact at scale 2^48: `W ← W·2^(32 − s) − η · Σ_batch δ·aᵀ` and
//!   `b ← b·2^(32 − s) − η · Σ_batch δ · 2^F`.
//!
//! The first step reads the committed model at its own scale, which gives the same `z` as
//! reading it lifted to 2^48 (the lift is exact) with a 16-bit instead of a 48-bit remainder.
//! Every dot product is summed exactly and rescaled once; each parameter is rescaled once per
//! round (`floor((w_K + 2^31) / 2^32)`, to nearest) instead of once per step.

use cairn_model::ModelSpec;

use super::arith::Arith;
use crate::fixed::FRAC_BITS;

/// Extra fractional bits the parameters carry within the K steps (scale `2^(F + 32)`).
pub(crate) const WEIGHT_SHIFT: u32 = 2 * FRAC_BITS;

/// K SGD steps from `model` (scale 2^F) on `batches`, returning `w_K` at scale 2^F: the
/// parameters are lifted to scale 2^(F + [`WEIGHT_SHIFT`]) (exactly), trained, and rescaled
/// once (to nearest, range-checked to the value width).
pub(crate) fn train<A: Arith>(
    a: &mut A,
    spec: &ModelSpec,
    model: &[A::V],
    batches: &[Vec<Vec<A::V>>],
    step: &A::V,
) -> Result<Vec<A::V>, A::Error> {
    let mut params = model.to_vec();
    let mut shift = 0;
    for batch in batches {
        params = sgd_step(a, spec, &params, shift, batch, step)?;
        shift = WEIGHT_SHIFT;
    }
    if shift == 0 {
        // No steps: the model unchanged (not reached by valid shapes, K ≥ 1).
        return Ok(params);
    }
    finish(a, &params)
}

/// The parameters at scale 2^16 lifted exactly to 2^(F + [`WEIGHT_SHIFT`]) = 2^48.
pub(crate) fn lift<A: Arith>(a: &A, model: &[A::V]) -> Vec<A::V> {
    model
        .iter()
        .map(|w| {
            let mut w = w.clone();
            for _ in 0..WEIGHT_SHIFT / FRAC_BITS {
                w = a.upscale(&w);
            }
            w
        })
        .collect()
}

/// One SGD step on parameters at scale 2^48 (a step after the first, or any step of a
/// sampled-step proof): gives exactly what [`train`]'s step gives.
pub(crate) fn fine_step<A: Arith>(
    a: &mut A,
    spec: &ModelSpec,
    params: &[A::V],
    batch: &[Vec<A::V>],
    step: &A::V,
) -> Result<Vec<A::V>, A::Error> {
    sgd_step(a, spec, params, WEIGHT_SHIFT, batch, step)
}

/// The parameters at 2^48 rescaled to 2^16, to nearest (ties up): `floor((w + 2^31) /
/// 2^32)`, range-checked, so the one rescale of a round adds no bias.
pub(crate) fn finish<A: Arith>(a: &mut A, params: &[A::V]) -> Result<Vec<A::V>, A::Error> {
    let half = a.constant(1i128 << (WEIGHT_SHIFT - 1));
    params
        .iter()
        .map(|w| {
            let s = a.rescale(&a.add(w, &half), WEIGHT_SHIFT)?;
            Ok(a.value(&s))
        })
        .collect()
}

/// One SGD step on `batch` (each row: features, then the label), on parameters at scale
/// `2^(F + shift)` (`shift` is 0 or [`WEIGHT_SHIFT`]). Returns the new parameters at scale
/// 2^(F + [`WEIGHT_SHIFT`]).
fn sgd_step<A: Arith>(
    a: &mut A,
    spec: &ModelSpec,
    params: &[A::V],
    shift: u32,
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
                let s = a.rescale(&z, FRAC_BITS + shift)?;
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
                let s = a.rescale(&back, FRAC_BITS + shift)?;
                let v = a.value(&s);
                below.push(a.gate(&gates[li - 1][i], &v));
            }
            row_deltas[li - 1] = below;
        }
        inputs.push(row_inputs);
        deltas.push(row_deltas);
    }
    // The parameters lifted to 2^(F + WEIGHT_SHIFT): exact, free (constant multiples).
    let mut new: Vec<A::V> = params
        .iter()
        .map(|w| {
            let mut w = w.clone();
            for _ in 0..(WEIGHT_SHIFT - shift) / FRAC_BITS {
                w = a.upscale(&w);
            }
            w
        })
        .collect();
    for (li, l) in layers.iter().enumerate() {
        for o in 0..l.n_out {
            let ds: Vec<A::V> = deltas.iter().map(|d| d[li][o].clone()).collect();
            for i in 0..l.n_in {
                let xs: Vec<A::V> = inputs.iter().map(|x| x[li][i].clone()).collect();
                // δ·a at 2^(2F), times η at 2^F: exactly the weights' scale 2^(3F).
                let g = a.dot(&ds, &xs);
                let eg = a.mul(step, &g);
                let k = l.w_offset + o * l.n_in + i;
                new[k] = a.sub(&new[k], &eg);
            }
            let mut gb = ds[0].clone();
            for d in &ds[1..] {
                gb = a.add(&gb, d);
            }
            // δ at 2^F, times η: 2^(2F), lifted to 2^(3F).
            let eg = a.mul(step, &gb);
            let k = l.b_offset + o;
            new[k] = a.sub(&new[k], &a.upscale(&eg));
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{dequantize, quantize};
    use crate::training::arith::Native;
    use cairn_model::{logit, sigmoid};
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
        let spec = ModelSpec::mlp(4, vec![3]);
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
        let got = train(&mut Native, &spec, &q(&p), &[qb], &step).unwrap();
        for (g, w) in got.iter().zip(&want) {
            let g = dequantize(*g as i64);
            // The sigmoid approximation (≤ 0.0035) times lr bounds the difference.
            assert!((g - w).abs() < 3e-3, "fixed {g} vs float {w}");
        }
        assert_ne!(got, q(&p), "the step must move the parameters");
    }
}
