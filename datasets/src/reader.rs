//! Reading a labelled table — CSV (optionally gzipped) or Parquet — into a column-major table of trimmed text
//! cells, with the label turned into class indices ([`crate::labels`]).
//!
//! Nothing is interpreted here beyond the label: deciding which columns are numeric, ids or text is the job of
//! [`crate::columns`], whatever the file format, so a Parquet file and the CSV it was exported from give the
//! same table. Header names are trimmed (the fraud table has names with leading and trailing spaces) and
//! repeated names get a `.1`, `.2` suffix, as pandas does, so every column can be named in the report.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::DatasetError;
use crate::options::LoadOptions;

/// A table as text: labels as class indices, every other column kept as trimmed strings, column-major.
#[derive(Debug, Clone)]
pub(crate) struct RawTable {
    /// Trimmed, de-duplicated names of the non-label columns, in file order.
    pub names: Vec<String>,
    /// `cells[j][i]`: column `j`, data row `i`, trimmed.
    pub cells: Vec<Vec<String>>,
    /// One class index per data row (`NaN` for every row when the label column is absent and optional, and
    /// for a row to score whose label cell is missing).
    pub labels: Vec<f32>,
    /// The label's classes, in index order (the given ones, or those inferred from the cells; the binary
    /// classes when there is no label column).
    pub classes: Vec<String>,
    /// Whether the file has the label column.
    pub has_label: bool,
    /// Header names renamed because they repeated an earlier one: (original, new).
    pub renamed: Vec<(String, String)>,
    /// Columns that cannot be read as cells (a Parquet list, struct or map): (name, type).
    pub unsupported: Vec<(String, String)>,
}

impl RawTable {
    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.labels.len()
    }
}

/// Parses one binary label cell: `0`/`1` in any numeric spelling, or `true`/`false` (an empty cell is no
/// label: an error naming `row`). The binary case of [`crate::labels`].
pub(crate) fn parse_label(cell: &str, row: usize) -> Result<f32, DatasetError> {
    let t = cell.trim();
    let bad = || DatasetError::NonBinaryLabel {
        value: cell.to_string(),
        row,
    };
    if t.eq_ignore_ascii_case("true") {
        return Ok(1.0);
    }
    if t.eq_ignore_ascii_case("false") {
        return Ok(0.0);
    }
    match t.parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        Ok(1.0) => Ok(1.0),
        _ => Err(bad()),
    }
}

/// Whether `path` names a Parquet file (its extension is `.parquet`, any case).
pub(crate) fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Reads `path` with the label column `opts.label` (onto the classes `opts.classes` when given): Parquet when
/// the name ends in `.parquet`, else CSV (gzip when it ends in `.gz`) with [`LoadOptions::delimiter_for`].
/// With `label_required` false a file without the label column is read too, every label `NaN`.
pub(crate) fn read_table(
    path: &Path,
    opts: &LoadOptions,
    label_required: bool,
) -> Result<RawTable, DatasetError> {
    if is_parquet(path) {
        if !path.is_file() {
            return Err(DatasetError::MissingFile {
                path: path.to_path_buf(),
            });
        }
        crate::parquet_file::read_parquet(path, &label_column(opts, label_required))
    } else {
        read_csv(
            path,
            &label_column(opts, label_required),
            opts.delimiter_for(path),
        )
    }
}

/// How the label column is read: its name, whether it must be there, and its classes if given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelColumn<'a> {
    /// The label column's name (trimmed before matching).
    pub name: &'a str,
    /// Whether a file without it is an error (else every label is `NaN`: rows to score).
    pub required: bool,
    /// The classes to map the cells onto; `None` infers them.
    pub classes: Option<&'a [String]>,
}

impl<'a> LabelColumn<'a> {
    /// A required label column `name` whose classes are inferred.
    #[cfg(test)]
    pub fn required(name: &'a str) -> Self {
        LabelColumn {
            name,
            required: true,
            classes: None,
        }
    }

    /// The labels of a table of `rows` rows whose label column has the cells `cells` (`None`: the file has no
    /// label column), with their classes.
    pub fn encode(
        &self,
        cells: Option<&[String]>,
        rows: usize,
    ) -> Result<crate::labels::EncodedLabels, DatasetError> {
        match cells {
            Some(c) => crate::labels::encode(self.name, c, self.classes, !self.required),
            None => Ok(crate::labels::EncodedLabels {
                labels: vec![f32::NAN; rows],
                classes: self
                    .classes
                    .map_or_else(crate::labels::binary_classes, <[String]>::to_vec),
            }),
        }
    }
}

