//! Class labels: the one place that turns a label column's cells into class indices.
//!
//! A table's labels are `f32` class indices `0..K` (`K` = the number of classes, 2 to [`MAX_CLASSES`]),
//! with the classes' names beside them (`LoadReport::classes`, `DataSpec::classes`). The rule, for every
//! reader (CSV, Parquet, the account labels file of [`crate::txfeatures`]):
//!
//! - **No classes given** (a coordinator reading its table): when every cell is a binary label (`0`/`1` in
//!   any numeric spelling, `true`/`false`), the classes are [`BINARY_CLASSES`] and the labels 0/1 exactly as
//!   before multi-class labels existed. Otherwise the classes are the distinct trimmed cells: in numeric
//!   order when every one is a finite number (spellings of one number, `2` and `2.0`, are one class, named
//!   by its first spelling in the file), else in byte order (`benign` < `fraud` < `phish`; case matters).
//!   Two text classes are a binary job whose positive class (index 1) is the later name.
//! - **Classes given** (a holder preparing for a job, its classes from the coordinator): a cell maps to the
//!   class of the same name, else to the class equal to it as a number, and for the binary classes by the
//!   binary spellings above. A cell that is no class is an [`DatasetError::UnknownClass`]. A holder's file
//!   may lack some classes; it keeps the job's indices all the same.
//!
//! A missing cell (empty, `NA`, `NaN`, `null`, `None`, an infinity) is no class: an error naming the row
//! ([`DatasetError::NonBinaryLabel`]), or `NaN` for rows to score.

use std::collections::HashMap;

use crate::columns::is_missing;
use crate::error::DatasetError;
use crate::reader::parse_label;
use crate::spec::MAX_COLUMN_NAME_BYTES;

/// Most classes a label may have. A column with more distinct values is not a class label.
pub const MAX_CLASSES: usize = 64;

/// The classes of a binary (0/1) label, in index order.
pub const BINARY_CLASSES: [&str; 2] = ["0", "1"];

/// [`BINARY_CLASSES`] as owned names: the classes of every table and spec from before multi-class labels.
pub fn binary_classes() -> Vec<String> {
    BINARY_CLASSES.iter().map(|c| c.to_string()).collect()
}

/// Whether `classes` are exactly [`BINARY_CLASSES`] (a 0/1 label, as opposed to two named classes).
pub fn is_binary_classes(classes: &[String]) -> bool {
    classes.len() == BINARY_CLASSES.len() && classes.iter().zip(BINARY_CLASSES).all(|(a, b)| a == b)
}

/// Whether `name` can name a class: not blank, at most [`MAX_COLUMN_NAME_BYTES`] bytes, no control character.
fn name_ok(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= MAX_COLUMN_NAME_BYTES
        && !name.chars().any(char::is_control)
}

