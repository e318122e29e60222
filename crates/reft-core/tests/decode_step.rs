//! The static decoding step (`decode/`) run on the host emulation of its CUDA kernels, against
//! the candle decoder: the same logits step by step, and the same generated tokens through
//! `generate`, over left padding, grouped-query heads, stop tokens and sampling.
//!
//! The backend here stands in for `decode/cuda.rs`: it runs each `StepKernels` call with the
//! kernels' own emulated code (`reft_kernels::emu`, the GPU's launch geometry) and a host GEMM,
//! so what the GPU alone runs is the pointer plumbing of `cuda.rs`.

use candle_core::{DType, IndexOp, Tensor, WithDType};
use reft_core::decode::{run_step, Buf, Gain, Mat, StaticDecoder, StepDims, StepInputs, StepKernels};
use reft_core::generate::GenerateOptions;
use reft_core::models::{Backbone, Decoder, ForwardInput, KvCache, Model, NoHooks};
use reft_core::{Batch, ReftModel};
use reft_kernels::emu::{self, Elem};
use std::sync::Arc;

fn host<T: WithDType>(t: &Tensor) -> Vec<T> {
    t.flatten_all().unwrap().to_dtype(T::DTYPE).unwrap().to_vec1::<T>().unwrap()
}

/// `StepKernels` on the emulated kernels; buffers and weights as host vectors.
struct EmuStep<T> {
    d: StepDims,
    bufs: Vec<Vec<T>>,
    inputs: Option<(Vec<u32>, Vec<f32>, Vec<T>, Vec<T>, usize)>,
    layers: Vec<[Vec<T>; 6]>,
    cache: Vec<(Vec<T>, Vec<T>)>,
    embed: Vec<T>,
    norm: Vec<T>,
    lm_head: Vec<T>,
}

impl<T: Elem + WithDType> EmuStep<T> {
    fn new(dec: &Decoder, cache: &KvCache, d: StepDims) -> Self {
        let layers = dec
            .layers
            .iter()
            .map(|w| {
                let p = w.packed.as_ref().expect("packed");
                [host(&p.qkv.weight), host(&w.o.weight), host(&p.gate_up.weight), host(&w.down.weight), host(&w.input_norm), host(&w.post_norm)]
            })
            .collect();
        let cache = (0..dec.layers.len())
            .map(|l| {
                let (k, v) = cache.reserved(l).expect("reserved cache");
                (host(k), host(v))
            })
            .collect();
        let bufs = Buf::ALL.iter().map(|b| vec![T::default(); d.batch * b.width(&d)]).collect();
        Self { d, bufs, inputs: None, layers, cache, embed: host(&dec.embed), norm: host(&dec.norm), lm_head: host(&dec.lm_head) }
    }

    fn at(b: Buf) -> usize {
        Buf::ALL.iter().position(|x| *x == b).unwrap()
    }

    fn gain(&self, g: Gain) -> &[T] {
        match g {
            Gain::Input(l) => &self.layers[l][4],
            Gain::Post(l) => &self.layers[l][5],
            Gain::Final => &self.norm,
        }
    }
}

type R<T> = candle_core::Result<T>;

impl<T: Elem + WithDType> StepKernels for EmuStep<T> {
    fn upload(&mut self, s: &StepInputs) -> R<()> {
        let cast = |v: &[f32]| v.iter().map(|&x| T::from_f64(x as f64)).collect::<Vec<T>>();
        self.inputs = Some((s.ids.clone(), s.mask.clone(), cast(&s.cos), cast(&s.sin), s.keys));
        Ok(())
    }

    fn embed(&mut self, y: Buf) -> R<()> {
        let ids = &self.inputs.as_ref().unwrap().0;
        self.bufs[Self::at(y)] = emu::embed_rows(&self.embed, ids, self.d.hidden);
        Ok(())
    }

    fn rms_norm(&mut self, x: Buf, w: Gain, y: Buf) -> R<()> {
        self.bufs[Self::at(y)] = emu::rmsnorm_fwd(&self.bufs[Self::at(x)], self.gain(w), self.d.eps);
        Ok(())
    }

    fn add_rms_norm(&mut self, x: Buf, r: Buf, w: Gain, s: Buf, y: Buf) -> R<()> {
        let (sv, yv) = emu::add_rmsnorm_fwd(&self.bufs[Self::at(x)], &self.bufs[Self::at(r)], self.gain(w), self.d.eps);
        self.bufs[Self::at(s)] = sv;
        self.bufs[Self::at(y)] = yv;
        Ok(())
    }

