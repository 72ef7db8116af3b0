//! Column pruning and missing-value analysis on the numeric table, before any row is split off.
//!
//! Zero-variance and duplicate columns are found on all rows: neither decision looks at labels, so it cannot
//! leak them into the split. Missing cells are grouped by the set of rows they occur in: a block of columns
//! missing together (the 25 ERC20 columns of the fraud table) is one fact, and if the rows where it is missing
//! are (nearly) all one label, the missingness itself predicts the label. That is reported as a leak.

use std::collections::{HashMap, HashSet};

use crate::options::{LoadOptions, MissingPolicy};
use crate::report::{DropReason, DroppedColumn, LoadReport};
use crate::table::Dataset;

/// Smallest block of rows whose label purity is worth a leak warning.
const LEAK_MIN_ROWS: usize = 10;
/// Label purity (share of the majority label) at or above which missingness counts as a leak.
const LEAK_PURITY: f64 = 0.99;

/// Canonical bits of a value: all NaNs equal, -0 == +0.
fn bits(v: f32) -> u32 {
    if v.is_nan() {
        f32::NAN.to_bits()
    } else {
        (v + 0.0).to_bits()
    }
}

/// Drops zero-variance and duplicate columns, records missing cells, warns about leaks, and adds
/// missing-value indicators if asked. Returns the pruned table.
pub(crate) fn prune(ds: Dataset, opts: &LoadOptions, report: &mut LoadReport) -> Dataset {
    let columns: Vec<Vec<f32>> = (0..ds.n_features).map(|j| ds.column(j).collect()).collect();
    let mut keep = Vec::new();
    let mut seen: HashMap<Vec<u32>, usize> = HashMap::new();
    for (j, col) in columns.iter().enumerate() {
        let name = &ds.feature_names[j];
        let mut present = col.iter().filter(|v| !v.is_nan());
        let first = present.next().copied();
        if present.all(|&v| Some(v) == first) {
            let reason = DropReason::ZeroVariance { value: first };
            report.dropped_columns.push(DroppedColumn {
                name: name.clone(),
                reason,
            });
            continue;
        }
        let key: Vec<u32> = col.iter().map(|&v| bits(v)).collect();
        if let Some(&earlier) = seen.get(&key) {
            let reason = DropReason::DuplicateOf(ds.feature_names[earlier].clone());
            report.dropped_columns.push(DroppedColumn {
                name: name.clone(),
                reason,
            });
            continue;
        }
        seen.insert(key, j);
        keep.push(j);
    }

    // Group kept columns by the exact set of rows where they are missing.
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for &j in &keep {
        let rows: Vec<usize> = columns[j]
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_nan())
            .map(|(i, _)| i)
            .collect();
        if rows.is_empty() {
            continue;
        }
        report
            .missing_cells
            .push((ds.feature_names[j].clone(), rows.len()));
        match groups.iter_mut().find(|(r, _)| *r == rows) {
            Some((_, cols)) => cols.push(j),
            None => groups.push((rows, vec![j])),
        }
    }
    let overall = ds.positive_rate();
    for (rows, cols) in &groups {
        if let Some(w) = leak_warning(&ds, rows, cols, overall, opts) {
            report.leak_warnings.push(w);
        }
    }

    let mut names: Vec<String> = keep.iter().map(|&j| ds.feature_names[j].clone()).collect();
    let mut extra: Vec<Vec<f32>> = Vec::new();
    if opts.missing_indicators {
        for (rows, cols) in &groups {
            let first = &ds.feature_names[cols[0]];
            let name = if cols.len() == 1 {
                format!("{first} missing")
            } else {
                format!("{first} (+{} cols) missing", cols.len() - 1)
            };
            let mut ind = vec![0.0f32; ds.n_rows()];
            for &i in rows {
                ind[i] = 1.0;
            }
            report.indicator_columns.push(name.clone());
            names.push(name);
            extra.push(ind);
        }
    }
    let mut out = Dataset::empty(names);
    out.features.reserve(ds.n_rows() * out.n_features);
    for i in 0..ds.n_rows() {
        let row = ds.row(i);
        out.features.extend(keep.iter().map(|&j| row[j]));
        out.features.extend(extra.iter().map(|c| c[i]));
        out.labels.push(ds.labels[i]);
    }
    out
}

