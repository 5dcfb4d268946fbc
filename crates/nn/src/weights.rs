//! Named f32 tensors read from and written to safetensors files.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::NnError;
use crate::limits::{exceeded, ModelLimits};

/// One tensor: its shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// A set of named tensors, as in a safetensors file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    /// Parses safetensors bytes; only F32 tensors are accepted. `origin` names the source in errors.
    pub fn from_safetensors(bytes: &[u8], origin: &Path) -> Result<Self, NnError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| NnError::Weights {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(NnError::WrongDtype {
                    layer: name.split('.').next().unwrap_or("").to_string(),
                    tensor: name.clone(),
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(name, Tensor::new(view.shape().to_vec(), data));
        }
        Ok(Self { tensors })
    }

    /// Reads a safetensors file (its size is checked against [`ModelLimits::DEFAULT`] before it
    /// is read; the safetensors parser checks every tensor against the bytes that are there).
    pub fn load(path: &Path) -> Result<Self, NnError> {
        let size = std::fs::metadata(path)
            .map_err(|error| NnError::Io {
                path: path.to_path_buf(),
                error,
            })?
            .len();
        let limit = ModelLimits::DEFAULT.max_weights_bytes;
        if size > limit {
            return Err(exceeded(
                path,
                "the weights file size in bytes",
                size as u128,
                limit as u128,
            ));
        }
        let bytes = std::fs::read(path).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        Self::from_safetensors(&bytes, path)
    }

    /// The tensors as safetensors bytes (little-endian F32).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let raw = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
                (name.clone(), t.shape.clone(), raw)
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = bytes
            .iter()
            .map(|(name, shape, raw)| {
                let view = TensorView::new(Dtype::F32, shape.clone(), raw)
                    .expect("shape and byte length agree by construction");
                (name.clone(), view)
            })
            .collect();
        safetensors::serialize(views, None).expect("serializing in-memory F32 tensors")
    }

    /// Writes a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        std::fs::write(path, self.to_safetensors()).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            error: source,
        })
    }

    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        self.tensors.insert(name.into(), Tensor::new(shape, data));
    }
}
