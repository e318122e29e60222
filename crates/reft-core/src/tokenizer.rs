//! Tokenizers for loaded models: an HF `tokenizer.json` through the `tokenizers` crate, or one
//! rebuilt from GGUF metadata (byte-level BPE from `tokenizer.ggml.tokens`/`merges`, control
//! tokens registered as special tokens, the pre-tokenizer chosen by `tokenizer.ggml.pre` as
//! llama.cpp does; the chat template is kept as a string).

use crate::error::{ReftError, Result};
use crate::models::gguf::GgufFile;
use candle_core::quantized::gguf_file::Value;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use std::collections::HashMap;
use std::sync::Mutex;
use tokenizers::{AddedToken, Tokenizer, TruncationParams, TruncationStrategy};

/// A tokenizer plus the special-token facts generation needs.
pub struct Tok {
    pub inner: Tokenizer,
    pub chat_template: Option<String>,
    /// Copies of `inner` that truncate to a given length (the `tokenizers` API sets truncation
    /// on the tokenizer itself, which is shared).
    truncating: Mutex<HashMap<usize, Tokenizer>>,
}

/// One encoded text or text pair.
pub struct Encoded {
    pub ids: Vec<u32>,
    /// Segment of every token (0 for the first text, 1 for the pair), as `token_type_ids`.
    pub type_ids: Vec<u32>,
}

impl Tok {
    /// Loads `tokenizer.json` (and the chat template of `tokenizer_config.json`, if any).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let json = std::fs::read(&path).map_err(|e| ReftError::io(&path, e))?;
        let config = std::fs::read(dir.join("tokenizer_config.json")).ok();
        Self::from_bytes(&json, config.as_deref(), &path)
    }

    /// The same from the bytes of `tokenizer.json` and, optionally, `tokenizer_config.json`;
    /// `path` only names the tokenizer in errors.
    pub fn from_bytes(json: &[u8], config: Option<&[u8]>, path: &Path) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(json)
            .map_err(|e| ReftError::format(path, format!("cannot load tokenizer: {e}")))?;
        // transformers ignores the padding/truncation stored in tokenizer.json (sentence-
        // transformers files pad every text to 128) and applies only what each call asks for.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ReftError::format(path, format!("cannot reset truncation: {e}")))?;
        let chat_template = config
            .and_then(|s| serde_json::from_slice::<serde_json::Value>(s).ok())
            .and_then(|v| v.get("chat_template").and_then(|t| t.as_str()).map(String::from));
        Ok(Self { inner, chat_template, truncating: Mutex::new(HashMap::new()) })
    }

    /// Rebuilds a byte-level BPE tokenizer from GGUF metadata.
    pub fn from_gguf(g: &GgufFile, path: &Path) -> Result<Self> {
        let bad = |r: &str| ReftError::format(path, r.to_string());
        let strings = |key: &str| -> Result<Vec<String>> {
            let v = g.meta(key).ok_or_else(|| bad(&format!("missing `{key}`")))?;
            let arr = v.to_vec().map_err(|_| bad(&format!("`{key}` is not an array")))?;
            arr.iter()
                .map(|x| x.to_string().cloned().map_err(|_| bad(&format!("`{key}` holds a non-string"))))
                .collect()
        };
        let model = g.meta("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if model != "gpt2" {
            return Err(ReftError::UnsupportedModel(format!(
                "GGUF tokenizer model `{model}` in {} (supported: gpt2 byte-level BPE)",
                path.display()
            )));
        }
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
            .into_iter()
            .filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect();
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| bad(&format!("invalid BPE vocabulary: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        let pre = g.meta("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tok: PreTokenizerWrapper = match pre.as_str() {
            // SmolLM's tokenizer.json: Sequence[Digits(individual_digits), ByteLevel].
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            _ => byte_level.into(),
        };
        inner.with_pre_tokenizer(Some(pre_tok));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        // Control (3) and user-defined (4) tokens must match as whole strings in text, e.g.
        // `<|im_start|>` rendered by a chat template.
        if let Some(Value::Array(types)) = g.meta("tokenizer.ggml.token_type") {
            let special: Vec<AddedToken> = types
                .iter()
                .enumerate()
                .filter(|(_, t)| matches!(t.to_i32(), Ok(3) | Ok(4)))
                .filter_map(|(i, _)| tokens.get(i))
                .map(|s| AddedToken::from(s.clone(), true))
                .collect();
            inner.add_special_tokens(&special);
        }
        let chat_template = g.meta("tokenizer.chat_template").and_then(|v| v.to_string().ok()).cloned();
        Ok(Self { inner, chat_template, truncating: Mutex::new(HashMap::new()) })
    }

    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special)
            .map_err(|e| ReftError::config("text", format!("tokenization failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes a text or a text pair with segment ids, truncated longest-first to `max_length`
    /// tokens (special tokens included) when given, as transformers' `truncation=True`.
    pub fn encode_pair(&self, text: &str, pair: Option<&str>, add_special: bool, max_length: Option<usize>) -> Result<Encoded> {
        let fail = |e: tokenizers::Error| ReftError::config("text", format!("tokenization failed: {e}"));
        let run = |t: &Tokenizer| match pair {
            Some(p) => t.encode((text, p), add_special),
            None => t.encode(text, add_special),
        };
        let enc = match max_length {
            None => run(&self.inner).map_err(fail)?,
            Some(0) => return Err(ReftError::config("max_length", "must be at least 1")),
            Some(n) => {
                let mut cache = self.truncating.lock().map_err(|_| ReftError::config("tokenizer", "poisoned lock"))?;
                if !cache.contains_key(&n) {
                    let mut t = self.inner.clone();
                    let params = TruncationParams { max_length: n, strategy: TruncationStrategy::LongestFirst, ..Default::default() };
                    t.with_truncation(Some(params)).map_err(fail)?;
                    cache.insert(n, t);
                }
                run(&cache[&n]).map_err(fail)?
            }
        };
        Ok(Encoded { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() })
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| ReftError::config("ids", format!("detokenization failed: {e}")))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
