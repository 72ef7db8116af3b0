//! Writing a trained model (safetensors, one tensor per layer weight and bias, shaped as
//! `torch.nn.Linear` stores them) and reading it back.

use std::collections::HashMap;
use std::path::Path;

use cairn_datasets::DataSpec;
use cairn_protocol::model::ModelSpec;
use safetensors::tensor::{Dtype, TensorView};

/// Errors writing or reading a model file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The parameter vector does not fit the spec.
    #[error(transparent)]
    Model(#[from] cairn_protocol::model::ModelError),
    /// safetensors refused the data.
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// The file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The metadata could not be written as JSON.
    #[error("model metadata: {0}")]
    Json(#[from] serde_json::Error),
    /// A tensor is missing or has the wrong shape.
    #[error("model file: {0}")]
    Layout(String),
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Metadata key of the model's format name.
pub const META_FORMAT: &str = "format";
/// The format name cairn writes.
pub const FORMAT: &str = "cairn-mlp";
/// Metadata key of the input width.
pub const META_N_FEATURES: &str = "n_features";
/// Metadata key of the hidden widths (a JSON array).
pub const META_HIDDEN: &str = "hidden";
/// Metadata key of the output: `sigmoid` (one logit, class 1's probability; two classes)
/// or `softmax` (one logit per class, [`META_OUTPUTS`] of them).
pub const META_OUTPUT: &str = "output";
/// Metadata key of the last layer's width (the number of logits).
pub const META_OUTPUTS: &str = "outputs";

/// The [`META_OUTPUT`] value of a model: how its logits become probabilities.
pub fn output_name(spec: &ModelSpec) -> &'static str {
    if spec.is_binary() {
        "sigmoid"
    } else {
        "softmax"
    }
}
/// Metadata key of the job's data spec (JSON: the label, and each input column's name, fill
/// value, signed-log flag, mean and standard deviation, and the clamp): how raw rows become
/// the model's inputs.
pub const META_DATA: &str = "data";

/// A model file read back: its shape, its preprocessing, its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedModel {
    /// The model's shape.
    pub model: ModelSpec,
    /// How raw rows become its inputs (`None` for files written without it).
    pub data: Option<DataSpec>,
    /// Its flat parameters (the layout of [`ModelSpec::layers`]).
    pub params: Vec<f32>,
}

