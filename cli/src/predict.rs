//! `cairn predict`: scores new rows with a trained model, preparing them exactly as the rows
//! it was trained on were prepared (the job's columns, missing-value fills, signed-log
//! columns, means, standard deviations and clamp travel in the model file).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_coordinator::export::{read_model, ExportedModel};
use cairn_datasets::{load_unlabelled, DataSpec, LoadOptions};
use cairn_protocol::metrics::{parse_threshold, per_class, Metrics, DEFAULT_THRESHOLD};
use cairn_protocol::model::class_probabilities;
use clap::Args;

use crate::options::Delimiter;

/// `cairn predict`.
#[derive(Args, Clone, Debug)]
pub struct PredictArgs {
    /// The model file: `model.safetensors` from `cairn demo`, a job's output directory or
    /// `cairn job pull`
    #[arg(long)]
    pub model: PathBuf,
    /// The rows to score: CSV (`.gz` too) or Parquet, with the model's input columns (any
    /// others are ignored); when the label column is there, metrics are printed too
    #[arg(long)]
    pub data: PathBuf,
    /// CSV field delimiter: `,` `;` `|` or `tab` [default: tab for a .tsv file, else `,`]
    #[arg(long)]
    pub delimiter: Option<Delimiter>,
    /// Write the scores to this file instead of standard output
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Decision threshold of the printed accuracy, precision, recall and F1 (a row is
    /// positive when its score is at least this), strictly between 0 and 1; a multi-class
    /// model predicts each row's most probable class instead
    #[arg(long, default_value_t = DEFAULT_THRESHOLD, value_parser = parse_threshold)]
    pub threshold: f64,
}

/// The metrics of `scores` against the table's `labels`: loss, AUC and PR-AUC (average
/// precision), then accuracy, precision, recall and F1 at `threshold`, with the counts.
pub fn labelled_summary(scores: &[f32], labels: &[f32], threshold: f64) -> String {
    let m = Metrics::of_scores_at(scores, labels, threshold);
    let positives = labels.iter().filter(|&&y| y >= 0.5).count();
    let called = scores
        .iter()
        .filter(|&&p| f64::from(p) >= threshold)
        .count();
    let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |x| format!("{x:.4}"));
    format!(
        "  against its labels ({positives} positive of {}): loss {:.4}, AUC {:.4} and PR-AUC {} (average precision)\n  \
         at threshold {threshold} ({called} called positive): accuracy {:.4}, precision {}, recall {}, F1 {}",
        labels.len(),
        m.loss,
        m.auc,
        f(m.pr_auc),
        m.accuracy,
        f(m.precision),
        f(m.recall),
        f(m.f1),
    )
}

/// The metrics of a multi-class model's class probabilities `probs` (row-major, one row
/// per label) against the class-index `labels`: loss, accuracy, macro AUC, PR-AUC, precision,
/// recall and F1, then each class's row.
pub fn multi_class_summary(probs: &[f32], labels: &[f32], classes: &[String]) -> String {
    let k = classes.len();
    let m = Metrics::of_class_probs(probs, labels, k);
    let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |x| format!("{x:.4}"));
    let mut out = format!(
        "  against its labels ({} rows, {k} classes): loss {:.4}, accuracy {:.4} (most probable class)
           macro averages, each class against the rest: AUC {:.4}, PR-AUC {}, precision {}, recall {}, F1 {}",
        labels.len(),
        m.loss,
        m.accuracy,
        m.auc,
        f(m.pr_auc),
        f(m.precision),
        f(m.recall),
        f(m.f1),
    );
    for (name, c) in classes.iter().zip(per_class(probs, labels, k)) {
        out.push_str(&format!(
            "\n    {name}: {} rows, {} predicted; precision {:.4}, recall {:.4}, F1 {:.4}, AUC {:.4}",
            c.support, c.predicted, c.precision, c.recall, c.f1, c.auc
        ));
    }
    out
}

/// What scoring a table gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// Each row's class probabilities, row-major `rows × classes` in file order (`[1 − p,
    /// p]` for a binary model).
    pub probs: Vec<f32>,
    /// The model's classes, in index order (the label's values).
    pub classes: Vec<String>,
    /// The rows' labels, when the table has the label column (NaN where a row's cell is
    /// empty).
    pub labels: Option<Vec<f32>>,
    /// Values outside the training range, clamped.
    pub clamped: usize,
    /// Notes of the loader (columns it could not read, missing label…).
    pub notes: Vec<String>,
}

/// Reads and checks a model file.
pub fn load_model(path: &Path) -> Result<(ExportedModel, DataSpec)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = read_model(&bytes).with_context(|| format!("reading {}", path.display()))?;
    let Some(spec) = model.data.clone() else {
        bail!(
            "{} carries no preprocessing (a model written before cairn exported it): score prepared rows instead",
            path.display()
        );
    };
    Ok((model, spec))
}

