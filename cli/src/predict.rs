//! `cairn predict`: scores new rows with a trained model, preparing them exactly as the rows
//! it was trained on were prepared (the job's columns, missing-value fills, signed-log
//! columns, means, standard deviations and clamp travel in the model file).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_coordinator::export::{read_model, ExportedModel};
use cairn_datasets::{load_unlabelled, DataSpec, LoadOptions};
use cairn_protocol::metrics::Metrics;
use cairn_protocol::model::predict_proba;
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
}

/// What scoring a table gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// One probability of the positive class per row of the table, in file order.
    pub scores: Vec<f32>,
    /// The rows' labels, when the table has the label column.
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
    let mut opts = LoadOptions::with_label(spec.label.clone());
    opts.delimiter = delimiter.map(|d| d.0);
    let (table, report) =
        load_unlabelled(data, &opts).with_context(|| format!("reading {}", data.display()))?;
    let (x, clamped) = spec
        .apply(&table)
        .with_context(|| format!("preparing {} for the model", data.display()))?;
    let scores = predict_proba(&model.model, &model.params, &x.features);
    let labels = table
        .labels
        .iter()
        .all(|l| !l.is_nan())
        .then(|| table.labels.clone())
        .filter(|l| !l.is_empty());
    Ok(Scored {
        scores,
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
    let mut csv = String::with_capacity(scored.scores.len() * 24);
    csv.push_str(if scored.labels.is_some() {
        "row,score,label\n"
    } else {
        "row,score\n"
    });
    for (i, s) in scored.scores.iter().enumerate() {
        match &scored.labels {
            Some(l) => csv.push_str(&format!("{i},{s:.6},{}\n", l[i])),
            None => csv.push_str(&format!("{i},{s:.6}\n")),
        }
    }
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
        scored.scores.len(),
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
        let m = Metrics::of_scores(&scored.scores, labels);
        eprintln!(
            "  against its labels: loss {:.4}, accuracy {:.4}, AUC {:.4}",
            m.loss, m.accuracy, m.auc
        );
    }
    Ok(())
}
