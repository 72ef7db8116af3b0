//! Column pruning and missing-value analysis on the numeric table, before any row is split off.
//!
//! Zero-variance and duplicate columns are found on all rows: neither decision looks at labels, so it cannot
//! leak them into the split. Missing cells are grouped by the set of rows they occur in: a block of columns
//! missing together (the 25 ERC20 columns of the fraud table) is one fact, and if the rows where it is missing
//! are (nearly) all one class, the missingness itself predicts the label. That is reported as a leak (with K
//! classes, "purity" is the majority class's share; for a binary label it is what it always was).

use std::collections::{HashMap, HashSet};

use crate::labels::{class_name, class_of, count_classes, is_binary_classes};
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
    let k = labels_k(&ds, &report.classes);
    let overall = count_classes(&ds.labels, k);
    for (rows, cols) in &groups {
        if let Some(w) = leak_warning(&ds, rows, cols, &overall, &report.classes, opts) {
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

/// The number of classes to count: the report's classes, or as many as the labels' largest index needs
/// (at least two).
fn labels_k(ds: &Dataset, classes: &[String]) -> usize {
    let needed = ds
        .labels
        .iter()
        .map(|&l| class_of(l) + 1)
        .max()
        .unwrap_or(0);
    needed.max(classes.len()).max(2)
}

/// The share of class `c` among `counts` (of `n` rows). For class 0 of two it is written `1 − share of 1`,
/// the binary positive rate's complement, so that binary purities are bit for bit what they were.
fn share(counts: &[usize], c: usize, n: usize) -> f64 {
    let n = n.max(1) as f64;
    if counts.len() == 2 && c == 0 {
        1.0 - counts[1] as f64 / n
    } else {
        counts[c] as f64 / n
    }
}

/// The majority class of `counts`: the largest count, the higher index on a tie (so a binary tie is
/// class 1, as before).
fn majority(counts: &[usize]) -> usize {
    (0..counts.len()).max_by_key(|&c| counts[c]).unwrap_or(0)
}

/// With more than two classes, a class that the rows of a missing block (`counts` of `n` rows) almost
/// never have (at most 1 − [`LEAK_PURITY`] of them) although the table (`overall`, of `total` rows) has
/// more of it, and enough that at least [`LEAK_MIN_ROWS`] of the block's rows would be expected to be of
/// it: the missingness then rules the class out (the fraud table's ERC20 block: flagged accounts of
/// two kinds, never a benign one). The most common such class overall. (With two classes this is the
/// majority rule itself, so it is not checked again.)
fn ruled_out(counts: &[usize], overall: &[usize], n: usize, total: usize) -> Option<usize> {
    if counts.len() <= 2 {
        return None;
    }
    let rare = 1.0 - LEAK_PURITY;
    (0..counts.len())
        .filter(|&c| {
            let expected = share(overall, c, total);
            share(counts, c, n) <= rare
                && expected > rare
                && expected * n as f64 >= LEAK_MIN_ROWS as f64
        })
        .max_by_key(|&c| overall[c])
}

/// How a warning names class `c`: its index for a 0/1 label (`label 1`), else its name (`class "scam"`).
fn which(classes: &[String], c: usize) -> String {
    if classes.is_empty() || is_binary_classes(classes) {
        format!("label {c}")
    } else {
        format!("class {:?}", class_name(classes, c))
    }
}

/// A warning when the rows in `rows` (where columns `cols` are missing) are nearly all one class
/// (`overall`: rows of each class in the whole table).
fn leak_warning(
    ds: &Dataset,
    rows: &[usize],
    cols: &[usize],
    overall: &[usize],
    classes: &[String],
    opts: &LoadOptions,
) -> Option<String> {
    if rows.len() < LEAK_MIN_ROWS {
        return None;
    }
    let here: Vec<f32> = rows.iter().map(|&i| ds.labels[i]).collect();
    let counts = count_classes(&here, overall.len());
    let majority = majority(&counts);
    let purity = share(&counts, majority, rows.len());
    let overall_purity = share(overall, majority, ds.n_rows());
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
    // The class the zero-fill sentence below speaks of.
    let shown;
    let mut text = if purity >= LEAK_PURITY && overall_purity < LEAK_PURITY {
        shown = if overall.len() == 2 { 1 } else { majority };
        format!(
            "{what} missing in {} rows and {:.1}% of those rows have {} (vs {:.1}% overall): \
             the missingness alone predicts the label",
            rows.len(),
            100.0 * purity,
            which(classes, majority),
            100.0 * overall_purity
        )
    } else if let Some(absent) = ruled_out(&counts, overall, rows.len(), ds.n_rows()) {
        shown = absent;
        format!(
            "{what} missing in {} rows and only {:.1}% of those rows have {} (vs {:.1}% overall): \
             the missingness alone rules that class out",
            rows.len(),
            100.0 * share(&counts, absent, rows.len()),
            which(classes, absent),
            100.0 * share(overall, absent, ds.n_rows())
        )
    } else {
        return None;
    };
    if opts.missing == MissingPolicy::Zero {
        // After filling with 0, these rows can only be told apart from rows that are genuinely 0 there.
        let missing: HashSet<usize> = rows.iter().copied().collect();
        let zeros: Vec<usize> = (0..ds.n_rows())
            .filter(|i| !missing.contains(i) && cols.iter().all(|&j| ds.row(*i)[j] == 0.0))
            .collect();
        // The share among them of label 1 (binary, as before), or of the class the warning names.
        let zero_same = zeros
            .iter()
            .filter(|&&i| class_of(ds.labels[i]) == shown)
            .count();
        text.push_str(&format!(
            "; filled with 0 they look like the {} rows that are genuinely 0 in these columns ({:.1}% {}), \
             which hides the pattern unless a missing indicator or an encoding of a related text column \
             exposes it",
            zeros.len(),
            100.0 * zero_same as f64 / zeros.len().max(1) as f64,
            which(classes, shown)
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

    #[test]
    fn a_missing_block_of_one_class_among_three_is_a_leak_named_by_class() {
        // 12 rows miss "m" and are all class 2 ("scam"); the other 24 mix classes 0, 1 and 2.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..36 {
            let m = if i < 12 { f32::NAN } else { i as f32 };
            rows.push([i as f32, (i % 5) as f32, -(i as f32) * 0.5, m]);
            labels.push(if i < 12 { 2.0 } else { (i % 3) as f32 });
        }
        let mut rep = LoadReport {
            classes: vec!["benign".into(), "phish".into(), "scam".into()],
            ..LoadReport::default()
        };
        prune(table(&rows, &labels), &LoadOptions::default(), &mut rep);
        assert_eq!(rep.leak_warnings.len(), 1, "{:?}", rep.leak_warnings);
        let w = &rep.leak_warnings[0];
        assert!(
            w.contains("100.0% of those rows have class \"scam\"") && w.contains("55.6% overall"),
            "{w}"
        );
        // Two classes among the missing rows, in proportions like the table's: no warning.
        for (i, l) in labels.iter_mut().enumerate().take(12) {
            *l = (i % 3) as f32;
        }
        let mut rep = LoadReport::default();
        prune(table(&rows, &labels), &LoadOptions::default(), &mut rep);
        assert!(rep.leak_warnings.is_empty(), "{:?}", rep.leak_warnings);
    }

    #[test]
    fn a_missing_block_that_never_has_one_class_rules_it_out() {
        // 60 rows; the 20 missing "m" are classes 1 and 2 ("fraud", "phish"), never 0 ("benign"),
        // which is 30 of the other 40.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..60 {
            let m = if i < 20 { f32::NAN } else { i as f32 };
            rows.push([i as f32, (i % 5) as f32, -(i as f32) * 0.5, m]);
            let other = if i % 4 == 0 { 1 + i % 8 / 4 } else { 0 };
            labels.push(if i < 20 { 1 + i % 2 } else { other } as f32);
        }
        let mut rep = LoadReport {
            classes: vec!["benign".into(), "fraud".into(), "phish".into()],
            ..LoadReport::default()
        };
        prune(table(&rows, &labels), &LoadOptions::default(), &mut rep);
        assert_eq!(rep.leak_warnings.len(), 1, "{:?}", rep.leak_warnings);
        let w = &rep.leak_warnings[0];
        assert!(
            w.contains("only 0.0% of those rows have class \"benign\" (vs 50.0% overall)")
                && w.contains("rules that class out"),
            "{w}"
        );
        // With two classes the rule is the binary one, unchanged: 20 rows all of label 1.
        let binary: Vec<f32> = labels.iter().map(|&l| f32::from(l > 0.5)).collect();
        let mut rep = LoadReport::default();
        prune(table(&rows, &binary), &LoadOptions::default(), &mut rep);
        assert_eq!(rep.leak_warnings.len(), 1, "{:?}", rep.leak_warnings);
        assert!(rep.leak_warnings[0].contains("100.0% of those rows have label 1"));
    }
}
