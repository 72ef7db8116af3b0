//! A finished job's evaluation on the coordinator's test split, beside a centralised model
//! trained on its training split with the same budget: what `cairn demo` prints and writes
//! to `metrics.json`, and what `cairn coordinator --serve` stores as the job's report. One
//! function for both, for binary and multi-class labels alike.

use anyhow::Result;
use cairn_coordinator::admin::{ClassReport, JobReport};
use cairn_datasets::Dataset;
use cairn_participant::trainer::Trainer;
use cairn_protocol::job::JobConfig;
use cairn_protocol::metrics::{per_class, roc_curve, ClassMetrics, Metrics};
use cairn_protocol::model::{class_probabilities, ModelSpec};

use crate::federate::centralised_baseline;
use crate::ui;

/// One model's evaluation on the test split.
struct Evaluated {
    metrics: Metrics,
    classes: Vec<ClassMetrics>,
    /// The ROC curve of a binary model (none for a multi-class one).
    roc: Option<Vec<(f64, f64)>>,
}

/// One forward pass over the test split serves every metric.
fn evaluate(spec: &ModelSpec, params: &[f32], test: &Dataset, threshold: f64) -> Evaluated {
    let y = &test.labels;
    let k = spec.classes();
    let probs = class_probabilities(spec, params, &test.features);
    let classes = per_class(&probs, y, k);
    if spec.is_binary() {
        // Class 1's probability, as `predict_proba` gives it.
        let p: Vec<f32> = probs.chunks_exact(2).map(|p| p[1]).collect();
        Evaluated {
            metrics: Metrics::of_scores_at(&p, y, threshold),
            classes,
            roc: Some(roc_curve(&p, y)),
        }
    } else {
        Evaluated {
            metrics: Metrics::of_class_probs(&probs, y, k),
            classes,
            roc: None,
        }
    }
}

/// The report of a job whose final model is `model`: its metrics on `test`, a centralised
/// model's (trained by `trainer` on `train` from the job's initial parameters with the
/// job's budget; none when `train` is empty), and each class's, named by the job's data
/// spec (by index when it has none).
pub fn job_report(
    cfg: &JobConfig,
    train: &Dataset,
    test: &Dataset,
    model: &[f32],
    threshold: f64,
    trainer: &mut dyn Trainer,
) -> Result<JobReport> {
    let federated = evaluate(&cfg.model, model, test, threshold);
    let centralised = if train.n_rows() > 0 {
        let initial = cfg.model.init_params(cfg.seed);
        let central = centralised_baseline(
            &cfg.model,
            &initial,
            train,
            &cfg.hyper,
            cfg.rounds,
            cfg.participants,
            cfg.seed,
            trainer,
        )?;
        Some(evaluate(&cfg.model, &central, test, threshold))
    } else {
        None
    };
    let names: Vec<String> = match &cfg.data {
        Some(d) => d.classes.clone(),
        None => (0..cfg.model.classes()).map(|c| c.to_string()).collect(),
    };
    let classes = names
        .into_iter()
        .enumerate()
        .filter_map(|(c, class)| {
            Some(ClassReport {
                class,
                federated: *federated.classes.get(c)?,
                centralised: centralised.as_ref().and_then(|e| e.classes.get(c).copied()),
            })
        })
        .collect();
    Ok(JobReport {
        federated: federated.metrics,
        roc: federated.roc.unwrap_or_default(),
        centralised_roc: centralised.as_ref().and_then(|e| e.roc.clone()),
        centralised: centralised.map(|e| e.metrics),
        test_rows: test.n_rows(),
        classes,
        // The caller knows the rounds the model cost (JobSummary::privacy).
        privacy: None,
    })
}

