//! The embedded default dataset: a seeded synthetic binary problem shaped like on-chain account features.
//!
//! Each row has latent standard-normal factors `z`. A third of the observed columns are heavy-tailed
//! (`10^k · exp(1.2 z)`, like value and count aggregates), the rest shifted and scaled Gaussians, and column 1
//! misses 2% of its cells. The label is drawn from `sigmoid(w·z + 0.8 z₀z₁ − 1.2)`: learnable (a linear model
//! on the normalised features does well) but not trivially (label noise and an interaction term cap accuracy).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::options::LoadOptions;
use crate::pipeline::{finish, Prepared};
use crate::prune::prune;
use crate::report::LoadReport;
use crate::table::Dataset;

/// Fewest rows [`synthetic`] generates.
pub const MIN_SYNTHETIC_ROWS: usize = 20;

/// The raw synthetic table (before normalisation), `NaN` where a cell is missing.
pub fn synthetic_table(n_rows: usize, n_features: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let d = n_features.max(1);
    let scale = 2.5 / (d as f64).sqrt();
    let w: Vec<f64> = (0..d)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let names = (0..d)
        .map(|j| {
            if j % 3 == 0 {
                format!("heavy_{j}")
            } else {
                format!("gauss_{j}")
            }
        })
        .collect();
    let mut ds = Dataset::empty(names);
    let mut z = vec![0.0f64; d];
    let mut row = vec![0.0f32; d];
    for _ in 0..n_rows {
        z.iter_mut()
            .for_each(|v| *v = StandardNormal.sample(&mut rng));
        let interaction = if d > 1 { 0.8 * z[0] * z[1] } else { 0.0 };
        let logit = w.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>() + interaction - 1.2;
        let label = f32::from(u8::from(rng.gen::<f64>() < 1.0 / (1.0 + (-logit).exp())));
        for j in 0..d {
            row[j] = if j % 3 == 0 {
                (10f64.powi((j % 4) as i32) * (1.2 * z[j]).exp()) as f32
            } else {
                (3.0 * z[j] + j as f64) as f32
            };
        }
        if d > 1 && rng.gen::<f64>() < 0.02 {
            row[1] = f32::NAN;
        }
        ds.push_row(&row, label);
    }
    ds
}

/// The embedded default: `n_rows` (at least [`MIN_SYNTHETIC_ROWS`]) synthetic rows of `n_features` (at least 1)
/// features, prepared with `opts` exactly like a loaded CSV (options that fail
/// [`LoadOptions::validate`] are replaced by the defaults, and the report says so).
pub fn synthetic(n_rows: usize, n_features: usize, seed: u64, opts: &LoadOptions) -> Prepared {
    let mut report = LoadReport {
        source: format!("synthetic(seed {seed})"),
        label: "label".to_string(),
        ..LoadReport::default()
    };
    let defaults;
    let opts = if let Err(e) = opts.validate() {
        report
            .notes
            .push(format!("{e}; using the default options instead"));
        defaults = LoadOptions::default();
        &defaults
    } else {
        opts
    };
    let n = n_rows.max(MIN_SYNTHETIC_ROWS);
    if n != n_rows || n_features == 0 {
        report.notes.push(format!(
            "asked for {n_rows} x {n_features}; generated {n} x {}",
            n_features.max(1)
        ));
    }
    let table = synthetic_table(n, n_features, seed);
    report.rows_read = table.n_rows();
    report.positives_read = table.n_positive();
    report.columns_read = table.n_features + 1;
    let table = prune(table, opts, &mut report);
    finish(table, report, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_degenerate_requests_still_give_a_table() {
        let p = synthetic(
            0,
            0,
            1,
            &LoadOptions {
                test_fraction: 2.0,
                ..LoadOptions::default()
            },
        );
        assert_eq!(p.train.n_rows() + p.test.n_rows(), MIN_SYNTHETIC_ROWS);
        assert_eq!(p.train.n_features, 1);
        assert_eq!(p.report.notes.len(), 2, "{:?}", p.report.notes);
    }
}