/// A warning when the rows in `rows` (where columns `cols` are missing) are nearly all one label.
fn leak_warning(
    ds: &Dataset,
    rows: &[usize],
    cols: &[usize],
    overall: f64,
    opts: &LoadOptions,
) -> Option<String> {
    if rows.len() < LEAK_MIN_ROWS {
        return None;
    }
    let pos = rows.iter().filter(|&&i| ds.labels[i] > 0.5).count();
    let rate = pos as f64 / rows.len() as f64;
    let (majority, purity) = if rate >= 0.5 {
        (1, rate)
    } else {
        (0, 1.0 - rate)
    };
    let overall_purity = if majority == 1 {
        overall
    } else {
        1.0 - overall
    };
    if purity < LEAK_PURITY || overall_purity >= LEAK_PURITY {
        return None;
    }
    let what = if cols.len() == 1 {
        format!("column {:?} is", ds.feature_names[cols[0]])
    } else {
        format!(
            "{} columns ({:?} … {:?}) are",
            cols.len(),
            ds.feature_names[cols[0]],
            ds.feature_names[cols[cols.len() - 1]]
        )
    };
    let mut text = format!(
        "{what} missing in {} rows and {:.1}% of those rows have label {majority} (vs {:.1}% overall): \
         the missingness alone predicts the label",
        rows.len(),
        100.0 * purity,
        100.0 * overall_purity
    );
    if opts.missing == MissingPolicy::Zero {
        // After filling with 0, these rows can only be told apart from rows that are genuinely 0 there.
        let missing: HashSet<usize> = rows.iter().copied().collect();
        let zeros: Vec<usize> = (0..ds.n_rows())
            .filter(|i| !missing.contains(i) && cols.iter().all(|&j| ds.row(*i)[j] == 0.0))
            .collect();
        let zero_pos = zeros.iter().filter(|&&i| ds.labels[i] > 0.5).count();
        text.push_str(&format!(
            "; filled with 0 they look like the {} rows that are genuinely 0 in these columns ({:.1}% label 1), \
             which hides the pattern unless a missing indicator or an encoding of a related text column \
             exposes it",
            zeros.len(),
            100.0 * zero_pos as f64 / zeros.len().max(1) as f64
        ));
    } else {
        text.push_str("; the filled value carries it into the model");
    }
    text.push_str(
        ". Read accuracy with this in mind (drop the rows or columns to measure without it)",
    );
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[f32; 4]], labels: &[f32]) -> Dataset {
        Dataset {
            features: rows.iter().flatten().copied().collect(),
            labels: labels.to_vec(),
            n_features: 4,
            feature_names: vec!["a".into(), "const".into(), "a2".into(), "m".into()],
        }
    }

    #[test]
    fn drops_constant_and_duplicate_columns() {
        let ds = table(
            &[
                [1.0, 0.0, 1.0, 3.0],
                [2.0, f32::NAN, 2.0, 4.0],
                [3.0, 0.0, 3.0, 5.0],
            ],
            &[0.0, 1.0, 0.0],
        );
        let mut rep = LoadReport::default();
        let out = prune(ds, &LoadOptions::default(), &mut rep);
        assert_eq!(out.feature_names, vec!["a", "m"]);
        assert_eq!(out.row(1), &[2.0, 4.0]);
        assert_eq!(
            rep.dropped_columns[0].reason,
            DropReason::ZeroVariance { value: Some(0.0) }
        );
        assert_eq!(
            rep.dropped_columns[1].reason,
            DropReason::DuplicateOf("a".into())
        );
        assert!(
            rep.missing_cells.is_empty(),
            "the only missing cell was in a dropped column"
        );
    }

    #[test]
    fn warns_when_missingness_predicts_the_label_and_adds_indicators() {
        // 12 rows miss "m" and are all label 1; 12 others have it with mixed labels.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..24 {
            let m = if i < 12 { f32::NAN } else { i as f32 };
            rows.push([i as f32, (i % 3) as f32, -(i as f32), m]);
            labels.push(if i < 12 || i % 2 == 0 { 1.0 } else { 0.0 });
        }
        let opts = LoadOptions {
            missing_indicators: true,
            ..LoadOptions::default()
        };
        let mut rep = LoadReport::default();
        let out = prune(table(&rows, &labels), &opts, &mut rep);
        assert_eq!(rep.missing_cells, vec![("m".to_string(), 12)]);
        assert_eq!(rep.leak_warnings.len(), 1, "{:?}", rep.leak_warnings);
        assert!(rep.leak_warnings[0].contains("missing in 12 rows"));
        assert_eq!(
            out.feature_names.last().map(String::as_str),
            Some("m missing")
        );
        assert_eq!(out.row(0).last(), Some(&1.0));
        assert_eq!(out.row(20).last(), Some(&0.0));

        // Mixed labels among the missing rows: no warning.
        labels[0] = 0.0;
        labels[1] = 0.0;
        let mut rep = LoadReport::default();
        prune(table(&rows, &labels), &LoadOptions::default(), &mut rep);
        assert!(rep.leak_warnings.is_empty());
    }
}
