//! reft-core: Representation Finetuning (ReFT, arXiv 2404.03592) on Candle.
//!
//! Frozen Llama-family decoders and BERT-family encoders we own ([`models`]), intervention types
//! ([`interventions`]), classification heads ([`head`]),
//! a model with interventions at chosen sites and positions ([`reft`]), training ([`train`]),
//! generation ([`generate`]) and checkpoints ([`checkpoint`], [`pyreft_import`]), from paths or
//! from in-memory files ([`files`]).

pub mod adamw;
pub mod batch;
pub mod checkpoint;
pub mod cuda_device;
pub mod decode;
pub mod default_model;
pub mod error;
pub mod files;
mod frozen_window;
pub mod generate;
pub mod head;
pub mod interventions;
pub mod models;
pub mod ops;
pub mod positions;
pub mod prefix_cache;
pub mod pyreft_import;
mod recompute;
pub mod reft;
#[doc(hidden)]
pub mod testing;
pub mod threads;
pub mod tokenizer;
pub mod torch_pickle;
pub mod train;

pub use error::{ReftError, Result};
pub use batch::Batch;
pub use files::FileMap;
pub use reft::ReftModel;