/// The label column `opts` describes.
fn label_column(opts: &LoadOptions, required: bool) -> LabelColumn<'_> {
    LabelColumn {
        name: &opts.label,
        required,
        classes: opts.classes.as_deref(),
    }
}

/// The index of the label column in the (trimmed) header: an error when it is absent and required.
pub(crate) fn find_label(
    header: &[String],
    label: &str,
    required: bool,
) -> Result<Option<usize>, DatasetError> {
    let wanted = label.trim();
    match header.iter().position(|h| h == wanted) {
        Some(j) => Ok(Some(j)),
        None if required => Err(DatasetError::MissingLabel {
            label: label.to_string(),
            available: header.to_vec(),
        }),
        None => Ok(None),
    }
}

/// Reads `path` (plain CSV, or gzip when the name ends in `.gz`) with the label column `label`.
pub(crate) fn read_csv(
    path: &Path,
    label: &LabelColumn<'_>,
    delimiter: u8,
) -> Result<RawTable, DatasetError> {
    if !path.is_file() {
        return Err(DatasetError::MissingFile {
            path: path.to_path_buf(),
        });
    }
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    read_csv_from(input, path, label, delimiter)
}

/// Reads a labelled CSV from any reader; `path` is only used in error messages.
pub(crate) fn read_csv_from(
    input: impl Read,
    path: &Path,
    label: &LabelColumn<'_>,
    delimiter: u8,
) -> Result<RawTable, DatasetError> {
    let csv_err = |source| DatasetError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(input);
    let header: Vec<String> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .enumerate()
        .map(|(j, h)| {
            if j == 0 {
                h.trim_start_matches('\u{feff}').trim()
            } else {
                h.trim()
            }
            .to_string()
        })
        .collect();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(DatasetError::Empty(format!(
            "{} has no header row",
            path.display()
        )));
    }
    let label_idx = find_label(&header, label.name, label.required)?;

    let (names, renamed) = unique_names(&header, label_idx);
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    let mut label_cells = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    while rdr.read_record(&mut record).map_err(csv_err)? {
        if record.len() != header.len() {
            // A blank line inside the file parses as a one-field record: treat it like any ragged row.
            return Err(DatasetError::Ragged {
                row,
                line: record.position().map_or(0, |p| p.line()),
                expected: header.len(),
                found: record.len(),
            });
        }
        if let Some(l) = label_idx {
            // Kept verbatim: an error names the cell as it is in the file.
            label_cells.push(record[l].to_string());
        }
        let mut k = 0;
        for (j, cell) in record.iter().enumerate() {
            if Some(j) != label_idx {
                cells[k].push(cell.trim().to_string());
                k += 1;
            }
        }
        row += 1;
    }
    if row == 0 {
        return Err(DatasetError::Empty(format!(
            "{} has a header but no data rows",
            path.display()
        )));
    }
    // Rows to score may have their label cell empty (not known yet): NaN, as without the column.
    let encoded = label.encode(label_idx.map(|_| label_cells.as_slice()), row)?;
    Ok(RawTable {
        names,
        cells,
        labels: encoded.labels,
        classes: encoded.classes,
        has_label: label_idx.is_some(),
        renamed,
        unsupported: Vec::new(),
    })
}

