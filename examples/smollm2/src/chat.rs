//! The instruct chat template of SmolLM2.

const SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The prompt text for one user message, ready for the assistant's answer.
pub fn prompt(user: &str) -> String {
    format!("<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
}
