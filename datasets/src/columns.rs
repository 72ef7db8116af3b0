//! Deciding what each CSV column is (id, identifier, numeric, free text) and turning the keepers into numbers.
//!
//! Missing numeric cells become `NaN` here and are filled later by the [`crate::Normalizer`], so that the
//! fill value (0 or the training median) is one deliberate, recorded choice rather than a parsing accident.

use std::collections::HashMap;

use crate::options::{LoadOptions, TextPolicy};
use crate::reader::RawTable;
use crate::report::{DropReason, DroppedColumn, LoadReport};
use crate::table::Dataset;

/// Spellings of "no value" in a numeric column (compared case-insensitively, after trimming).
const MISSING_MARKERS: [&str; 6] = ["", "na", "n/a", "nan", "null", "none"];

/// Spellings of an infinite value (compared case-insensitively, after trimming): exporters write them for a
/// ratio over zero. No fixed-point model can take one, so they are missing cells, counted and reported, rather
/// than text that would drop their whole column.
const INFINITY_MARKERS: [&str; 6] = ["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"];

/// Whether a trimmed cell is an infinity (`inf`, `-Infinity`, …).
pub(crate) fn is_infinity(cell: &str) -> bool {
    INFINITY_MARKERS
        .iter()
        .any(|m| cell.eq_ignore_ascii_case(m))
}

/// Whether a trimmed cell means "missing" (an infinity included).
pub(crate) fn is_missing(cell: &str) -> bool {
    MISSING_MARKERS.iter().any(|m| cell.eq_ignore_ascii_case(m)) || is_infinity(cell)
}

/// Parses a trimmed, non-missing cell as a number finite in the table's `f32`. A value past
/// `f32`'s range (±3.4e38) is no usable number, so its column is text: cast, it was ±∞, which
/// the normaliser turned into NaN features (found by the `csv_table` fuzz target).
pub(crate) fn parse_number(cell: &str) -> Option<f32> {
    cell.parse::<f64>()
        .ok()
        .map(|v| v as f32)
        .filter(|v| v.is_finite())
}

fn is_index_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.is_empty() || n == "index" || n == "id" || n == "idx" || n.starts_with("unnamed:")
}

fn looks_like_address(cell: &str) -> bool {
    cell.len() > 2 && (cell.starts_with("0x") || cell.starts_with("0X"))
}

/// The parsed form of one column.
enum Kind {
    Numeric(Vec<f32>),
    Text { example: String },
}

fn classify(cells: &[String]) -> Kind {
    let mut values = Vec::with_capacity(cells.len());
    for c in cells {
        if is_missing(c) {
            values.push(f32::NAN);
        } else if let Some(v) = parse_number(c) {
            values.push(v);
        } else {
            return Kind::Text { example: c.clone() };
        }
    }
    Kind::Numeric(values)
}

/// True when the column is exactly 0..n or 1..n: a row number whatever its header says.
fn is_row_number(values: &[f32]) -> bool {
    values.len() > 2
        && [0.0f64, 1.0].iter().any(|&start| {
            values
                .iter()
                .enumerate()
                .all(|(i, &v)| f64::from(v) == start + i as f64)
        })
}

/// Turns the text table into a numeric one, dropping or encoding columns as `opts` says and recording why.
/// With `row_numbers` a numeric column that is exactly 0..n or 1..n is dropped as an index whatever its
/// name; rows to score (a few, in any order) are read without that guess.
pub(crate) fn to_numeric(
    raw: &RawTable,
    opts: &LoadOptions,
    report: &mut LoadReport,
    row_numbers: bool,
) -> Dataset {
    let n = raw.n_rows();
    let requested: Vec<&str> = opts.drop_columns.iter().map(|s| s.trim()).collect();
    let mut names = Vec::new();
    let mut columns: Vec<Vec<f32>> = Vec::new();
    let mut dropped = Vec::new();
    let mut drop = |name: &str, reason| {
        dropped.push(DroppedColumn {
            name: name.to_string(),
            reason,
        })
    };
    let mut encoded = Vec::new();
    let mut infinities = Vec::new();

    for (name, cells) in raw.names.iter().zip(&raw.cells) {
        if requested.contains(&name.as_str()) {
            drop(name, DropReason::Requested);
            continue;
        }
        if is_index_name(name) {
            drop(name, DropReason::IdOrIndex);
            continue;
        }
        match classify(cells) {
            Kind::Numeric(values) if row_numbers && is_row_number(&values) => {
                drop(name, DropReason::IdOrIndex)
            }
            Kind::Numeric(values) => {
                let inf = cells.iter().filter(|c| is_infinity(c)).count();
                if inf > 0 {
                    infinities.push(format!("{name} ({inf})"));
                }
                names.push(name.clone());
                columns.push(values);
            }
            Kind::Text { example } => {
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for c in cells {
                    *counts
                        .entry(if is_missing(c) { "" } else { c.as_str() })
                        .or_insert(0) += 1;
                }
                let distinct = counts.len();
                let present = cells.iter().filter(|c| !is_missing(c)).count();
                let addresses = cells.iter().filter(|c| looks_like_address(c)).count();
                if 2 * addresses > present || (n >= 20 && distinct * 20 >= n * 19) {
                    drop(name, DropReason::Identifier { distinct });
                    continue;
                }
                match opts.text {
                    TextPolicy::Drop => drop(name, DropReason::NonNumeric { distinct, example }),
                    TextPolicy::OneHot { max_categories } => {
                        let made = one_hot(
                            name,
                            cells,
                            counts,
                            max_categories,
                            &mut names,
                            &mut columns,
                        );
                        encoded.push((name.clone(), made));
                    }
                }
            }
        }
    }
    report.dropped_columns.extend(dropped);
    report.encoded_columns.extend(encoded);
    if !infinities.is_empty() {
        report.notes.push(format!(
            "infinite cells (inf, -inf, Infinity) counted as missing in {} column{}: {}",
            infinities.len(),
            if infinities.len() == 1 { "" } else { "s" },
            infinities.join(", ")
        ));
    }
    let mut out = Dataset::empty(names);
    out.features.reserve(n * out.n_features);
    for i in 0..n {
        for col in &columns {
            out.features.push(col[i]);
        }
        out.labels.push(raw.labels[i]);
    }
    out
}

