//! The tokenizer, built from the GGUF's own vocabulary and merges: byte-level BPE as in GPT-2.

use candle_core::quantized::gguf_file::Content;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::Result;

pub struct Vocabulary {
    pub tokenizer: Tokenizer,
    pub eos: u32,
}

fn strings(content: &Content, key: &str) -> Result<Vec<String>> {
    let values = content.metadata.get(key).ok_or_else(|| format!("the GGUF has no {key}"))?.to_vec()?;
    Ok(values.iter().map(|v| v.to_string().cloned()).collect::<std::result::Result<_, _>>()?)
}

pub fn from_gguf(content: &Content) -> Result<Vocabulary> {
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings(content, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| format!("bad merge {m:?}"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build()?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .filter(|t| t.starts_with("<|") && t.ends_with("|>"))
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    let eos = content
        .metadata
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
        .or_else(|| tokens.iter().position(|t| t == "<|im_end|>").map(|i| i as u32))
        .ok_or("no end-of-sequence token")?;
    Ok(Vocabulary { tokenizer, eos })
}