/// Checks a list of class names: 2 to [`MAX_CLASSES`] of them, each 1 to [`MAX_COLUMN_NAME_BYTES`]
/// printable bytes, all distinct. The error says which rule is broken.
pub fn validate_classes(classes: &[String]) -> Result<(), String> {
    if !(2..=MAX_CLASSES).contains(&classes.len()) {
        return Err(format!(
            "{} classes (want 2 to {MAX_CLASSES})",
            classes.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in classes.iter().enumerate() {
        if !name_ok(c) {
            return Err(format!(
                "class {i} has no usable name (1 to {MAX_COLUMN_NAME_BYTES} printable bytes)"
            ));
        }
        if !seen.insert(c.as_str()) {
            return Err(format!("class {c:?} is listed twice"));
        }
    }
    Ok(())
}

/// A trimmed cell as a finite number, if it is one.
fn number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The index of the class `value` (a label cell) belongs to among `classes`, by the rule of the module
/// documentation: the same (trimmed) name, else the same number, else for [`BINARY_CLASSES`] a binary
/// spelling (`true`, `1.0`).
pub fn class_index(value: &str, classes: &[String]) -> Option<usize> {
    let v = value.trim();
    if let Some(i) = classes.iter().position(|c| c == v) {
        return Some(i);
    }
    if is_binary_classes(classes) {
        // 0.0 or 1.0: the index itself.
        return parse_label(v, 0).ok().map(|l| usize::from(l > 0.5));
    }
    let x = number(v)?;
    classes.iter().position(|c| number(c) == Some(x))
}

/// A label column read: one class index per row (`NaN` where the row has no label) and the classes' names.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedLabels {
    /// One class index per cell, as `f32`; `NaN` for a missing cell of a row to score.
    pub labels: Vec<f32>,
    /// The class names, in index order.
    pub classes: Vec<String>,
}

/// Turns the label column `label`'s cells (one per data row) into class indices: with `classes` given,
/// onto those classes; without, onto the classes inferred from the cells (module documentation). Every
/// cell must hold a label.
pub fn encode_labels<S: AsRef<str>>(
    label: &str,
    cells: &[S],
    classes: Option<&[String]>,
) -> Result<EncodedLabels, DatasetError> {
    encode(label, cells, classes, false)
}

/// [`encode_labels`]; with `missing_is_nan` a missing cell is a `NaN` label (a row to score) instead of
/// an error.
pub(crate) fn encode<S: AsRef<str>>(
    label: &str,
    cells: &[S],
    classes: Option<&[String]>,
    missing_is_nan: bool,
) -> Result<EncodedLabels, DatasetError> {
    let label = label.trim();
    // Distinct present values, in the order they first occur, and the row of that first occurrence.
    let mut first_row: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    for (row, cell) in cells.iter().enumerate() {
        let t = cell.as_ref().trim();
        if is_missing(t) {
            if missing_is_nan {
                continue;
            }
            return Err(DatasetError::NonBinaryLabel {
                value: cell.as_ref().to_string(),
                row,
            });
        }
        first_row.entry(t).or_insert_with(|| {
            distinct.push(t);
            row
        });
    }
    let (index, classes) = match classes {
        Some(given) => {
            validate_classes(given).map_err(|e| {
                DatasetError::InvalidOption(format!("the classes of {label:?}: {e}"))
            })?;
            let mut index = HashMap::with_capacity(distinct.len());
            for &v in &distinct {
                let i = class_index(v, given).ok_or_else(|| DatasetError::UnknownClass {
                    label: label.to_string(),
                    value: v.to_string(),
                    row: first_row[v],
                    classes: given.to_vec(),
                })?;
                index.insert(v, i);
            }
            (index, given.to_vec())
        }
        None => infer(label, &distinct, &first_row)?,
    };
    let labels = cells
        .iter()
        .map(|c| index.get(c.as_ref().trim()).map_or(f32::NAN, |&i| i as f32))
        .collect();
    Ok(EncodedLabels { labels, classes })
}

/// The classes of the distinct values `distinct` (no class given), and each value's index.
fn infer<'a>(
    label: &str,
    distinct: &[&'a str],
    first_row: &HashMap<&str, usize>,
) -> Result<(HashMap<&'a str, usize>, Vec<String>), DatasetError> {
    let binary: Option<Vec<f32>> = distinct.iter().map(|v| parse_label(v, 0).ok()).collect();
    if let Some(b) = binary {
        let index = distinct
            .iter()
            .zip(b)
            .map(|(&v, l)| (v, usize::from(l > 0.5)))
            .collect();
        return Ok((index, binary_classes()));
    }
    let numbers: Option<Vec<f64>> = distinct.iter().map(|v| number(v)).collect();
    // One entry per class: its sort key (a number, or the text itself) and its name.
    let mut names: Vec<&str> = Vec::new();
    let mut class_of_value: Vec<usize> = Vec::with_capacity(distinct.len());
    match &numbers {
        Some(values) => {
            // Spellings of one number are one class, named by the first spelling met.
            let mut by_value: HashMap<u64, usize> = HashMap::new();
            let mut keys: Vec<f64> = Vec::new();
            for (&v, &x) in distinct.iter().zip(values) {
                let k = *by_value.entry((x + 0.0).to_bits()).or_insert_with(|| {
                    names.push(v);
                    keys.push(x);
                    keys.len() - 1
                });
                class_of_value.push(k);
            }
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
            renumber(&mut names, &mut class_of_value, &order);
        }
        None => {
            names = distinct.to_vec();
            class_of_value = (0..distinct.len()).collect();
            let mut order: Vec<usize> = (0..names.len()).collect();
            order.sort_by(|&a, &b| names[a].cmp(names[b]));
            renumber(&mut names, &mut class_of_value, &order);
        }
    }
    if names.len() > MAX_CLASSES {
        return Err(DatasetError::TooManyClasses {
            label: label.to_string(),
            found: names.len(),
        });
    }
    if let Some(bad) = names.iter().find(|n| !name_ok(n)) {
        return Err(DatasetError::NonBinaryLabel {
            value: bad.to_string(),
            row: first_row.get(bad).copied().unwrap_or(0),
        });
    }
    let index = distinct.iter().copied().zip(class_of_value).collect();
    Ok((index, names.iter().map(|n| n.to_string()).collect()))
}

/// Puts `names` in `order` (old indices, new order) and renumbers `class_of_value` to match.
fn renumber(names: &mut Vec<&str>, class_of_value: &mut [usize], order: &[usize]) {
    let mut new_index = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    *names = order.iter().map(|&old| names[old]).collect();
    for c in class_of_value.iter_mut() {
        *c = new_index[*c];
    }
}

/// The class index of a label value: 0 for anything not above 0.5 (`NaN` included, as a 0/1 label was
/// read before), else the nearest integer, at most `MAX_CLASSES - 1`. For valid labels, the label itself.
pub(crate) fn class_of(label: f32) -> usize {
    if label > 0.5 {
        (label.round() as usize).clamp(1, MAX_CLASSES - 1)
    } else {
        0
    }
}

/// Rows of each class `0..k` among `labels` (labels `k` and above, and `NaN`, are not counted).
pub(crate) fn count_classes(labels: &[f32], k: usize) -> Vec<usize> {
    let mut counts = vec![0; k];
    for &l in labels {
        if l.is_nan() {
            continue;
        }
        if let Some(c) = counts.get_mut(class_of(l)) {
            *c += 1;
        }
    }
    counts
}

/// Classes for a table whose labels are indices with no names (built in code, not read): the binary
/// classes when every label is 0 or 1, else `"0"`, `"1"`, … up to the largest index.
pub(crate) fn index_classes(labels: &[f32]) -> Vec<String> {
    let k = labels
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| class_of(l) + 1)
        .max()
        .unwrap_or(0);
    if k <= 2 {
        binary_classes()
    } else {
        (0..k).map(|i| i.to_string()).collect()
    }
}

/// The name of class `i` among `classes` (its index as text when there is no such name).
pub(crate) fn class_name(classes: &[String], i: usize) -> String {
    classes.get(i).cloned().unwrap_or_else(|| i.to_string())
}

/// Up to ten class names, quoted, for an error message.
pub(crate) fn show_classes(classes: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = classes
        .iter()
        .take(SHOWN)
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if classes.len() > SHOWN {
        s.push_str(&format!(" and {} more", classes.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn infer_cells(cells: &[&str]) -> Result<EncodedLabels, DatasetError> {
        encode_labels("y", cells, None)
    }

    #[test]
    fn binary_spellings_stay_binary() -> Result<(), DatasetError> {
        let e = infer_cells(&["0", " 1.0 ", "TRUE", "false", "1e0", "-0"])?;
        assert_eq!(e.classes, binary_classes());
        assert_eq!(e.labels, vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
        // One value only is still binary (a holder's file may hold one class).
        assert_eq!(infer_cells(&["1", "1"])?.classes, binary_classes());
        Ok(())
    }

    #[test]
    fn numbers_sort_numerically_with_one_class_per_number() -> Result<(), DatasetError> {
        let e = infer_cells(&["10", "2", "2.0", "0", "-1", "10.00"])?;
        assert_eq!(e.classes, names(&["-1", "0", "2", "10"]));
        assert_eq!(e.labels, vec![3.0, 2.0, 2.0, 1.0, 0.0, 3.0]);
        Ok(())
    }

    #[test]
    fn text_sorts_by_bytes_and_case_matters() -> Result<(), DatasetError> {
        let e = infer_cells(&["scam", "benign", "Phish", "benign", " scam "])?;
        assert_eq!(e.classes, names(&["Phish", "benign", "scam"]));
        assert_eq!(e.labels, vec![2.0, 1.0, 0.0, 1.0, 2.0]);
        // A number among text is text too.
        let mixed = infer_cells(&["2", "benign", "10"])?;
        assert_eq!(mixed.classes, names(&["10", "2", "benign"]));
        Ok(())
    }

    #[test]
    fn too_many_missing_and_unnameable() {
        let many: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("{i}.5")).collect();
        match encode_labels("amount", &many, None) {
            Err(e @ DatasetError::TooManyClasses { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("65") && msg.contains("amount"), "{msg}");
            }
            other => panic!("expected TooManyClasses, got {other:?}"),
        }
        assert!(encode_labels("y", &many[..MAX_CLASSES], None).is_ok());
        for missing in ["", "NA", "nan", "None"] {
            assert!(
                matches!(
                    infer_cells(&["a", "b", missing]),
                    Err(DatasetError::NonBinaryLabel { row: 2, .. })
                ),
                "{missing:?}"
            );
        }
        let e = encode("y", &["a", "", "b"], None, true).expect("scoring rows");
        assert!(e.labels[1].is_nan() && e.labels[2] == 1.0);
        let long = "x".repeat(MAX_COLUMN_NAME_BYTES + 1);
        assert!(matches!(
            infer_cells(&["a", &long]),
            Err(DatasetError::NonBinaryLabel { row: 1, .. })
        ));
    }

    #[test]
    fn given_classes_map_by_name_number_or_binary_spelling() -> Result<(), DatasetError> {
        let job = names(&["0", "2", "7"]);
        let e = encode_labels("y", &["7.0", "2", "0e1", "7"], Some(&job))?;
        assert_eq!(
            (e.labels, e.classes),
            (vec![2.0, 1.0, 0.0, 2.0], job.clone())
        );
        match encode_labels("y", &["0", "2", "3"], Some(&job)) {
            Err(e @ DatasetError::UnknownClass { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("\"3\"") && msg.contains("row 2"), "{msg}");
            }
            other => panic!("expected UnknownClass, got {other:?}"),
        }
        let e = encode_labels("y", &["true", "0.0"], Some(&binary_classes()))?;
        assert_eq!(e.labels, vec![1.0, 0.0]);
        let text = names(&["benign", "phish"]);
        assert_eq!(
            encode_labels("y", &["phish"], Some(&text))?.labels,
            vec![1.0]
        );
        assert!(matches!(
            encode_labels("y", &["1"], Some(&text)),
            Err(DatasetError::UnknownClass { .. })
        ));
        assert!(matches!(
            encode_labels("y", &["1"], Some(&names(&["a"]))),
            Err(DatasetError::InvalidOption(_))
        ));
        Ok(())
    }

    #[test]
    fn class_lists_are_checked() {
        assert!(validate_classes(&binary_classes()).is_ok());
        assert!(validate_classes(&names(&["a"])).is_err());
        assert!(validate_classes(&names(&["a", "a"])).is_err());
        assert!(validate_classes(&names(&["a", " "])).is_err());
        assert!(validate_classes(&names(&["a", "b\n"])).is_err());
        let many: Vec<String> = (0..=MAX_CLASSES).map(|i| i.to_string()).collect();
        assert!(validate_classes(&many).is_err());
        assert!(validate_classes(&many[..MAX_CLASSES]).is_ok());
    }

    #[test]
    fn indices_count_and_name() {
        assert_eq!(class_of(f32::NAN), 0);
        assert_eq!((class_of(0.5), class_of(1.0), class_of(2.0)), (0, 1, 2));
        assert_eq!(
            count_classes(&[0.0, 2.0, 2.0, f32::NAN, 5.0], 3),
            vec![1, 0, 2]
        );
        assert_eq!(index_classes(&[0.0, 0.0]), binary_classes());
        assert_eq!(index_classes(&[0.0, 2.0]), names(&["0", "1", "2"]));
        assert!(
            show_classes(&(0..12).map(|i| i.to_string()).collect::<Vec<_>>())
                .ends_with("and 2 more")
        );
    }
}