/// Appends one 0/1 column per frequent value (ties broken by value, for determinism); returns how many.
fn one_hot(
    name: &str,
    cells: &[String],
    counts: HashMap<&str, usize>,
    max_categories: usize,
    names: &mut Vec<String>,
    columns: &mut Vec<Vec<f32>>,
) -> usize {
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let has_other = ranked.len() > max_categories;
    ranked.truncate(max_categories);
    let vocab: Vec<&str> = ranked.into_iter().map(|(v, _)| v).collect();
    for v in &vocab {
        let label = if v.is_empty() { "(missing)" } else { v };
        names.push(format!("{name}={label}"));
        columns.push(
            cells
                .iter()
                .map(|c| {
                    f32::from(u8::from(
                        (if is_missing(c) { "" } else { c.as_str() }) == *v,
                    ))
                })
                .collect(),
        );
    }
    if has_other {
        names.push(format!("{name}=(other)"));
        columns.push(
            cells
                .iter()
                .map(|c| {
                    f32::from(u8::from(!vocab.contains(&if is_missing(c) {
                        ""
                    } else {
                        c.as_str()
                    })))
                })
                .collect(),
        );
    }
    vocab.len() + usize::from(has_other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::read_csv_from;
    use std::path::Path;

    fn numeric(text: &str, opts: &LoadOptions) -> (Dataset, LoadReport) {
        let raw = read_csv_from(
            text.as_bytes(),
            Path::new("mem.csv"),
            &crate::reader::LabelColumn::required(&opts.label),
            b',',
        )
        .expect("test csv parses");
        let mut report = LoadReport::default();
        let ds = to_numeric(&raw, opts, &mut report, true);
        (ds, report)
    }

    const CSV: &str = ",Index,Address,y,a,tok,b\n\
        0,5,0xabc,1,1.5,Foo,\n\
        1,5,0xdef,0,2.5,Bar,7\n\
        2,6,0x123,1,NA,Foo,8\n\
        3,6,0x456,0,-1e3,,9\n";

    #[test]
    fn drops_ids_addresses_and_text_and_marks_missing() {
        let (ds, rep) = numeric(CSV, &LoadOptions::with_label("y"));
        assert_eq!(ds.feature_names, vec!["a", "b"]);
        assert_eq!(ds.n_rows(), 4);
        assert!(ds.row(0)[1].is_nan() && ds.row(2)[0].is_nan());
        assert_eq!(ds.row(3), &[-1000.0, 9.0]);
        assert_eq!(
            rep.dropped_where(|r| *r == DropReason::IdOrIndex),
            vec!["", "Index"]
        );
        assert_eq!(
            rep.dropped_where(|r| matches!(r, DropReason::Identifier { .. })),
            vec!["Address"]
        );
        assert_eq!(
            rep.dropped_where(|r| matches!(r, DropReason::NonNumeric { distinct: 3, .. })),
            vec!["tok"]
        );
    }

    #[test]
    fn one_hot_and_requested_drop() {
        let opts = LoadOptions {
            text: TextPolicy::OneHot { max_categories: 1 },
            drop_columns: vec![" b ".into()],
            ..LoadOptions::with_label("y")
        };
        let (ds, rep) = numeric(CSV, &opts);
        assert_eq!(ds.feature_names, vec!["a", "tok=Foo", "tok=(other)"]);
        assert_eq!(ds.column(1).collect::<Vec<_>>(), vec![1.0, 0.0, 1.0, 0.0]);
        assert_eq!(ds.column(2).collect::<Vec<_>>(), vec![0.0, 1.0, 0.0, 1.0]);
        assert_eq!(rep.encoded_columns, vec![("tok".to_string(), 2)]);
        assert_eq!(
            rep.dropped_where(|r| *r == DropReason::Requested),
            vec!["b"]
        );
    }

    #[test]
    fn numbers_past_the_range_of_f32_are_not_numbers() {
        let (ds, rep) = numeric(
            "y,a,b\n1,1e39,1\n0,2,2\n1,3,-3e38\n",
            &LoadOptions::with_label("y"),
        );
        assert_eq!(ds.feature_names, vec!["b"]);
        assert_eq!(
            rep.dropped_where(|r| matches!(r, DropReason::NonNumeric { .. })),
            vec!["a"]
        );
    }

    #[test]
    fn row_numbers_are_ids_whatever_the_header() {
        let (ds, rep) = numeric(
            "n,y,x\n1,0,3\n2,1,3\n3,0,4\n",
            &LoadOptions::with_label("y"),
        );
        assert_eq!(ds.feature_names, vec!["x"]);
        assert_eq!(
            rep.dropped_where(|r| *r == DropReason::IdOrIndex),
            vec!["n"]
        );
    }
}
