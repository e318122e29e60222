//! Generation: greedy or sampled (temperature, top-k, top-p, seeded), stop tokens, batched
//! left-padded prompts, KV cache. Interventions act on the given prompt positions during the
//! prefill only (pyreft's `intervene_on_prompt=True`); their effect reaches later tokens through
//! the cache, so each decode step costs what the bare model costs.

use crate::batch::Batch;
use crate::decode::{StaticDecoder, StepOutput};
use crate::error::{ReftError, Result};
use crate::models::{Decoder, ForwardInput, KvCache, NoHooks};
use crate::reft::ReftModel;
use candle_core::{DType, IndexOp, Tensor, D};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Makes the static decoding step for a decoder, the cache its prefill filled and the batch
/// size (see [`ReftModel::generate_with`]).
pub type StaticStepFactory<'a> = dyn Fn(&Decoder, &KvCache, usize) -> candle_core::Result<Option<StaticDecoder>> + 'a;

/// Decoding options.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Argmax decoding (default). When false: temperature / top-k / top-p sampling.
    pub greedy: bool,
    pub temperature: f64,
    /// 0 disables.
    pub top_k: usize,
    /// 1.0 disables.
    pub top_p: f64,
    pub seed: u64,
    /// A row ends when it emits one of these (the token is kept in the output).
    pub stop_tokens: Vec<u32>,
    /// Use the KV cache (default). Without it every step re-runs the whole sequence.
    pub use_cache: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self { max_new_tokens: 32, greedy: true, temperature: 1.0, top_k: 0, top_p: 1.0, seed: 0, stop_tokens: vec![], use_cache: true }
    }
}

/// HF's generation position ids: `cumsum(mask) − 1`, and 1 on padding.
fn position_ids(mask: &[u8], b: usize, total: usize, from: usize) -> Vec<Vec<i64>> {
    (0..b)
        .map(|r| {
            let row = &mask[r * total..(r + 1) * total];
            let mut c = 0i64;
            let mut out = Vec::with_capacity(total - from);
            for (j, &m) in row.iter().enumerate() {
                c += m as i64;
                if j >= from {
                    out.push(if m == 0 { 1 } else { c - 1 });
                }
            }
            out
        })
        .collect()
}

fn pick(logits: &[f32], o: &GenerateOptions, rng: &mut StdRng) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &x) in logits.iter().enumerate() {
            if x > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if o.greedy || o.temperature <= 0.0 {
        return argmax();
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap_or(std::cmp::Ordering::Equal));
    if o.top_k > 0 {
        idx.truncate(o.top_k);
    }
    let t = o.temperature;
    let maxv = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx.iter().map(|&i| ((logits[i] as f64 - maxv) / t).exp()).collect();
    let z: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= z);
    if o.top_p < 1.0 {
        // Keep the smallest prefix whose mass reaches top_p (at least one token).
        let (mut acc, mut keep) = (0.0, 0);
        for p in &probs {
            acc += p;
            keep += 1;
            if acc >= o.top_p {
                break;
            }
        }
        probs.truncate(keep);
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
    }
    let mut u: f64 = rng.gen();
    for (k, p) in probs.iter().enumerate() {
        u -= p;
        if u <= 0.0 {
            return idx[k] as u32;
        }
    }
    idx[probs.len() - 1] as u32
}

impl ReftModel {
    /// Generates up to `max_new_tokens` per row for left-padded `prompts` (positions refer to
    /// the padded prompt). `on_token` sees each step's tokens and returns false to stop early.
    pub fn generate(
        &self,
        prompts: &Batch,
        o: &GenerateOptions,
        on_token: &mut dyn FnMut(&[u32]) -> bool,
    ) -> Result<Vec<Vec<u32>>> {
        self.generate_with(prompts, o, on_token, &StaticDecoder::for_device)
    }