/// Serialises `params` of `spec` as safetensors bytes (tensors `layer{i}.weight`
/// `[n_out, n_in]` and `layer{i}.bias` `[n_out]`, f32), with the shape and the job's
/// preprocessing `data` in the metadata.
pub fn to_safetensors(
    spec: &ModelSpec,
    data: Option<&DataSpec>,
    params: &[f32],
) -> Result<Vec<u8>, ExportError> {
    if let Some(d) = data {
        if d.normalizer.n_features() != spec.n_features {
            return Err(ExportError::Layout(format!(
                "the data spec has {} input columns, the model takes {}",
                d.normalizer.n_features(),
                spec.n_features
            )));
        }
        if d.n_classes() != spec.classes() {
            return Err(ExportError::Layout(format!(
                "the data spec's label has {} classes, the model predicts {}",
                d.n_classes(),
                spec.classes()
            )));
        }
    }
    spec.check_params(params)?;
    let mut owned = Vec::new();
    for (i, l) in spec.layers().iter().enumerate() {
        owned.push((
            format!("layer{i}.weight"),
            vec![l.n_out, l.n_in],
            bytes(&params[l.w_offset..l.b_offset]),
        ));
        owned.push((
            format!("layer{i}.bias"),
            vec![l.n_out],
            bytes(&params[l.b_offset..l.b_offset + l.n_out]),
        ));
    }
    let views = owned
        .iter()
        .map(|(name, shape, data)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let mut meta = HashMap::from([
        (META_FORMAT.to_string(), FORMAT.to_string()),
        (META_N_FEATURES.to_string(), spec.n_features.to_string()),
        (
            META_HIDDEN.to_string(),
            serde_json::to_string(&spec.hidden)?,
        ),
        (META_OUTPUT.to_string(), output_name(spec).to_string()),
        (META_OUTPUTS.to_string(), spec.outputs.to_string()),
    ]);
    if let Some(d) = data {
        meta.insert(META_DATA.to_string(), serde_json::to_string(d)?);
    }
    Ok(safetensors::serialize(views, &Some(meta))?)
}

/// Writes the model and its preprocessing to `path`.
pub fn write_safetensors(
    path: &Path,
    spec: &ModelSpec,
    data: Option<&DataSpec>,
    params: &[f32],
) -> Result<(), ExportError> {
    let data = to_safetensors(spec, data, params)?;
    std::fs::write(path, data).map_err(|source| ExportError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a model file written by [`to_safetensors`]: its shape and preprocessing from the
/// metadata, checked (the data spec as a holder checks it), and its parameters.
pub fn read_model(bytes: &[u8]) -> Result<ExportedModel, ExportError> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        meta.get(key)
            .ok_or_else(|| ExportError::Layout(format!("no {key:?} in the metadata")))
    };
    if get(META_FORMAT)? != FORMAT {
        return Err(ExportError::Layout(format!(
            "format {:?}, want {FORMAT:?}",
            get(META_FORMAT)?
        )));
    }
    let bad = |key: &str, e: &dyn std::fmt::Display| ExportError::Layout(format!("{key}: {e}"));
    let n_features = get(META_N_FEATURES)?
        .parse()
        .map_err(|e| bad(META_N_FEATURES, &e))?;
    let hidden = serde_json::from_str(get(META_HIDDEN)?).map_err(|e| bad(META_HIDDEN, &e))?;
    // Files written before multi-class models have no output count: one sigmoid logit.
    let outputs = match meta.get(META_OUTPUT).map(String::as_str) {
        None | Some("sigmoid") => 1,
        Some("softmax") => match get(META_OUTPUTS)?.parse() {
            // One logit is a sigmoid model; validate() refuses 0, 2 and too many.
            Ok(1) => return Err(bad(META_OUTPUTS, &"one softmax output")),
            Ok(k) => k,
            Err(e) => return Err(bad(META_OUTPUTS, &e)),
        },
        Some(other) => {
            return Err(bad(
                META_OUTPUT,
                &format!("{other:?} is neither sigmoid nor softmax"),
            ))
        }
    };
    let model = ModelSpec {
        outputs,
        ..ModelSpec::mlp(n_features, hidden)
    };
    model.validate()?;
    let data: Option<DataSpec> = match meta.get(META_DATA) {
        Some(text) => {
            let d: DataSpec = serde_json::from_str(text).map_err(|e| bad(META_DATA, &e))?;
            d.validate().map_err(|e| bad(META_DATA, &e))?;
            if d.normalizer.n_features() != n_features {
                return Err(bad(
                    META_DATA,
                    &format!(
                        "{} input columns for a model of {n_features} inputs",
                        d.normalizer.n_features()
                    ),
                ));
            }
            if d.n_classes() != model.classes() {
                return Err(bad(
                    META_DATA,
                    &format!(
                        "a label of {} classes for a model of {} classes",
                        d.n_classes(),
                        model.classes()
                    ),
                ));
            }
            Some(d)
        }
        None => None,
    };
    let params = from_safetensors(&model, bytes)?;
    Ok(ExportedModel {
        model,
        data,
        params,
    })
}

/// Reads a model written by [`to_safetensors`] back into the flat layout of `spec`.
pub fn from_safetensors(spec: &ModelSpec, data: &[u8]) -> Result<Vec<f32>, ExportError> {
    let st = safetensors::SafeTensors::deserialize(data)?;
    let mut params = vec![0f32; spec.param_count()];
    for (i, l) in spec.layers().iter().enumerate() {
        for (name, shape, range) in [
            (
                format!("layer{i}.weight"),
                vec![l.n_out, l.n_in],
                l.w_offset..l.b_offset,
            ),
            (
                format!("layer{i}.bias"),
                vec![l.n_out],
                l.b_offset..l.b_offset + l.n_out,
            ),
        ] {
            let t = st.tensor(&name)?;
            if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(ExportError::Layout(format!(
                    "{name}: {:?} {:?}, want F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            for (p, c) in params[range].iter_mut().zip(t.data().chunks_exact(4)) {
                *p = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shape_check() {
        let spec = ModelSpec::mlp(3, vec![2]);
        let p = spec.init_params(3);
        let data = to_safetensors(&spec, None, &p).expect("serialise");
        assert_eq!(from_safetensors(&spec, &data).expect("read"), p);
        let back = read_model(&data).expect("read the whole file");
        assert_eq!(
            (back.model, back.data, back.params),
            (spec.clone(), None, p.clone())
        );
        let other = ModelSpec::mlp(4, vec![2]);
        assert!(matches!(
            from_safetensors(&other, &data),
            Err(ExportError::Layout(_))
        ));
        assert!(to_safetensors(&spec, None, &p[1..]).is_err());
    }

    /// The spec of a small synthetic table whose label is `label`.
    fn synthetic_spec(label: &str) -> DataSpec {
        let report = cairn_datasets::LoadReport {
            label: label.into(),
            ..Default::default()
        };
        let prepared = cairn_datasets::prepare(
            cairn_datasets::synthetic_table(300, 3, 2),
            report,
            &cairn_datasets::LoadOptions::default(),
        )
        .expect("prepare");
        DataSpec::of(&prepared)
    }

    #[test]
    fn the_preprocessing_travels_with_the_model_and_is_checked_on_reading() {
        let data = synthetic_spec("FLAG");
        let spec = ModelSpec::mlp(data.normalizer.n_features(), vec![4]);
        let p = spec.init_params(1);
        let bytes = to_safetensors(&spec, Some(&data), &p).expect("serialise");
        let back = read_model(&bytes).expect("read");
        assert_eq!(back.data.as_ref(), Some(&data));
        assert_eq!(back.model, spec);
        // A spec for another width is refused on writing.
        let wider = ModelSpec::mlp(spec.n_features + 1, vec![4]);
        assert!(to_safetensors(&wider, Some(&data), &wider.init_params(1)).is_err());
        // A file whose preprocessing was tampered with (a zero standard deviation) is
        // refused on reading.
        let mut bad = data;
        bad.normalizer.columns[0].sd = 0.0;
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
        let mut meta = header.metadata().clone().expect("metadata");
        meta.insert(
            META_DATA.to_string(),
            serde_json::to_string(&bad).expect("json"),
        );
        let tampered = safetensors::serialize(st.tensors(), &Some(meta)).expect("serialise");
        let err = read_model(&tampered).expect_err("a zero sd");
        assert!(err.to_string().contains("data"), "{err}");
    }

    #[test]
    fn a_softmax_model_says_so_and_its_classes_must_match_its_data() {
        let binary = synthetic_spec("kind");
        let data = DataSpec {
            classes: vec!["benign".into(), "bot".into(), "phish".into()],
            ..binary.clone()
        };
        let spec = ModelSpec::mlp(data.normalizer.n_features(), vec![4]).with_classes(3);
        let p = spec.init_params(1);
        let bytes = to_safetensors(&spec, Some(&data), &p).expect("serialise");
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
        let meta = header.metadata().clone().expect("metadata");
        assert_eq!(meta.get(META_OUTPUT).map(String::as_str), Some("softmax"));
        assert_eq!(meta.get(META_OUTPUTS).map(String::as_str), Some("3"));
        let back = read_model(&bytes).expect("read");
        assert_eq!((back.model, back.params), (spec.clone(), p.clone()));
        // A binary spec cannot travel with a three-class model, nor the other way round.
        assert!(to_safetensors(&spec, Some(&binary), &p).is_err());
        let one = ModelSpec::mlp(spec.n_features, vec![4]);
        assert!(to_safetensors(&one, Some(&data), &one.init_params(1)).is_err());
        // Metadata that contradicts itself is refused on reading: a softmax of one
        // output, of two, an unknown output, or a count that is no number.
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
        for (output, outputs, why) in [
            ("softmax", "1", "outputs"),
            ("softmax", "2", "outputs"),
            ("tanh", "3", "neither sigmoid nor softmax"),
            ("softmax", "three", "outputs"),
        ] {
            let mut m = meta.clone();
            m.insert(META_OUTPUT.into(), output.into());
            m.insert(META_OUTPUTS.into(), outputs.into());
            let bad = safetensors::serialize(st.tensors(), &Some(m)).expect("serialise");
            let err = read_model(&bad).expect_err("contradictory metadata");
            assert!(err.to_string().contains(why), "{output}/{outputs}: {err}");
        }
    }
}
