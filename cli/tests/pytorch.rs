//! The README's PyTorch snippet loads a cairn model file and prepares raw rows with the
//! data spec it carries; run in the project's venv on rows of the real fraud table, it must
//! give the scores `cairn predict` gives (#14 item 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_coordinator::export::write_safetensors;
use cairn_datasets::{default_fraud_csv, load_csv, DataSpec, LoadOptions};
use cairn_protocol::model::ModelSpec;

mod common;
use common::predict;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The Python between the README's snippet markers.
fn snippet() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- pytorch-snippet:start -->")
        .expect("the snippet's start marker");
    let end = readme
        .find("<!-- pytorch-snippet:end -->")
        .expect("the snippet's end marker");
    let block = &readme[start..end];
    let code = block
        .split("```python\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a python block between the markers");
    code.to_string()
}

#[test]
fn the_readme_snippet_scores_raw_rows_as_cairn_predict_does() {
    let fraud = default_fraud_csv();
    assert!(
        fraud.exists(),
        "{} is needed (../shared/datasets)",
        fraud.display()
    );
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is needed (scripts/torch-env.sh makes it)",
        python.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // The model: the fraud table's spec and a small MLP with seeded weights (what is
    // compared is the loading and the preprocessing, not the training).
    let prepared = load_csv(&fraud, &LoadOptions::default()).expect("the fraud table");
    let data = DataSpec::of(&prepared);
    let spec = ModelSpec::mlp(data.normalizer.n_features(), vec![8, 4]);
    let params: Vec<f32> = spec.init_params(11).iter().map(|w| w * 3.0).collect();
    let model = dir.path().join("model.safetensors");
    write_safetensors(&model, &spec, Some(&data), &params).expect("write the model");
    // Raw rows: the table's first 400, as the file has them (names with spaces, empty
    // cells, heavy tails).
    let text = std::fs::read_to_string(&fraud).expect("read the table");
    let rows: Vec<&str> = text.lines().take(401).collect();
    let table = dir.path().join("rows.csv");
    std::fs::write(&table, rows.join("\n") + "\n").expect("write rows");

    let (theirs, ours) = both(&python, &model, &table, dir.path());
    assert_eq!(theirs.len(), 400);
    assert_eq!(ours.len(), 400);
    let worst = largest_difference(&ours, &theirs);
    assert!(worst < 1e-5, "largest difference {worst}");
    // The scores spread out: a snippet that ignored the preprocessing would not match
    // scores that vary this much by accident.
    let (lo, hi) = theirs
        .iter()
        .fold((1.0f64, 0.0f64), |(l, h), &s| (l.min(s), h.max(s)));
    assert!(hi - lo > 0.1, "scores in [{lo}, {hi}]");

    // The same through a softmax model of three classes (the table's 0 and 1, and a 2 it
    // has no row of): every class's probability agrees.
    let three = ModelSpec::mlp(data.normalizer.n_features(), vec![8]).with_classes(3);
    let params: Vec<f32> = three.init_params(12).iter().map(|w| w * 3.0).collect();
    let data3 = DataSpec {
        classes: vec!["0".into(), "1".into(), "2".into()],
        ..data
    };
    let model3 = dir.path().join("model3.safetensors");
    write_safetensors(&model3, &three, Some(&data3), &params).expect("write the model");
    let (theirs, ours) = both(&python, &model3, &table, dir.path());
    assert_eq!(theirs.len(), 400 * 3);
    let worst = largest_difference(&ours, &theirs);
    assert!(worst < 1e-5, "largest difference {worst}");
    let spread =
        theirs.iter().fold(0.0f64, |m, &p| m.max(p)) - theirs.iter().fold(1.0f64, |m, &p| m.min(p));
    assert!(spread > 0.1, "probabilities spread by {spread}");
}

/// `cairn predict`'s probabilities for `table` (class 1's for a binary model, every class's
/// for a softmax one, row by row) and the README snippet's.
fn both(python: &Path, model: &Path, table: &Path, dir: &Path) -> (Vec<f64>, Vec<f64>) {
    let theirs = predict(model, table, &[]).probabilities();
    let script = format!(
        "{}\nimport csv, sys\nmodel, spec = load_cairn_model(sys.argv[1])\n\
         with open(sys.argv[2], newline='') as f:\n    rows = list(csv.DictReader(f))\n\
         with torch.no_grad():\n    probs = model(prepare(rows, spec))\n\
         print('\\n'.join(' '.join(f'{{p:.6f}}' for p in row) for row in probs.tolist()))\n",
        snippet()
    );
    let path = dir.join("score.py");
    std::fs::write(&path, script).expect("write the script");
    let o = Command::new(python)
        .arg(&path)
        .arg(model)
        .arg(table)
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ours: Vec<f64> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(|p| p.parse().expect("a probability"))
        .collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "a probability per row and class from both"
    );
    (theirs, ours)
}

fn largest_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