/// The final comparison of the federated model with the centralised baseline: loss, AUC,
/// PR-AUC, and accuracy, precision, recall and F1 (at `threshold` for a binary model, of
/// the most probable class and macro-averaged for a multi-class one), then the gaps; for a
/// multi-class model each class's row after.
pub fn comparison(report: &JobReport, threshold: f64) -> String {
    let multi = report.classes.len() > 2;
    let row = |name: &str, m: &Metrics| {
        format!(
            "  {name:<12} {:.4}  {:.4}  {:>6}    {:.4}     {:>6}  {:>6}  {:>6}",
            m.loss,
            m.auc,
            ui::metric(m.pr_auc),
            m.accuracy,
            ui::metric(m.precision),
            ui::metric(m.recall),
            ui::metric(m.f1)
        )
    };
    let gap = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map_or_else(|| "-".into(), |(a, b)| format!("{:+.4}", a - b))
    };
    let how = if multi {
        format!(
            "(macro averages over {} classes, one against the rest)",
            report.classes.len()
        )
    } else {
        format!("(at threshold {threshold})")
    };
    let mut out = format!(
        "                 loss     AUC   PR-AUC  accuracy  precision  recall      F1   {how}\n{}",
        row("federated", &report.federated),
    );
    if let Some(cen) = &report.centralised {
        out.push_str(&format!(
            "\n{}   (pooled rows, same budget)\n  AUC gap      {:+.4}, PR-AUC gap {}, F1 gap {}",
            row("centralised", cen),
            report.federated.auc - cen.auc,
            gap(report.federated.pr_auc, cen.pr_auc),
            gap(report.federated.f1, cen.f1),
        ));
    }
    if multi {
        out.push('\n');
        out.push_str(&class_table(&report.classes));
    }
    if let Some(p) = &report.privacy {
        out.push('\n');
        out.push_str(&ui::privacy_line(p));
        out.push_str(" (the federated model's; the centralised baseline has no DP)");
    }
    out
}

/// Each class's support, precision, recall, F1 and AUC (the class against the rest), the
/// federated model's, with the centralised model's F1 beside it when there is one.
pub fn class_table(classes: &[ClassReport]) -> String {
    let width = classes
        .iter()
        .map(|c| c.class.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 24);
    let mut out = format!(
        "  {:<width$}  support  precision  recall      F1     AUC  centralised F1",
        "class"
    );
    for c in classes {
        let f = &c.federated;
        let name: String = c.class.chars().take(width).collect();
        out.push_str(&format!(
            "\n  {name:<width$}  {:>7}     {:.4}  {:.4}  {:.4}  {:.4}  {:>14}",
            f.support,
            f.precision,
            f.recall,
            f.f1,
            f.auc,
            c.centralised
                .map_or_else(|| "-".to_string(), |m| format!("{:.4}", m.f1)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, support: usize, f1: f64) -> ClassReport {
        let m = ClassMetrics {
            support,
            predicted: support,
            precision: f1,
            recall: f1,
            f1,
            auc: 0.9,
            average_precision: 0.8,
        };
        ClassReport {
            class: name.into(),
            federated: m,
            centralised: Some(ClassMetrics { f1: f1 / 2.0, ..m }),
        }
    }

    #[test]
    fn a_multi_class_comparison_names_the_averages_and_lists_each_class() {
        let report = JobReport {
            federated: Metrics::default(),
            roc: Vec::new(),
            centralised: Some(Metrics::default()),
            centralised_roc: None,
            test_rows: 30,
            privacy: None,
            classes: vec![
                class("benign", 20, 0.9),
                class("fraud", 7, 0.5),
                class("phish_hack", 3, 0.25),
            ],
        };
        let text = comparison(&report, 0.5);
        assert!(text.contains("macro averages over 3 classes"), "{text}");
        assert!(!text.contains("at threshold"), "{text}");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("phish_hack"))
            .expect("a row per class");
        assert!(
            line.contains("      3     0.2500  0.2500  0.2500  0.9000"),
            "{line}"
        );
        assert!(line.trim_end().ends_with("0.1250"), "{line}");
        // A binary report keeps its threshold and no class table.
        let binary = JobReport {
            classes: vec![class("0", 20, 0.9), class("1", 10, 0.8)],
            ..report
        };
        let text = comparison(&binary, 0.3);
        assert!(text.contains("(at threshold 0.3)"), "{text}");
        assert!(!text.contains("support"), "{text}");
    }
}
