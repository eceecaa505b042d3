//! Loading the GGUF: the transformer body (candle) and the tied embedding as our LM head.
//!
//! candle's `ModelWeights::forward` ends with `output.weight`. SmolLM2 ties that to the token
//! embedding and ships no `output.weight`, so we give the loader one: a virtual `D × D` f32 identity
//! appended to the file image. `forward` then returns the final (normed) hidden state exactly
//! (`x · I` adds only zeros), and the projection and sampling are ours. A second body, loaded
//! without the identity, is candle's own LM head: the baseline and the greedy reference.

use std::io::Cursor;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, TensorInfo};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use flashsampling::core::tensor::OwnedTensor;
use flashsampling::DType;

use crate::Result;

/// The file image, its parsed header, and the model's dimensions.
pub struct Gguf {
    bytes: Vec<u8>,
    pub dim: usize,
    pub vocab: usize,
}

impl Gguf {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read the model at {}: {e} (run tools/fetch-smollm2.sh, or set SMOLLM2_GGUF)",
                path.display()
            )
        })?;
        let content = Content::read(&mut Cursor::new(&bytes))?;
        let (vocab, dim) = content.tensor_infos["token_embd.weight"].shape.dims2()?;
        Ok(Gguf { bytes, dim, vocab })
    }

    /// The file image.
    pub fn image(&self) -> &[u8] {
        &self.bytes
    }

    pub fn content(&self) -> Result<Content> {
        Ok(Content::read(&mut Cursor::new(&self.bytes))?)
    }

    /// The transformer body whose `forward` returns final hidden states `[batch, dim]`.
    pub fn body(&self) -> Result<ModelWeights> {
        let mut content = self.content()?;
        if content.tensor_infos.contains_key("output.weight") {
            return Err("this GGUF has its own output.weight: the LM head is not tied to the embedding".into());
        }
        let mut image = self.bytes.clone();
        image.resize(image.len().next_multiple_of(32), 0);
        let offset = image.len() as u64 - content.tensor_data_offset;
        for i in 0..self.dim {
            for j in 0..self.dim {
                image.extend_from_slice(&(if i == j { 1.0f32 } else { 0.0 }).to_le_bytes());
            }
        }
        let identity = TensorInfo { ggml_dtype: GgmlDType::F32, shape: (self.dim, self.dim).into(), offset };
        content.tensor_infos.insert("output.weight".into(), identity);
        Ok(ModelWeights::from_gguf(content, &mut Cursor::new(image), &Device::Cpu)?)
    }

    /// candle's own model: body and tied LM head, returning logits.
    pub fn candle_model(&self) -> Result<ModelWeights> {
        Ok(ModelWeights::from_gguf(self.content()?, &mut Cursor::new(&self.bytes), &Device::Cpu)?)
    }

    /// The tied embedding `[vocab, dim]`, dequantised once, as `dtype`.
    pub fn lm_head(&self, dtype: DType) -> Result<OwnedTensor> {
        let content = self.content()?;
        let q = content.tensor(&mut Cursor::new(&self.bytes), "token_embd.weight", &Device::Cpu)?;
        let values: Vec<f32> = q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        Ok(OwnedTensor::from_f32(&values, dtype))
    }
}

/// Runs `tokens` through the body at position `pos`: the final hidden state of the last token.
pub fn hidden_state(body: &mut ModelWeights, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
    let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
    Ok(body.forward(&input, pos)?.flatten_all()?.to_vec1()?)
}
