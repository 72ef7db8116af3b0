//! A logistic-regression baseline on the fraud table under different loader options, to see how much the
//! ERC20-missing label leak is worth: `cargo run -p cairn-datasets --example baseline`.

use cairn_datasets::{default_account_labels, default_account_txs, load_account_txs};
use cairn_datasets::{default_fraud_csv, load_csv, Dataset, LoadOptions, Prepared, TextPolicy};
use cairn_datasets::{ExtractOptions, Placeholders};

fn score(w: &[f64], x: &[f32]) -> f64 {
    let d = x.len();
    w[d] + x
        .iter()
        .zip(w)
        .map(|(&xi, wi)| f64::from(xi) * wi)
        .sum::<f64>()
}

/// Full-batch gradient descent on the logistic loss.
fn fit(train: &Dataset) -> Vec<f64> {
    let d = train.n_features;
    let mut w = vec![0.0; d + 1];
    for _ in 0..500 {
        let mut g = vec![0.0; d + 1];
        for i in 0..train.n_rows() {
            let x = train.row(i);
            let e = 1.0 / (1.0 + (-score(&w, x)).exp()) - f64::from(train.labels[i]);
            x.iter()
                .enumerate()
                .for_each(|(j, &xj)| g[j] += e * f64::from(xj));
            g[d] += e;
        }
        let n = train.n_rows() as f64;
        w.iter_mut()
            .zip(&g)
            .for_each(|(wi, gi)| *wi -= 0.5 * gi / n);
    }
    w
}

/// Accuracy and ROC AUC on `test`.
fn evaluate(w: &[f64], test: &Dataset) -> (f64, f64) {
    let mut scored: Vec<(f64, bool)> = (0..test.n_rows())
        .map(|i| (score(w, test.row(i)), test.labels[i] > 0.5))
        .collect();
    let acc = scored.iter().filter(|(s, y)| (*s > 0.0) == *y).count() as f64 / scored.len() as f64;
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos) = (0.0, 0.0);
    for (r, (_, y)) in scored.iter().enumerate() {
        if *y {
            rank_sum += (r + 1) as f64;
            pos += 1.0;
        }
    }
    let neg = scored.len() as f64 - pos;
    (
        acc,
        (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg).max(1.0),
    )
}

fn run(name: &str, p: &Prepared) {
    let w = fit(&p.train);
    let (acc, auc) = evaluate(&w, &p.test);
    let base = 1.0 - p.test.positive_rate().min(1.0 - p.test.positive_rate());
    println!(
        "{name:44} features {:3}  test accuracy {acc:.3} (majority {base:.3})  AUC {auc:.3}",
        p.train.n_features
    );
}

fn main() -> Result<(), cairn_datasets::DatasetError> {
    let path = default_fraud_csv();
    let runs = [
        (
            "fraud table: defaults (zero fill, text dropped)",
            LoadOptions::default(),
        ),
        (
            "fraud table: + missing indicators",
            LoadOptions {
                missing_indicators: true,
                ..LoadOptions::default()
            },
        ),
        (
            "fraud table: + one-hot token names",
            LoadOptions {
                text: TextPolicy::OneHot { max_categories: 8 },
                ..LoadOptions::default()
            },
        ),
    ];
    for (name, opts) in runs {
        run(name, &load_csv(&path, &opts)?);
    }
    for (name, placeholders) in [
        ("account txs: placeholders dropped", Placeholders::Drop),
        ("account txs: placeholders kept", Placeholders::Keep),
    ] {
        let extract = ExtractOptions {
            placeholders,
            ..ExtractOptions::default()
        };
        let (txs, labels) = (default_account_txs(), default_account_labels());
        run(
            name,
            &load_account_txs(&txs, &labels, &extract, &LoadOptions::default())?,
        );
    }
    Ok(())
}
