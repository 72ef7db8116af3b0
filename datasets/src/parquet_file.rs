//! Reading a Parquet file (what blockchain extractors and warehouses export) into the same [`RawTable`] of text
//! cells the CSV reader produces, through the Arrow ecosystem's reader, so that deciding what each column is,
//! pruning, splitting and normalising are shared with CSV and a Parquet copy of a CSV gives the same table.
//!
//! Every value becomes the text a CSV export would have held:
//! - integers, floats (Display: exact round trip, `NaN`/`inf` become missing cells later), booleans as `1`/`0`;
//! - decimals as plain decimal text with their scale (`12345` at scale 2 is `123.45`);
//! - timestamps, dates, times and durations as their integer count of the column's unit (a Unix timestamp in
//!   seconds stays that number), which is how transaction exports carry time;
//! - strings trimmed, as the CSV reader trims cells; binary values (addresses, hashes) as `0x…` hex, so they are
//!   recognised as identifiers;
//! - dictionary-encoded columns through their values; nulls as empty (missing) cells.
//!
//! Nested columns (lists, structs, maps, unions) have no cell form: they are left out and reported as dropped.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;

use crate::error::DatasetError;
use crate::reader::{find_label, unique_names, LabelColumn, RawTable};

/// Rows decoded per Arrow batch.
const BATCH_ROWS: usize = 8192;

/// Reads the Parquet file `path` with the label column `label` (see [`crate::reader::read_table`]). A label
/// column may be of any type with a cell form (integers, booleans, floats, strings, dictionaries of them):
/// its cells go through the same class rule as a CSV's ([`crate::labels`]).
pub(crate) fn read_parquet(path: &Path, label: &LabelColumn<'_>) -> Result<RawTable, DatasetError> {
    let parquet_err = |source: ParquetError| DatasetError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let schema = builder.schema().clone();
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().trim().to_string())
        .collect();
    if header.is_empty() {
        return Err(DatasetError::Empty(format!(
            "{} has no columns",
            path.display()
        )));
    }
    let label_idx = find_label(&header, label.name, label.required)?;
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(parquet_err)?;

    // `None` once a column turns out to have no cell form.
    let mut columns: Vec<Option<Vec<String>>> = vec![Some(Vec::new()); header.len()];
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(e.into()))?;
        for (slot, array) in columns.iter_mut().zip(batch.columns()) {
            if let Some(out) = slot {
                match cells(array.as_ref()) {
                    Some(c) => out.extend(c),
                    None => *slot = None,
                }
            }
        }
    }

    let label_cells = match label_idx {
        Some(l) => {
            let Some(cells) = &columns[l] else {
                return Err(DatasetError::NonBinaryLabel {
                    value: format!("(a column of type {})", schema.field(l).data_type()),
                    row: 0,
                });
            };
            Some(cells.as_slice())
        }
        None => None,
    };
    let rows = label_cells.map_or_else(
        || columns.iter().flatten().map(Vec::len).next().unwrap_or(0),
        <[String]>::len,
    );
    if rows == 0 {
        return Err(DatasetError::Empty(format!(
            "{} has a schema but no data rows",
            path.display()
        )));
    }
    let encoded = label.encode(label_cells, rows)?;

    let (all_names, renamed) = unique_names(&header, label_idx);
    let mut names = Vec::with_capacity(all_names.len());
    let mut kept = Vec::with_capacity(all_names.len());
    let mut unsupported = Vec::new();
    let others = columns
        .into_iter()
        .enumerate()
        .filter(|(j, _)| Some(*j) != label_idx);
    for ((j, column), name) in others.zip(all_names) {
        match column {
            Some(c) => {
                names.push(name);
                kept.push(c);
            }
            None => unsupported.push((name, schema.field(j).data_type().to_string())),
        }
    }
    Ok(RawTable {
        names,
        cells: kept,
        labels: encoded.labels,
        classes: encoded.classes,
        has_label: label_idx.is_some(),
        renamed,
        unsupported,
    })
}

/// One primitive column as text, nulls empty; `None` if the array is not of type `T`.
fn primitive<T: ArrowPrimitiveType>(
    array: &dyn Array,
    text: impl Fn(T::Native) -> String,
) -> Option<Vec<String>> {
    let a = array.as_primitive_opt::<T>()?;
    Some(
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    String::new()
                } else {
                    text(a.value(i))
                }
            })
            .collect(),
    )
}

/// Text columns, trimmed, nulls empty.
fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    values
        .map(|v| v.map_or_else(String::new, |s| s.trim().to_string()))
        .collect()
}

/// Binary columns as `0x` hex, nulls and empty values empty.
fn binaries<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> Vec<String> {
    values
        .map(|v| match v {
            Some(bytes) if !bytes.is_empty() => {
                let mut s = String::with_capacity(2 + 2 * bytes.len());
                s.push_str("0x");
                for b in bytes {
                    let _ = write!(s, "{b:02x}");
                }
                s
            }
            _ => String::new(),
        })
        .collect()
}

/// An unscaled decimal integer's digits (`-12345`) written at `scale` (2: `-123.45`).
pub(crate) fn scaled(digits: &str, scale: i8) -> String {
    if scale <= 0 {
        let zeros = usize::from(scale.unsigned_abs());
        return format!("{digits}{}", "0".repeat(zeros));
    }
    let (sign, d) = digits
        .strip_prefix('-')
        .map_or(("", digits), |rest| ("-", rest));
    let s = usize::from(scale.unsigned_abs());
    let padded = if d.len() <= s {
        format!("{}{d}", "0".repeat(s + 1 - d.len()))
    } else {
        d.to_string()
    };
    let (int, frac) = padded.split_at(padded.len() - s);
    format!("{sign}{int}.{frac}")
}