    /// [`Self::generate`] with the decoding steps after the prefill on the static step that
    /// `static_step` makes (`decode/`; `None`: candle's ops). `generate` passes
    /// [`StaticDecoder::for_device`]; `tests/decode_step.rs` passes the kernels' emulation.
    #[doc(hidden)]
    pub fn generate_with(
        &self,
        prompts: &Batch,
        o: &GenerateOptions,
        on_token: &mut dyn FnMut(&[u32]) -> bool,
        static_step: &StaticStepFactory<'_>,
    ) -> Result<Vec<Vec<u32>>> {
        if !o.greedy && !(o.temperature > 0.0 && o.temperature.is_finite()) {
            return Err(ReftError::config("temperature", "sampling needs a finite temperature > 0"));
        }
        if !(o.top_p > 0.0 && o.top_p <= 1.0) {
            return Err(ReftError::config("top_p", format!("{} is not in (0, 1]", o.top_p)));
        }
        let dec = self.base.decoder()?;
        prompts.validate(self.interventions.len(), dec.cfg.vocab_size)?;
        // The first stop token also pads finished rows' next inputs: an id past the embedding
        // table would be read out of bounds by a GPU's gather (and could never be generated).
        if let Some(&bad) = o.stop_tokens.iter().find(|&&id| id as usize >= dec.cfg.vocab_size) {
            return Err(ReftError::range("stop token id", bad as i64, format!("0..{}", dec.cfg.vocab_size)));
        }
        let (b, t) = (prompts.batch_size, prompts.seq_len);
        let mut rng = StdRng::seed_from_u64(o.seed);
        let mut mask = prompts.mask();
        let mut seqs: Vec<Vec<u32>> = (0..b).map(|r| prompts.input_ids[r * t..(r + 1) * t].to_vec()).collect();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut done = vec![false; b];
        let mut cache = KvCache::with_capacity(t + o.max_new_tokens);
        let pad = o.stop_tokens.first().copied().unwrap_or(0);
        let greedy = o.greedy || o.temperature <= 0.0;
        let mut fast: Option<StaticDecoder> = None;
        for step in 0..o.max_new_tokens {
            let total = t + step;
            if o.use_cache && step == 1 {
                fast = static_step(dec, &cache, b)?;
            }
            let (ids, logits) = match fast.as_mut() {
                Some(s) => {
                    let ids: Vec<u32> = seqs.iter().map(|s| s[total - 1]).collect();
                    match s.step(dec, ids, &mask, &position_ids(&mask, b, total, total - 1), greedy)? {
                        StepOutput::Tokens(t) => (Some(t), Vec::new()),
                        StepOutput::Logits(l) => (None, l),
                    }
                }
                None => self.next_logits(prompts, &seqs, &mask, step, o.use_cache, &mut cache, greedy)?,
            };
            let mut tokens = Vec::with_capacity(b);
            for r in 0..b {
                let tok = match (&ids, done[r]) {
                    (_, true) => pad,
                    (Some(ids), false) => ids[r],
                    (None, false) => pick(&logits[r], o, &mut rng),
                };
                if !done[r] {
                    out[r].push(tok);
                    done[r] = o.stop_tokens.contains(&tok);
                }
                tokens.push(tok);
            }
            // Grow the mask by one real column per row.
            let mut grown = Vec::with_capacity(b * (total + 1));
            for r in 0..b {
                grown.extend_from_slice(&mask[r * total..(r + 1) * total]);
                grown.push(1);
                seqs[r].push(tokens[r]);
            }
            mask = grown;
            if !on_token(&tokens) || done.iter().all(|&d| d) {
                break;
            }
        }
        Ok(out)
    }

    /// The next tokens (greedy on a GPU: the argmax on the device, so that a step copies b
    /// token ids to the host instead of b × vocab logits) or the logits of step `step` through
    /// candle's ops: the prefill at step 0 (and every step without the cache), else one
    /// cached step.
    #[allow(clippy::too_many_arguments)]
    fn next_logits(&self, prompts: &Batch, seqs: &[Vec<u32>], mask: &[u8], step: usize, use_cache: bool, cache: &mut KvCache, greedy: bool) -> Result<(Option<Vec<u32>>, Vec<Vec<f32>>)> {
        let dec = self.base.decoder()?;
        let (b, t) = (prompts.batch_size, prompts.seq_len);
        let total = t + step;
        let last = if use_cache && step > 0 {
            let ids: Vec<u32> = seqs.iter().map(|s| s[total - 1]).collect();
            let ids = Tensor::from_vec(ids, (b, 1), &dec.device)?;
            let pos = position_ids(mask, b, total, total - 1);
            let input = ForwardInput { ids: &ids, key_mask: mask, position_ids: &pos };
            dec.hidden_states(&input, &NoHooks, Some(cache))?.i((.., 0, ..))?
        } else {
            let flat: Vec<u32> = seqs.iter().flatten().copied().collect();
            let batch = Batch {
                input_ids: flat,
                batch_size: b,
                seq_len: total,
                attention_mask: Some(mask.to_vec()),
                positions: prompts.positions.clone(),
                num_positions: prompts.num_positions,
                labels: None,
                ..Default::default()
            };
            let h = self.prefill(&batch, if use_cache { Some(cache) } else { None })?;
            h.i((.., total - 1, ..))?
        };
        let logits = dec.logits(&last)?;
        if greedy && dec.device.is_cuda() {
            return Ok((Some(logits.argmax(D::Minus1)?.to_vec1::<u32>()?), Vec::new()));
        }
        Ok((None, logits.to_dtype(DType::F32)?.to_vec2::<f32>()?))
    }

    /// Full forward over a (padded) sequence with interventions at the batch's positions and
    /// generation position ids, optionally filling the cache. Returns hidden states.
    fn prefill(&self, batch: &Batch, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let dec = self.base.decoder()?;
        let (b, t) = (batch.batch_size, batch.seq_len);
        let ids = Tensor::from_slice(&batch.input_ids, (b, t), &dec.device)?;
        let mask = batch.mask();
        let pos = position_ids(&mask, b, t, 0);
        let input = ForwardInput { ids: &ids, key_mask: &mask, position_ids: &pos };
        let hooks = self.hooks_for(batch, false, None)?;
        Ok(dec.hidden_states(&input, &hooks, cache)?)
    }
}
