//! # vqsgd
//!
//! Communication-efficient data-parallel training with vector-quantized SGD (vqSGD) over MPI.
//!
//! Every MPI rank trains the same model on its own shard of the data. After each backward pass a
//! rank compresses its gradient into a small packed payload; payloads are exchanged with an
//! allgather and every rank decodes and averages all of them, replacing the dense allreduce.
//!
//! ```text
//!  data ──► model.loss_grad ──► sync (compress ─► comm.allgather ─► decode) ──► optim ──► params
//! ```
//!
//! Modules, each knowing as little about the others as possible:
//! - [`config`]: TOML experiment files, validation, `--set` overrides;
//! - [`rng`]: the seeding policy (streams derived from seed, purpose, rank, step);
//! - [`data`]: loaders (LIBSVM, IDX, CSV, embedded digits), synthetic data, sharding;
//! - [`model`]: linear, logistic, softmax regression and the MLP over a flat parameter vector;
//! - [`bits`] and [`rice`]: bit packing and Golomb-Rice coding (no MPI, no ndarray);
//! - [`half`]: IEEE binary16 conversions (the fp16 allreduce and codec);
//! - [`compress`]: the compressor interface every scheme implements;
//! - [`quant`]: the vqSGD schemes of `shared/spec/vqsgd.md`;
//! - [`policy`]: which layers are compressed and which are sent dense;
//! - [`overlap`]: per-layer exchange overlapped with backpropagation;
//! - [`comm`]: the MPI layer (what training needs from MPI, nothing more);
//! - [`probe`]: latency/bandwidth probe and the break-even compression ratio;
//! - [`sync`]: gradient synchronisation strategies (dense allreduce, compressed allgather);
//! - [`optim`]: SGD with momentum, weight decay and schedules;
//! - [`train`]: the training loop;
//! - [`checkpoint`]: checkpoints written atomically and validated on resume;
//! - [`metrics`] and [`output`]: timers, byte accounting and the files a run writes;
//! - [`plot`]: dependency-free SVG line and scatter plots for reports;
//! - [`report`]: `vqsgd report`, run directories to an HTML page, SVG plots and tables.

pub mod baselines;
pub mod bits;
pub mod checkpoint;
pub mod comm;
pub mod compress;
pub mod config;
pub mod data;
pub mod error;
pub mod feedback;
pub mod half;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod output;
pub mod overlap;
pub mod plot;
pub mod policy;
pub mod probe;
pub mod progress;
pub mod quant;
pub mod report;
pub mod rice;
pub mod rng;
pub mod sync;
pub mod train;

pub use error::{Error, Result};
