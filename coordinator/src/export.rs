//! Writing a trained model (safetensors, one tensor per layer weight and bias, shaped as
//! `torch.nn.Linear` stores them) and reading it back.

use std::collections::HashMap;
use std::path::Path;

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
    /// A tensor is missing or has the wrong shape.
    #[error("model file: {0}")]
    Layout(String),
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialises `params` of `spec` as safetensors bytes (tensors `layer{i}.weight`
/// `[n_out, n_in]` and `layer{i}.bias` `[n_out]`, f32; the spec in the metadata).
pub fn to_safetensors(spec: &ModelSpec, params: &[f32]) -> Result<Vec<u8>, ExportError> {
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
    let meta = HashMap::from([
        ("format".to_string(), "cairn-mlp".to_string()),
        ("n_features".to_string(), spec.n_features.to_string()),
        ("hidden".to_string(), format!("{:?}", spec.hidden)),
    ]);
    Ok(safetensors::serialize(views, &Some(meta))?)
}

/// Writes the model to `path`.
pub fn write_safetensors(path: &Path, spec: &ModelSpec, params: &[f32]) -> Result<(), ExportError> {
    let data = to_safetensors(spec, params)?;
    std::fs::write(path, data).map_err(|source| ExportError::Io {
        path: path.display().to_string(),
        source,
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
        let spec = ModelSpec {
            n_features: 3,
            hidden: vec![2],
        };
        let p = spec.init_params(3);
        let data = to_safetensors(&spec, &p).expect("serialise");
        assert_eq!(from_safetensors(&spec, &data).expect("read"), p);
        let other = ModelSpec {
            n_features: 4,
            hidden: vec![2],
        };
        assert!(matches!(
            from_safetensors(&other, &data),
            Err(ExportError::Layout(_))
        ));
        assert!(to_safetensors(&spec, &p[1..]).is_err());
    }
}