    fn linear(&mut self, x: Buf, w: Mat, y: Buf) -> R<()> {
        let wt = match w {
            Mat::Qkv(l) => &self.layers[l][0],
            Mat::O(l) => &self.layers[l][1],
            Mat::GateUp(l) => &self.layers[l][2],
            Mat::Down(l) => &self.layers[l][3],
            Mat::LmHead => &self.lm_head,
        };
        let xv = &self.bufs[Self::at(x)];
        let (m, k) = (self.d.batch, xv.len() / self.d.batch);
        let n = wt.len() / k;
        assert_eq!(n * k, wt.len(), "weight {w:?} against input width {k}");
        let mut out = vec![T::default(); m * n];
        for i in 0..m {
            for j in 0..n {
                let acc: f64 = (0..k).map(|c| xv[i * k + c].to_f64() * wt[j * k + c].to_f64()).sum();
                out[i * n + j] = T::from_f64(acc);
            }
        }
        assert_eq!(out.len(), self.bufs[Self::at(y)].len(), "output {y:?}");
        self.bufs[Self::at(y)] = out;
        Ok(())
    }

    fn qkv_into_cache(&mut self, rows: Buf, q: Buf, layer: usize, at: usize) -> R<()> {
        let d = self.d;
        let (_, _, cos, sin, _) = self.inputs.as_ref().unwrap();
        let (kc, vc) = &mut self.cache[layer];
        let qv = emu::qkv_heads_into_cache(&self.bufs[Self::at(rows)], cos, sin, d.batch, 1, [d.heads, d.kv_heads, d.head_dim], kc, vc, d.capacity, at, None);
        self.bufs[Self::at(q)] = qv;
        Ok(())
    }

    fn attention(&mut self, q: Buf, layer: usize, keys: usize, y: Buf) -> R<()> {
        let d = self.d;
        let (_, mask, _, _, uploaded) = self.inputs.as_ref().unwrap();
        assert_eq!(keys, *uploaded, "the step attends to the keys its mask covers");
        let (kc, vc) = &self.cache[layer];
        let dims = [d.batch, d.kv_heads, d.heads / d.kv_heads, d.head_dim];
        self.bufs[Self::at(y)] = emu::decode_attn(&self.bufs[Self::at(q)], kc, vc, mask, dims, keys, d.capacity, d.head_dim, 1.0 / (d.head_dim as f32).sqrt());
        Ok(())
    }

    fn swiglu(&mut self, x: Buf, y: Buf) -> R<()> {
        self.bufs[Self::at(y)] = emu::swiglu_packed_fwd(&self.bufs[Self::at(x)], self.d.intermediate, None);
        Ok(())
    }

    fn argmax(&mut self, x: Buf) -> R<Vec<u32>> {
        Ok(emu::argmax_rows(&self.bufs[Self::at(x)], self.d.vocab))
    }

    fn read(&mut self, x: Buf) -> R<Vec<f32>> {
        Ok(self.bufs[Self::at(x)].iter().map(|v| v.to_f64() as f32).collect())
    }
}

fn emu_factory<T: Elem + WithDType>() -> impl Fn(&Decoder, &KvCache, usize) -> R<Option<StaticDecoder>> {
    |dec: &Decoder, cache: &KvCache, b: usize| {
        let past = cache.past_len();
        assert!(reft_core::decode::applies(dec, cache, past), "the static step applies to the test decoder");
        let d = StepDims::of(dec, b, cache.capacity);
        Ok(Some(StaticDecoder::new(Box::new(EmuStep::<T>::new(dec, cache, d)), d, past)))
    }
}

fn decoder(dtype: DType) -> Decoder {
    let mut cfg = reft_core::testing::tiny_config();
    cfg.num_layers = 3;
    cfg.vocab_size = 300;
    cfg.eos_token_ids = vec![257];
    let mut dec = reft_core::testing::tiny_decoder(&cfg, dtype, 5).unwrap();
    dec.pack_projections().unwrap();
    dec
}

/// Three left-padded prompts (lengths 7, 4 and 6 of 7).
fn prompts() -> Batch {
    let (b, t) = (3, 7);
    let lens = [7, 4, 6];
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for (r, &len) in lens.iter().enumerate() {
        for j in 0..t {
            let real = j >= t - len;
            ids.push(if real { ((r * 31 + j * 17 + 3) % 250) as u32 } else { 258 });
            mask.push(real as u8);
        }
    }
    Batch { input_ids: ids, batch_size: b, seq_len: t, attention_mask: Some(mask), ..Default::default() }
}

