//! Split determinism, train-only standardisation, IID and Dirichlet partitions, and the synthetic default.

use std::collections::HashMap;

use cairn_datasets::{
    partition, partition_indices, synthetic, Dataset, LoadOptions, Partition, Prepared,
};

fn prepared(seed: u64) -> Prepared {
    synthetic(
        3000,
        12,
        42,
        &LoadOptions {
            seed,
            ..LoadOptions::default()
        },
    )
}

fn keys(d: &Dataset) -> Vec<Vec<u32>> {
    (0..d.n_rows())
        .map(|i| {
            d.row(i)
                .iter()
                .map(|v| v.to_bits())
                .chain([d.labels[i].to_bits()])
                .collect()
        })
        .collect()
}

#[test]
fn split_is_deterministic_by_seed() {
    let a = prepared(1);
    let b = prepared(1);
    let c = prepared(2);
    assert_eq!(a, b, "same seed, same split, same normaliser, same report");
    assert_ne!(a.test, c.test, "another seed moves rows");
    assert_eq!(
        a.train.n_rows() + a.test.n_rows(),
        c.train.n_rows() + c.test.n_rows()
    );
    assert_eq!(a.test.n_rows(), 600);
}

#[test]
fn duplicates_never_cross_the_split() {
    // A table where every row appears three times: de-duplication must leave one copy on one side only.
    let base = cairn_datasets::synthetic_table(400, 5, 9);
    let idx: Vec<usize> = (0..400).flat_map(|i| [i, i, i]).collect();
    let tripled = base.subset(&idx);
    let p = cairn_datasets::prepare(tripled, Default::default(), &LoadOptions::default())
        .expect("prepares");
    assert_eq!(p.report.duplicates_removed, 800);
    let train: std::collections::HashSet<_> = keys(&p.train).into_iter().collect();
    assert!(keys(&p.test).iter().all(|k| !train.contains(k)));
    assert_eq!(
        train.len(),
        p.train.n_rows(),
        "no duplicate inside train either"
    );
}

#[test]
fn standardisation_uses_training_statistics_only() {
    let p = synthetic(
        4000,
        6,
        5,
        &LoadOptions {
            clamp: 1000.0,
            ..LoadOptions::default()
        },
    );
    let stats = |d: &Dataset, j: usize| {
        let v: Vec<f64> = d.column(j).map(f64::from).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        (m, sd)
    };
    let mut test_off = 0.0f64;
    for j in 0..p.train.n_features {
        let (m, sd) = stats(&p.train, j);
        assert!(
            m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-3,
            "train column {j}: mean {m} sd {sd}"
        );
        let (tm, tsd) = stats(&p.test, j);
        assert!(
            tm.abs() < 0.2 && (tsd - 1.0).abs() < 0.2,
            "test column {j} is roughly standard: {tm} {tsd}"
        );
        test_off += tm.abs() + (tsd - 1.0).abs();
    }
    assert!(
        test_off > 1e-3,
        "test statistics are not re-fitted, so they are not exactly 0/1"
    );
    // The normaliser reproduces the test split from raw rows, and its stats differ from a test-fitted one.
    let refit = cairn_datasets::Normalizer::fit(&p.test, &LoadOptions::default());
    assert_ne!(refit.columns[1].mean, p.normalizer.columns[1].mean);
}

#[test]
fn values_are_clamped_to_the_bound() {
    let p = synthetic(
        3000,
        12,
        3,
        &LoadOptions {
            clamp: 2.0,
            ..LoadOptions::default()
        },
    );
    assert!(p
        .train
        .features
        .iter()
        .chain(&p.test.features)
        .all(|v| v.abs() <= 2.0));
    assert!(p.report.clamped_values.0 > 0);
}

fn assert_disjoint_cover(train: &Dataset, parts: &[Dataset]) {
    assert!(
        parts.iter().all(|h| h.n_rows() > 0),
        "every holder has data"
    );
    let mut all: Vec<Vec<u32>> = parts.iter().flat_map(keys).collect();
    let mut want = keys(train);
    all.sort();
    want.sort();
    assert_eq!(
        all, want,
        "the holders' rows are exactly the training rows, each once"
    );
}

#[test]
fn iid_partition_is_balanced_and_a_disjoint_cover() -> Result<(), cairn_datasets::DatasetError> {
    let p = prepared(0);
    let parts = partition(&p.train, 7, &Partition::Iid, 11)?;
    assert_eq!(parts.len(), 7);
    let sizes: Vec<usize> = parts.iter().map(Dataset::n_rows).collect();
    assert!(
        sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0) <= 1,
        "{sizes:?}"
    );
    assert_disjoint_cover(&p.train, &parts);
    let overall = p.train.positive_rate();
    assert!(parts
        .iter()
        .all(|h| (h.positive_rate() - overall).abs() < 0.08));
    assert_eq!(parts, partition(&p.train, 7, &Partition::Iid, 11)?);
    assert_ne!(parts, partition(&p.train, 7, &Partition::Iid, 12)?);
    Ok(())
}