/// The cells of one Arrow array, as the module documentation says; `None` for a type without a cell form.
fn cells(array: &dyn Array) -> Option<Vec<String>> {
    fn show<V: ToString>(v: V) -> String {
        v.to_string()
    }
    use DataType as D;
    match array.data_type() {
        D::Null => Some(vec![String::new(); array.len()]),
        D::Boolean => Some(
            array
                .as_boolean_opt()?
                .iter()
                .map(|v| v.map_or_else(String::new, |b| if b { "1" } else { "0" }.to_string()))
                .collect(),
        ),
        D::Int8 => primitive::<Int8Type>(array, show),
        D::Int16 => primitive::<Int16Type>(array, show),
        D::Int32 => primitive::<Int32Type>(array, show),
        D::Int64 => primitive::<Int64Type>(array, show),
        D::UInt8 => primitive::<UInt8Type>(array, show),
        D::UInt16 => primitive::<UInt16Type>(array, show),
        D::UInt32 => primitive::<UInt32Type>(array, show),
        D::UInt64 => primitive::<UInt64Type>(array, show),
        D::Float16 => primitive::<Float16Type>(array, show),
        D::Float32 => primitive::<Float32Type>(array, show),
        D::Float64 => primitive::<Float64Type>(array, show),
        D::Decimal32(_, s) => primitive::<Decimal32Type>(array, |v| scaled(&v.to_string(), *s)),
        D::Decimal64(_, s) => primitive::<Decimal64Type>(array, |v| scaled(&v.to_string(), *s)),
        D::Decimal128(_, s) => primitive::<Decimal128Type>(array, |v| scaled(&v.to_string(), *s)),
        D::Decimal256(_, s) => primitive::<Decimal256Type>(array, |v| scaled(&v.to_string(), *s)),
        D::Timestamp(TimeUnit::Second, _) => primitive::<TimestampSecondType>(array, show),
        D::Timestamp(TimeUnit::Millisecond, _) => {
            primitive::<TimestampMillisecondType>(array, show)
        }
        D::Timestamp(TimeUnit::Microsecond, _) => {
            primitive::<TimestampMicrosecondType>(array, show)
        }
        D::Timestamp(TimeUnit::Nanosecond, _) => primitive::<TimestampNanosecondType>(array, show),
        D::Date32 => primitive::<Date32Type>(array, show),
        D::Date64 => primitive::<Date64Type>(array, show),
        D::Time32(TimeUnit::Second) => primitive::<Time32SecondType>(array, show),
        D::Time32(TimeUnit::Millisecond) => primitive::<Time32MillisecondType>(array, show),
        D::Time64(TimeUnit::Microsecond) => primitive::<Time64MicrosecondType>(array, show),
        D::Time64(TimeUnit::Nanosecond) => primitive::<Time64NanosecondType>(array, show),
        D::Duration(TimeUnit::Second) => primitive::<DurationSecondType>(array, show),
        D::Duration(TimeUnit::Millisecond) => primitive::<DurationMillisecondType>(array, show),
        D::Duration(TimeUnit::Microsecond) => primitive::<DurationMicrosecondType>(array, show),
        D::Duration(TimeUnit::Nanosecond) => primitive::<DurationNanosecondType>(array, show),
        D::Utf8 => Some(strings(array.as_string_opt::<i32>()?.iter())),
        D::LargeUtf8 => Some(strings(array.as_string_opt::<i64>()?.iter())),
        D::Utf8View => Some(strings(array.as_string_view_opt()?.iter())),
        D::Binary => Some(binaries(array.as_binary_opt::<i32>()?.iter())),
        D::LargeBinary => Some(binaries(array.as_binary_opt::<i64>()?.iter())),
        D::BinaryView => Some(binaries(array.as_binary_view_opt()?.iter())),
        D::FixedSizeBinary(_) => Some(binaries(array.as_fixed_size_binary_opt()?.iter())),
        D::Dictionary(_, _) => {
            let dict = array.as_any_dictionary_opt()?;
            let values = cells(dict.values().as_ref())?;
            let keys = dict.normalized_keys();
            let key_array = dict.keys();
            Some(
                (0..array.len())
                    .map(|i| {
                        if key_array.is_null(i) {
                            String::new()
                        } else {
                            keys.get(i)
                                .and_then(|&k| values.get(k))
                                .cloned()
                                .unwrap_or_default()
                        }
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_at_every_scale() {
        assert_eq!(scaled("12345", 2), "123.45");
        assert_eq!(scaled("-12345", 2), "-123.45");
        assert_eq!(scaled("5", 3), "0.005");
        assert_eq!(scaled("-5", 3), "-0.005");
        assert_eq!(scaled("0", 2), "0.00");
        assert_eq!(scaled("12", 0), "12");
        assert_eq!(scaled("12", -3), "12000");
        for (digits, scale) in [("12345", 2), ("-5", 3), ("7", -2), ("0", 5)] {
            let text = scaled(digits, scale);
            let want: f64 = digits.parse::<f64>().expect("digits") / 10f64.powi(scale.into());
            assert_eq!(text.parse::<f64>().ok(), Some(want), "{digits} at {scale}");
        }
    }

    #[test]
    fn binary_is_hex_and_empty_is_missing() {
        let v: Vec<Option<&[u8]>> = vec![Some(&[0xde, 0xad, 0x01]), Some(&[]), None];
        assert_eq!(binaries(v.into_iter()), vec!["0xdead01", "", ""]);
    }
}