/// HF's position id of the token after `mask`'s row: the count of real tokens before it.
fn next_positions(mask: &[u8], b: usize) -> Vec<Vec<i64>> {
    let total = mask.len() / b;
    (0..b).map(|r| vec![mask[r * total..(r + 1) * total].iter().map(|&m| m as i64).sum::<i64>() - 1]).collect()
}

/// Runs `steps` decoding steps of candle's cached decoder and of the emulated static step side
/// by side from one prefill, feeding both candle's greedy tokens; `check` sees each step's
/// logits (static, candle) and the static step's own greedy picks.
fn side_by_side<T: Elem + WithDType>(dtype: DType, steps: usize, check: impl Fn(usize, &[f32], &[f32], &[u32])) {
    let dec = decoder(dtype);
    let p = prompts();
    let (b, t, v) = (p.batch_size, p.seq_len, dec.cfg.vocab_size);
    let mut mask = p.mask();
    let mut reference = KvCache::with_capacity(t + steps + 1);
    let ids = Tensor::from_slice(&p.input_ids, (b, t), &dec.device).unwrap();
    let pos: Vec<Vec<i64>> = (0..b)
        .map(|r| {
            let mut c = 0;
            mask[r * t..(r + 1) * t].iter().map(|&m| { c += m as i64; if m == 0 { 1 } else { c - 1 } }).collect()
        })
        .collect();
    let h = dec.hidden_states(&ForwardInput { ids: &ids, key_mask: &mask, position_ids: &pos }, &NoHooks, Some(&mut reference)).unwrap();
    let mut tokens: Vec<u32> = host::<f32>(&dec.logits(&h.i((.., t - 1, ..)).unwrap()).unwrap()).chunks(v).map(argmax).collect();
    let d = StepDims::of(&dec, b, reference.capacity);
    let mut emu = EmuStep::<T>::new(&dec, &reference, d);
    for step in 0..steps {
        mask = grow(&mask, b);
        let past = t + step;
        let pos = next_positions(&mask, b);
        let ids = Tensor::from_slice(&tokens, (b, 1), &dec.device).unwrap();
        let h = dec.hidden_states(&ForwardInput { ids: &ids, key_mask: &mask, position_ids: &pos }, &NoHooks, Some(&mut reference)).unwrap();
        let want = host::<f32>(&dec.logits(&h.i((.., 0, ..)).unwrap()).unwrap());
        emu.upload(&StepInputs::new(&dec, tokens.clone(), &mask, &pos, past)).unwrap();
        run_step(&mut emu, &d, past).unwrap();
        let got = emu.read(Buf::Logits).unwrap();
        check(step, &got, &want, &emu.argmax(Buf::Logits).unwrap());
        tokens = want.chunks(v).map(argmax).collect();
    }
}

/// f32, step by step: the same logits to float rounding and the same greedy tokens.
#[test]
fn static_step_matches_the_candle_decoder_step_by_step() {
    side_by_side::<f32>(DType::F32, 5, |step, got, want, picks| {
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 2e-5, "step {step}: logits differ by {worst}");
        let wanted: Vec<u32> = want.chunks(300).map(argmax).collect();
        assert_eq!(picks, wanted, "step {step}: greedy tokens");
    });
}

/// bf16: logits within bf16 rounding of candle's bf16 decoder (the GEMMs sum in another order,
/// so single roundings differ), and the device argmax is the argmax of the step's own logits.
#[test]
fn static_step_in_bf16_tracks_the_candle_decoder() {
    side_by_side::<half::bf16>(DType::BF16, 4, |step, got, want, picks| {
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 0.03 * scale, "step {step}: logits differ by {worst} (scale {scale})");
        let own: Vec<u32> = got.chunks(300).map(argmax).collect();
        assert_eq!(picks, own, "step {step}: argmax of the step's logits");
    });
}