/// Non-label header names with repeats renamed `name.1`, `name.2`, … (skipping names already taken).
pub(crate) fn unique_names(
    header: &[String],
    label_idx: Option<usize>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut taken: std::collections::HashSet<String> = header.iter().cloned().collect();
    let mut names = Vec::with_capacity(header.len().saturating_sub(1));
    let mut renamed = Vec::new();
    for (j, h) in header.iter().enumerate() {
        if Some(j) == label_idx {
            continue;
        }
        let count = seen.entry(h.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            names.push(h.clone());
            continue;
        }
        let mut suffix = *count - 1;
        let mut candidate = format!("{h}.{suffix}");
        while taken.contains(&candidate) {
            suffix += 1;
            candidate = format!("{h}.{suffix}");
        }
        taken.insert(candidate.clone());
        renamed.push((h.clone(), candidate.clone()));
        names.push(candidate);
    }
    (names, renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, label: &str) -> Result<RawTable, DatasetError> {
        read_csv_from(
            text.as_bytes(),
            Path::new("mem.csv"),
            &LabelColumn::required(label),
            b',',
        )
    }

    #[test]
    fn trims_headers_and_renames_repeats() -> Result<(), DatasetError> {
        let t = read(" a ,y, a,b\n1,0,2,x\n3,1,4,y\n", "y")?;
        assert_eq!(t.names, vec!["a", "a.1", "b"]);
        assert_eq!(t.renamed, vec![("a".to_string(), "a.1".to_string())]);
        assert_eq!(t.cells[1], vec!["2", "4"]);
        assert_eq!(t.labels, vec![0.0, 1.0]);
        Ok(())
    }

    #[test]
    fn label_spellings() {
        assert_eq!(parse_label(" 1.0 ", 0).ok(), Some(1.0));
        assert_eq!(parse_label("FALSE", 0).ok(), Some(0.0));
        assert!(matches!(
            parse_label("2", 7),
            Err(DatasetError::NonBinaryLabel { row: 7, .. })
        ));
        assert!(matches!(
            parse_label("", 0),
            Err(DatasetError::NonBinaryLabel { .. })
        ));
    }

    #[test]
    fn ragged_and_empty() {
        assert!(matches!(
            read("a,y\n1,0\n2\n", "y"),
            Err(DatasetError::Ragged {
                row: 1,
                line: 3,
                ..
            })
        ));
        assert!(matches!(read("a,y\n", "y"), Err(DatasetError::Empty(_))));
        assert!(matches!(read("", "y"), Err(DatasetError::Empty(_))));
        assert!(matches!(
            read("a,b\n1,2\n", "y"),
            Err(DatasetError::MissingLabel { .. })
        ));
    }

    #[test]
    fn other_delimiters_and_an_optional_label() -> Result<(), DatasetError> {
        let t = read_csv_from(
            "a;y;b\n1,5;0;x\n2;1;y\n".as_bytes(),
            Path::new("mem.csv"),
            &LabelColumn::required("y"),
            b';',
        )?;
        assert_eq!(t.names, vec!["a", "b"]);
        assert_eq!(t.cells[0], vec!["1,5", "2"], "a comma is data under ';'");
        assert_eq!(t.labels, vec![0.0, 1.0]);
        let tab = read_csv_from(
            "a\ty\n1\t1\n".as_bytes(),
            Path::new("mem.tsv"),
            &LabelColumn::required("y"),
            b'\t',
        )?;
        assert_eq!((tab.names, tab.labels), (vec!["a".to_string()], vec![1.0]));
        // Read with the wrong delimiter, the header is one name and the label is not found.
        assert!(matches!(
            read("a;y\n1;0\n", "y"),
            Err(DatasetError::MissingLabel { .. })
        ));

        let unlabelled = read_csv_from(
            "a,b\n1,2\n3,4\n".as_bytes(),
            Path::new("mem.csv"),
            &LabelColumn {
                required: false,
                ..LabelColumn::required("y")
            },
            b',',
        )?;
        assert!(!unlabelled.has_label);
        assert_eq!(unlabelled.names, vec!["a", "b"]);
        assert_eq!(unlabelled.n_rows(), 2);
        assert!(unlabelled.labels.iter().all(|l| l.is_nan()));
        // Present, an optional label is still read and checked.
        let labelled = read_csv_from(
            "a,y\n1,1\n".as_bytes(),
            Path::new("mem.csv"),
            &LabelColumn {
                required: false,
                ..LabelColumn::required("y")
            },
            b',',
        )?;
        assert!(labelled.has_label && labelled.labels == vec![1.0]);
        let binary = crate::labels::binary_classes();
        assert!(matches!(
            read_csv_from(
                "a,y\n1,2\n".as_bytes(),
                Path::new("mem.csv"),
                &LabelColumn {
                    required: false,
                    classes: Some(&binary),
                    ..LabelColumn::required("y")
                },
                b','
            ),
            Err(DatasetError::UnknownClass { row: 0, .. })
        ));
        Ok(())
    }

    #[test]
    fn class_names_become_indices() -> Result<(), DatasetError> {
        let t = read("a,kind\n1,scam\n2, benign\n3,phish\n4,scam\n", "kind")?;
        assert_eq!(t.classes, vec!["benign", "phish", "scam"]);
        assert_eq!(t.labels, vec![2.0, 0.0, 1.0, 2.0]);
        let t = read("a,y\n1,1\n2,true\n3,0.0\n", "y")?;
        assert_eq!(t.classes, crate::labels::binary_classes());
        assert_eq!(t.labels, vec![1.0, 1.0, 0.0]);
        Ok(())
    }
}