/// Scores the rows of `data` with `model`, prepared with `spec`.
pub fn score(
    model: &ExportedModel,
    spec: &DataSpec,
    data: &Path,
    delimiter: Option<Delimiter>,
) -> Result<Scored> {
    // Labels, where the table has them, are read as the job's classes.
    let opts = spec.holder_options(&LoadOptions {
        delimiter: delimiter.map(|d| d.0),
        ..LoadOptions::default()
    });
    let (table, report) =
        load_unlabelled(data, &opts).with_context(|| format!("reading {}", data.display()))?;
    let (x, clamped) = spec
        .apply(&table)
        .with_context(|| format!("preparing {} for the model", data.display()))?;
    let probs = class_probabilities(&model.model, &model.params, &x.features);
    // Some rows may have no label yet (an empty cell): NaN, left out of the metrics.
    let labels = table
        .labels
        .iter()
        .any(|l| !l.is_nan())
        .then(|| table.labels.clone());
    Ok(Scored {
        probs,
        classes: spec.classes.clone(),
        labels,
        clamped,
        notes: report.notes,
    })
}

/// Runs `cairn predict`: the scores as CSV (`row,score`, and `label` when the table has
/// it), a summary on standard error.
pub fn run(args: &PredictArgs) -> Result<()> {
    let (model, spec) = load_model(&args.model)?;
    let scored = score(&model, &spec, &args.data, args.delimiter)?;
    let csv = scores_csv(&scored);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            // A reader that stops early (`| head`) ends the output, not in a panic.
            match out.write_all(csv.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                r => r.context("writing the scores")?,
            }
        }
    }
    eprintln!(
        "scored {} rows of {} with {} ({}, label {:?}, {} input columns); {} values clamped to ±{}",
        scored.n_rows(),
        args.data.display(),
        args.model.display(),
        model.model.describe(),
        spec.label,
        spec.normalizer.n_features(),
        scored.clamped,
        spec.normalizer.clamp
    );
    for note in &scored.notes {
        eprintln!("  note: {note}");
    }
    if let Some(labels) = &scored.labels {
        let k = scored.classes.len();
        let (probs, known): (Vec<&[f32]>, Vec<f32>) = scored
            .probs
            .chunks_exact(k)
            .zip(labels)
            .filter(|(_, y)| !y.is_nan())
            .map(|(p, &y)| (p, y))
            .unzip();
        if known.len() < labels.len() {
            eprintln!(
                "  {} rows have no label yet: the metrics are over the other {}",
                labels.len() - known.len(),
                known.len()
            );
        }
        if k == 2 {
            let scores: Vec<f32> = probs.iter().map(|p| p[1]).collect();
            eprintln!("{}", labelled_summary(&scores, &known, args.threshold));
        } else {
            let flat: Vec<f32> = probs.concat();
            eprintln!("{}", multi_class_summary(&flat, &known, &scored.classes));
        }
    }
    Ok(())
}

impl Scored {
    /// Rows scored.
    pub fn n_rows(&self) -> usize {
        self.probs.len() / self.classes.len().max(1)
    }
}

/// The scores as CSV: for a binary model `row,score` (class 1's probability), for a
/// multi-class one `row,predicted` and one `p_CLASS` column per class; then `label` (the
/// class name) when the table has labels, empty for a row without one.
pub fn scores_csv(scored: &Scored) -> String {
    let k = scored.classes.len();
    let binary = k == 2;
    let mut csv = String::with_capacity(scored.n_rows() * (16 + 10 * k));
    csv.push_str("row,");
    if binary {
        csv.push_str("score");
    } else {
        csv.push_str("predicted");
        for c in &scored.classes {
            csv.push_str(",p_");
            csv.push_str(&csv_cell(c));
        }
    }
    if scored.labels.is_some() {
        csv.push_str(",label");
    }
    csv.push('\n');
    for (i, p) in scored.probs.chunks_exact(k.max(1)).enumerate() {
        csv.push_str(&i.to_string());
        if binary {
            csv.push_str(&format!(",{:.6}", p[1]));
        } else {
            let best = (0..k).fold(0, |b, c| if p[c] > p[b] { c } else { b });
            csv.push(',');
            csv.push_str(&csv_cell(&scored.classes[best]));
            for v in p {
                csv.push_str(&format!(",{v:.6}"));
            }
        }
        if let Some(labels) = &scored.labels {
            csv.push(',');
            let y = labels[i];
            if !y.is_nan() {
                let name = scored.classes.get(y as usize).map_or("?", String::as_str);
                csv.push_str(&csv_cell(name));
            }
        }
        csv.push('\n');
    }
    csv
}

/// A class name as one CSV cell: quoted when it holds a comma, quote or line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labelled_summary_names_the_threshold_and_its_metrics() {
        // y = [0, 0, 1, 1], p = [0.1, 0.4, 0.35, 0.8]: AP = 5/6 (scikit-learn's example).
        let s = labelled_summary(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0], 0.3);
        assert!(s.contains("(2 positive of 4)"), "{s}");
        assert!(s.contains("PR-AUC 0.8333"), "{s}");
        // At 0.3: 0.4, 0.35, 0.8 called positive: TP 2, FP 1, FN 0 → precision 2/3,
        // recall 1, F1 4/5, accuracy 3/4.
        assert!(s.contains("at threshold 0.3 (3 called positive)"), "{s}");
        assert!(
            s.contains("accuracy 0.7500, precision 0.6667, recall 1.0000, F1 0.8000"),
            "{s}"
        );
        // The first "AUC " is the ROC AUC, followed by its value (what scripts read).
        let after = s
            .split("AUC ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next());
        assert_eq!(after, Some("0.7500"));
    }
}