fn grow(mask: &[u8], b: usize) -> Vec<u8> {
    let total = mask.len() / b;
    (0..b).flat_map(|r| mask[r * total..(r + 1) * total].iter().copied().chain([1])).collect()
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

fn reft_model(dec: Decoder) -> ReftModel {
    let model = Arc::new(Model { backbone: Backbone::Decoder(dec), tokenizer: None, source: "test" });
    ReftModel::new(model, &[], 0).unwrap()
}

/// Through `generate`: greedy with a stop token, and seeded sampling (the logits read back),
/// give what candle's decoding gives.
#[test]
fn generate_with_the_static_step_gives_candles_tokens() {
    let m = reft_model(decoder(DType::F32));
    let p = prompts();
    let built = std::cell::Cell::new(0);
    let emu = emu_factory::<f32>();
    let factory = |dec: &Decoder, cache: &KvCache, b: usize| {
        built.set(built.get() + 1);
        emu(dec, cache, b)
    };
    let mut seen = 0;
    let free = GenerateOptions { max_new_tokens: 8, ..Default::default() };
    let want = m.generate(&p, &free, &mut |_| true).unwrap();
    let got = m.generate_with(&p, &free, &mut |_| { seen += 1; true }, &factory).unwrap();
    assert_eq!(got, want);
    assert_eq!((seen, built.get()), (8, 1), "8 tokens, 7 of them by the static step made once");
    // A stop token that one row emits ends that row (the others run on, padded).
    let stop = want[1][2];
    let stopping = GenerateOptions { max_new_tokens: 8, stop_tokens: vec![stop], ..Default::default() };
    let want = m.generate(&p, &stopping, &mut |_| true).unwrap();
    assert!(want[1].len() <= 3);
    assert_eq!(m.generate_with(&p, &stopping, &mut |_| true, &factory).unwrap(), want);
    let sampled = GenerateOptions { max_new_tokens: 8, greedy: false, temperature: 0.8, top_k: 20, seed: 3, ..Default::default() };
    let want = m.generate(&p, &sampled, &mut |_| true).unwrap();
    assert_eq!(m.generate_with(&p, &sampled, &mut |_| true, &factory).unwrap(), want);
}

/// With a LoReFT at the last prompt position (acting in the prefill only), the static step
/// continues from the edited cache as candle's decoding does.
#[test]
fn generate_with_an_intervention_in_the_prompt() {
    use reft_core::interventions::{Activation, InterventionSpec, Kind};
    use reft_core::models::Component;
    let spec = InterventionSpec { kind: Kind::Loreft, layer: 1, component: Component::BlockOutput, rank: 2, dropout: 0.0, activation: Activation::Linear, add_bias: true };
    let model = Arc::new(Model { backbone: Backbone::Decoder(decoder(DType::F32)), tokenizer: None, source: "test" });
    let m = ReftModel::new(model, &[spec], 4).unwrap();
    let mut p = prompts();
    p.positions = Some(vec![(p.seq_len - 1) as i64; p.batch_size]);
    p.num_positions = 1;
    let o = GenerateOptions { max_new_tokens: 6, ..Default::default() };
    let plain = reft_model(decoder(DType::F32)).generate(&prompts(), &o, &mut |_| true).unwrap();
    let want = m.generate(&p, &o, &mut |_| true).unwrap();
    assert_ne!(want, plain, "the intervention changes the generation");
    assert_eq!(m.generate_with(&p, &o, &mut |_| true, &emu_factory::<f32>()).unwrap(), want);
}

/// A decoder without packed projections, or a cache that was not reserved, is not for the
/// static step; a step past the reserved positions is an error, not a write out of bounds.
#[test]
fn the_static_step_refuses_what_it_cannot_run() {
    let mut cfg = reft_core::testing::tiny_config();
    cfg.num_layers = 2;
    let unpacked = reft_core::testing::tiny_decoder(&cfg, DType::F32, 5).unwrap();
    let p = prompts();
    let (b, t) = (p.batch_size, p.seq_len);
    let ids = Tensor::from_slice(&p.input_ids, (b, t), &unpacked.device).unwrap();
    let pos: Vec<Vec<i64>> = (0..b).map(|_| (0..t as i64).collect()).collect();
    let mut cache = KvCache::with_capacity(t + 2);
    unpacked.hidden_states(&ForwardInput { ids: &ids, key_mask: &p.mask(), position_ids: &pos }, &NoHooks, Some(&mut cache)).unwrap();
    assert!(!reft_core::decode::applies(&unpacked, &cache, t));
    let dec = decoder(DType::F32);
    let mut grown = KvCache::default();
    dec.hidden_states(&ForwardInput { ids: &ids, key_mask: &p.mask(), position_ids: &pos }, &NoHooks, Some(&mut grown)).unwrap();
    assert!(!reft_core::decode::applies(&dec, &grown, t), "a cache grown by concatenation has no reserved buffers");
    let mut full = KvCache::with_capacity(t);
    dec.hidden_states(&ForwardInput { ids: &ids, key_mask: &p.mask(), position_ids: &pos }, &NoHooks, Some(&mut full)).unwrap();
    assert!(!reft_core::decode::applies(&dec, &full, t), "no room left");
    let d = StepDims::of(&dec, b, t);
    let mut emu = EmuStep::<f32>::new(&dec, &full, d);
    let err = run_step(&mut emu, &d, t).unwrap_err().to_string();
    assert!(err.contains("past the cache"), "{err}");
}

/// The argmax kernel: the first of tied maxima, a NaN never wins, a row of −∞ picks index 0,
/// rows longer than a warp and of every storage type.
#[test]
fn argmax_kernel_picks_the_first_largest_value() {
    let n = 100;
    let mut x = vec![0f32; 4 * n];
    x[3] = 2.0;
    x[70] = 2.0; // tied: the first (3) wins, across lanes
    x[n + 99] = 5.0;
    x[n] = f32::NAN; // a NaN is skipped, even as lane 0's first value
    x[n + 41] = 4.0;
    x[2 * n..3 * n].iter_mut().for_each(|v| *v = f32::NEG_INFINITY);
    x[3 * n..].iter_mut().enumerate().for_each(|(i, v)| *v = -((i as f32) - 33.0).abs()); // peak at 33
    assert_eq!(emu::argmax_rows(&x, n), vec![3, 99, 0, 33]);
    let b: Vec<half::bf16> = x.iter().map(|&v| half::bf16::from_f32(v)).collect();
    assert_eq!(emu::argmax_rows(&b, n), vec![3, 99, 0, 33]);
    let h: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
    assert_eq!(emu::argmax_rows(&h, n), vec![3, 99, 0, 33]);
}

/// The embedding gather: row `ids[r]` of the table for each r, over more elements than a block.
#[test]
fn embed_kernel_gathers_the_rows_of_the_ids() {
    let (vocab, d) = (50, 70);
    let table: Vec<f32> = (0..vocab * d).map(|i| i as f32 * 0.5).collect();
    let ids = [7u32, 0, 49, 7];
    let got = emu::embed_rows(&table, &ids, d);
    let want: Vec<f32> = ids.iter().flat_map(|&i| table[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
    assert_eq!(got, want);
}

/// A CUDA graph's kernels (`_at`: the cache position and key count read from device memory,
/// the mask at the cache's stride) equal the ones with those as arguments, to the bit.
#[test]
fn graph_kernels_equal_the_kernels_with_arguments() {
    let (b, nh, nkv, hd, kcap, past) = (3, 4, 2, 8, 11, 6);
    let w = (nh + 2 * nkv) * hd;
    let val = |i: usize, s: usize| (((i * 2654435761 + s) % 1000) as f32 / 500.0) - 1.0;
    let rows: Vec<f32> = (0..b * w).map(|i| val(i, 1)).collect();
    let cos: Vec<f32> = (0..b * hd).map(|i| val(i, 2)).collect();
    let sin: Vec<f32> = (0..b * hd).map(|i| val(i, 3)).collect();
    let base: Vec<f32> = (0..b * nkv * kcap * hd).map(|i| val(i, 4)).collect();
    let (mut k1, mut v1, mut k2, mut v2) = (base.clone(), base.clone(), base.clone(), base.clone());
    let info = [past as i32, past as i32 + 1];
    let q1 = emu::qkv_heads_into_cache(&rows, &cos, &sin, b, 1, [nh, nkv, hd], &mut k1, &mut v1, kcap, past, None);
    let q2 = emu::qkv_heads_into_cache_at(&rows, &cos, &sin, b, [nh, nkv, hd], &mut k2, &mut v2, kcap, &info);
    assert_eq!((&q1, &k1, &v1), (&q2, &k2, &v2));
    assert_ne!(k1, base, "the step's keys went into the cache");
    let keys = past + 1;
    let mask: Vec<f32> = (0..b * keys).map(|i| if i % keys == 0 && i / keys == 1 { -1e30 } else { 0.0 }).collect();
    let inputs = StepInputs { ids: vec![0; b], mask: mask.clone(), cos: vec![], sin: vec![], keys };
    let strided = inputs.mask_strided(kcap);
    assert_eq!(&strided[kcap..kcap + keys], &mask[keys..2 * keys]);
    let dims = [b, nkv, nh / nkv, hd];
    let want = emu::decode_attn(&q1, &k1, &v1, &mask, dims, keys, kcap, hd, 0.35);
    let got = emu::decode_attn_at(&q1, &k1, &v1, &strided, dims, kcap, hd, 0.35, &info);
    assert_eq!(got, want);
    // The compact mask read at the cache's stride would mask the wrong keys.
    let mut compact = mask.clone();
    compact.resize(b * kcap, 0.0);
    assert_ne!(emu::decode_attn_at(&q1, &k1, &v1, &compact, dims, kcap, hd, 0.35, &info), want);
}
