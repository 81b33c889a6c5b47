//! Sentence embeddings with all-MiniLM-L6-v2 (candle + the tokenizers crate), free of
//! Python types so it can be tested with a plain `cargo test`.
//!
//! The result matches sentence-transformers' `all-MiniLM-L6-v2`: at most [`MAX_TOKENS`]
//! tokens (special tokens included), mean pooling over the attention mask, L2-normalised.
//! The model's `tokenizer.json` pads every input to 128 tokens and truncates at 128; both
//! are replaced here (no padding at encode time, truncation at 256), and a batch is padded
//! only to its longest member, with the padding masked out of attention and of the mean.

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::EmbedError;

/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;

/// Texts are encoded in batches of at most this many, sorted by length first, so that a
/// short text is never padded to the length of a long one in another batch.
const BATCH: usize = 32;

/// The files a model folder must hold.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const CONFIG_FILE: &str = "config.json";

/// A loaded MiniLM encoder with its own pool of compute threads.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    pool: rayon::ThreadPool,
    threads: usize,
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile(path))
    }
}

impl Embedder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`; the
    /// computation runs on `threads` threads (at least 1).
    pub fn load(dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        if threads == 0 {
            return Err(EmbedError::InvalidThreads);
        }
        let weights = existing(dir, WEIGHTS_FILE)?;
        let tokenizer_path = existing(dir, TOKENIZER_FILE)?;
        let config_path = existing(dir, CONFIG_FILE)?;

        let bad = |path: &Path, why: String| EmbedError::BadModelFile(path.to_path_buf(), why);
        let config_text =
            fs::read_to_string(&config_path).map_err(|e| bad(&config_path, e.to_string()))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| bad(&config_path, e.to_string()))?;

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| bad(&tokenizer_path, e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| bad(&tokenizer_path, e.to_string()))?;
        tokenizer.with_padding(None);

        // Safety: the file is mapped read-only and only read while the model is built; the
        // weights are copied out of the mapping into tensors that own their memory.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
                .map_err(|e| bad(&weights, e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| bad(&weights, e.to_string()))?;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("facilitair-embed-{i}"))
            .build()
            .map_err(|e| EmbedError::Compute(e.to_string()))?;
        Ok(Self {
            model,
            tokenizer,
            dim: config.hidden_size,
            pool,
            threads,
        })
    }

    /// Dimensions of a vector (384).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Compute threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Tokens each text is encoded from (special tokens included, after truncation).
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>, EmbedError> {
        Ok(self.tokenize(texts)?.iter().map(Vec::len).collect())
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EmbedError> {
        texts
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode(*text, true)
                    .map(|enc| enc.get_ids().to_vec())
                    .map_err(|e| EmbedError::Tokenizer(e.to_string()))
            })
            .collect()
    }

    /// Embeds every text: `texts.len() * dim` floats, row-major, each row L2-normalised.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        let ids = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![0f32; texts.len() * self.dim];
        self.pool.install(|| {
            for batch in order.chunks(BATCH) {
                let rows: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
                let vectors = self.forward(&rows)?;
                for (row, &i) in vectors.chunks_exact(self.dim).zip(batch) {
                    out[i * self.dim..(i + 1) * self.dim].copy_from_slice(row);
                }
            }
            Ok::<_, EmbedError>(())
        })?;
        Ok(out)
    }

    /// One padded batch through the model, mean-pooled over the real tokens, normalised.
    fn forward(&self, rows: &[&[u32]]) -> Result<Vec<f32>, EmbedError> {
        let len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut input = Vec::with_capacity(rows.len() * len);
        let mut mask = Vec::with_capacity(rows.len() * len);
        for row in rows {
            input.extend_from_slice(row);
            input.resize(input.len() + len - row.len(), 0);
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.resize(mask.len() + len - row.len(), 0);
        }
        let shape = (rows.len(), len);
        let compute = |e: candle_core::Error| EmbedError::Compute(e.to_string());
        let input = Tensor::from_vec(input, shape, &Device::Cpu).map_err(compute)?;
        let types = input.zeros_like().map_err(compute)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu).map_err(compute)?;
        let hidden = self
            .model
            .forward(&input, &types, Some(&mask))
            .map_err(compute)?;
        let hidden: Vec<Vec<Vec<f32>>> = hidden.to_vec3().map_err(compute)?;

        let mut out = Vec::with_capacity(rows.len() * self.dim);
        for (states, row) in hidden.iter().zip(rows) {
            let start = out.len();
            out.resize(start + self.dim, 0.0);
            let sum = &mut out[start..];
            for state in &states[..row.len()] {
                for (acc, x) in sum.iter_mut().zip(state) {
                    *acc += x;
                }
            }
            mean_and_normalise(sum, row.len());
        }
        Ok(out)
    }
}

/// Turns a sum over `count` token states into their mean, then scales it to unit length
/// (the mean's scale cancels out; it is kept for clarity and for `count == 0`).
fn mean_and_normalise(sum: &mut [f32], count: usize) {
    let count = count.max(1) as f32;
    for x in sum.iter_mut() {
        *x /= count;
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    // sentence-transformers' normalisation divides by max(norm, 1e-12).
    let norm = norm.max(1e-12);
    for x in sum.iter_mut() {
        *x /= norm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_normalise_gives_a_unit_vector_in_the_mean_direction() {
        let mut v = [2.0, 0.0, 4.0, 0.0];
        mean_and_normalise(&mut v, 2);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        assert!((v[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6);
        assert!((v[2] - 2.0 / 5f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn a_zero_sum_stays_finite() {
        let mut v = [0.0; 4];
        mean_and_normalise(&mut v, 0);
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn loading_from_a_folder_without_the_files_names_the_missing_file() {
        let dir = std::env::temp_dir().join("facilitair-embed-missing");
        let _ = fs::create_dir_all(&dir);
        match Embedder::load(&dir, 1) {
            Err(EmbedError::MissingFile(path)) => assert!(path.ends_with(WEIGHTS_FILE)),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("loaded a model from an empty folder"),
        }
    }

    #[test]
    fn zero_threads_is_refused() {
        assert!(matches!(
            Embedder::load(Path::new("."), 0),
            Err(EmbedError::InvalidThreads)
        ));
    }

    /// The installed model (via `FACILITAIR_MINILM_DIR`), when there is one: the model's
    /// numerical parity is tested from Python against sentence-transformers' vectors.
    fn installed() -> Option<Embedder> {
        let dir = std::env::var_os("FACILITAIR_MINILM_DIR")?;
        Some(Embedder::load(Path::new(&dir), 1).expect("the installed model loads"))
    }

    #[test]
    fn a_batch_gives_the_same_vectors_as_one_text_at_a_time() {
        let Some(embedder) = installed() else { return };
        let texts = [
            "hi",
            "sort a list of numbers in descending order",
            "",
            "构建带有JWT认证的REST API",
        ];
        let batch = embedder.encode(&texts).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let single = embedder.encode(&[text]).unwrap();
            let row = &batch[i * 384..(i + 1) * 384];
            let dot: f32 = row.iter().zip(&single).map(|(a, b)| a * b).sum();
            assert!(dot > 0.99999, "{text:?}: cosine {dot}");
        }
    }

    #[test]
    fn long_texts_are_truncated_to_max_tokens() {
        let Some(embedder) = installed() else { return };
        let long = "word ".repeat(1000);
        assert_eq!(embedder.token_counts(&[&long]).unwrap(), vec![MAX_TOKENS]);
    }
}