#[test]
fn dirichlet_partition_skews_label_rates_and_is_a_disjoint_cover(
) -> Result<(), cairn_datasets::DatasetError> {
    let p = prepared(0);
    let parts = partition(&p.train, 10, &Partition::Dirichlet { alpha: 0.5 }, 4)?;
    assert_disjoint_cover(&p.train, &parts);
    let rates: Vec<f64> = parts.iter().map(Dataset::positive_rate).collect();
    let spread = rates.iter().cloned().fold(f64::MIN, f64::max)
        - rates.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 0.4, "Dirichlet(0.5) label rates {rates:?}");
    // IID on the same table for contrast: the spread is small.
    let iid = partition(&p.train, 10, &Partition::Iid, 4)?;
    let r: Vec<f64> = iid.iter().map(Dataset::positive_rate).collect();
    let iid_spread =
        r.iter().cloned().fold(f64::MIN, f64::max) - r.iter().cloned().fold(f64::MAX, f64::min);
    assert!(iid_spread < 0.15 && iid_spread < spread / 2.0, "{r:?}");
    // Large alpha approaches IID sizes.
    let big = partition_indices(&p.train.labels, 4, &Partition::Dirichlet { alpha: 1e4 }, 4)?;
    let n = p.train.n_rows() as f64 / 4.0;
    assert!(big.iter().all(|h| (h.len() as f64 - n).abs() < 0.05 * n));
    Ok(())
}

#[test]
fn synthetic_is_deterministic_and_learnable_but_not_trivial() {
    let a = synthetic(4000, 10, 77, &LoadOptions::default());
    assert_eq!(a, synthetic(4000, 10, 77, &LoadOptions::default()));
    assert_ne!(
        a.train,
        synthetic(4000, 10, 78, &LoadOptions::default()).train
    );
    let rate = a.train.positive_rate();
    assert!((0.15..0.5).contains(&rate), "positive rate {rate}");
    assert!(
        !a.report.log_transformed.is_empty(),
        "heavy-tailed columns get the log: {}",
        a.report
    );
    assert!(a.report.missing_cells.iter().any(|(_, n)| *n > 0));

    // Full-batch logistic regression, 300 steps: clearly better than the majority class, clearly not perfect.
    let d = a.train.n_features;
    let mut w = vec![0.0f64; d + 1];
    for _ in 0..300 {
        let mut g = vec![0.0f64; d + 1];
        for i in 0..a.train.n_rows() {
            let x = a.train.row(i);
            let z = w[d]
                + x.iter()
                    .zip(&w)
                    .map(|(&xi, wi)| f64::from(xi) * wi)
                    .sum::<f64>();
            let e = 1.0 / (1.0 + (-z).exp()) - f64::from(a.train.labels[i]);
            x.iter()
                .enumerate()
                .for_each(|(j, &xj)| g[j] += e * f64::from(xj));
            g[d] += e;
        }
        let n = a.train.n_rows() as f64;
        w.iter_mut()
            .zip(&g)
            .for_each(|(wi, gi)| *wi -= 0.5 * gi / n);
    }
    let correct = (0..a.test.n_rows())
        .filter(|&i| {
            let x = a.test.row(i);
            let z = w[d]
                + x.iter()
                    .zip(&w)
                    .map(|(&xi, wi)| f64::from(xi) * wi)
                    .sum::<f64>();
            (z > 0.0) == (a.test.labels[i] > 0.5)
        })
        .count();
    let acc = correct as f64 / a.test.n_rows() as f64;
    let majority = 1.0 - a.test.positive_rate().min(1.0 - a.test.positive_rate());
    println!("synthetic test accuracy {acc:.3} vs majority {majority:.3}");
    assert!(
        acc > majority + 0.05 && acc < 0.97,
        "accuracy {acc}, majority baseline {majority}"
    );
    // Each holder of an IID split keeps both classes.
    let parts = partition(&a.train, 5, &Partition::Iid, 0).expect("5 holders fit");
    let classes: HashMap<usize, usize> = parts
        .iter()
        .enumerate()
        .map(|(k, h)| (k, h.n_positive()))
        .collect();
    assert!(classes.values().all(|&c| c > 0));
}

#[test]
fn a_holders_rows_of_a_sorted_table_come_mixed() -> Result<(), cairn_datasets::DatasetError> {
    // A table sorted by label, as the fraud table is: every negative row, then every positive.
    let p = prepared(0);
    let mut order: Vec<usize> = (0..p.train.n_rows()).collect();
    order.sort_by(|&a, &b| p.train.labels[a].total_cmp(&p.train.labels[b]));
    let sorted = p.train.subset(&order);
    let parts = partition(&sorted, 3, &Partition::Iid, 5)?;
    assert_disjoint_cover(&sorted, &parts);
    for h in &parts {
        // Blocks of 8 consecutive rows (what a proven job trains on) mix the labels: with
        // ~1,000 rows at the table's positive rate, nearly every block holds both.
        let mixed = h
            .labels
            .chunks_exact(8)
            .filter(|b| b.iter().any(|&y| y > 0.5) && b.iter().any(|&y| y < 0.5))
            .count();
        let blocks = h.n_rows() / 8;
        assert!(mixed * 4 > blocks, "{mixed} of {blocks} blocks mixed");
    }
    // The order is part of the deterministic result.
    assert_eq!(parts, partition(&sorted, 3, &Partition::Iid, 5)?);
    Ok(())
}
