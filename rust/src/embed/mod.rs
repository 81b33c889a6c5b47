//! Sentence embeddings with all-MiniLM-L6-v2, free of Python types so it can be tested
//! with a plain `cargo test`.
//!
//! The result matches sentence-transformers' `all-MiniLM-L6-v2`: at most [`MAX_TOKENS`]
//! tokens (special tokens included), mean pooling over the real tokens, L2-normalised.
//! The model's `tokenizer.json` pads every input to 128 tokens and truncates at 128; both
//! are replaced here (no padding, truncation at 256). The encoder ([`model`]) never pads:
//! the sequences of a batch are stacked, and each attends only to its own tokens.

mod kernels;
mod model;

use std::fs;
use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::EmbedError;
use model::{Config, Encoder};

/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;

/// Tokens run through the encoder at once; a larger batch is cut into groups of about this
/// many, so memory stays bounded (the widest buffer is tokens × 1536 floats).
const GROUP_TOKENS: usize = 4096;

/// The files a model folder must hold.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const CONFIG_FILE: &str = "config.json";

/// A loaded MiniLM encoder with its own pool of compute threads.
pub struct Embedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
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
        let config = Config::from_json(&config_text).map_err(|e| bad(&config_path, e))?;
        if config.max_positions < MAX_TOKENS {
            let why = format!(
                "{} positions, fewer than {MAX_TOKENS}",
                config.max_positions
            );
            return Err(bad(&config_path, why));
        }
        let vocab = config.vocab;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("facilitair-embed-{i}"))
            .build()
            .map_err(|e| EmbedError::Compute(e.to_string()))?;
        // The tokenizer and the weights load side by side: start-up is what a user waits for.
        let (tokenizer, encoder) = pool.install(|| {
            rayon::join(
                || load_tokenizer(&tokenizer_path, vocab),
                || {
                    let file =
                        fs::File::open(&weights).map_err(|e| bad(&weights, e.to_string()))?;
                    // Safety: the mapping is only read (the bytes are copied out) and dropped
                    // before this returns. A file changed under us meanwhile yields wrong
                    // weights or a checked error, never a dangling read.
                    let bytes = unsafe { memmap2::Mmap::map(&file) }
                        .map_err(|e| bad(&weights, e.to_string()))?;
                    Encoder::from_safetensors(&bytes, config).map_err(|e| bad(&weights, e))
                },
            )
        });
        let (tokenizer, encoder) = (tokenizer?, encoder?);
        Ok(Self {
            encoder,
            tokenizer,
            pool,
            threads,
        })
    }

    /// Dimensions of a vector (384).
    pub fn dim(&self) -> usize {
        self.encoder.config().hidden
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
        let dim = self.dim();
        let mut out = Vec::with_capacity(texts.len() * dim);
        self.pool.install(|| {
            let mut rest = ids.as_slice();
            while !rest.is_empty() {
                let group = group_len(rest);
                let sequences: Vec<&[u32]> = rest[..group].iter().map(Vec::as_slice).collect();
                let states = self.encoder.forward(&sequences);
                let mut at = 0;
                for sequence in &sequences {
                    let rows = &states[at * dim..(at + sequence.len()) * dim];
                    out.extend(mean_normalised(rows, dim));
                    at += sequence.len();
                }
                rest = &rest[group..];
            }
        });
        Ok(out)
    }
}

/// The model's tokenizer, set to cut at [`MAX_TOKENS`] and never pad.
fn load_tokenizer(path: &Path, vocab: usize) -> Result<Tokenizer, EmbedError> {
    let bad = |why: String| EmbedError::BadModelFile(path.to_path_buf(), why);
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..TruncationParams::default()
        }))
        .map_err(|e| bad(e.to_string()))?;
    tokenizer.with_padding(None);
    if tokenizer.get_vocab_size(true) > vocab {
        return Err(bad(format!(
            "its vocabulary is larger than the model's {vocab}"
        )));
    }
    Ok(tokenizer)
}

/// How many of the next sequences form a group of at most [`GROUP_TOKENS`] (at least one).
fn group_len(sequences: &[Vec<u32>]) -> usize {
    let mut tokens = 0;
    for (i, s) in sequences.iter().enumerate() {
        tokens += s.len();
        if tokens > GROUP_TOKENS && i > 0 {
            return i;
        }
    }
    sequences.len()
}

/// The mean of `rows` (each `dim` wide), scaled to unit length. sentence-transformers divides
/// by max(norm, 1e-12); so does this, so an all-zero mean stays finite.
fn mean_normalised(rows: &[f32], dim: usize) -> Vec<f32> {
    let mut mean = vec![0f32; dim];
    let count = (rows.len() / dim).max(1) as f32;
    for row in rows.chunks_exact(dim) {
        for (acc, x) in mean.iter_mut().zip(row) {
            *acc += x;
        }
    }
    for x in mean.iter_mut() {
        *x /= count;
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in mean.iter_mut() {
        *x /= norm;
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_is_scaled_to_unit_length() {
        let v = mean_normalised(&[2.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0], 4);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        assert!((v[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6);
        assert!((v[2] - 2.0 / 5f32.sqrt()).abs() < 1e-6);
        assert!(mean_normalised(&[0.0; 4], 4).iter().all(|x| x.is_finite()));
    }

    #[test]
    fn groups_hold_at_most_the_token_budget_and_never_nothing() {
        let long = vec![vec![0u32; GROUP_TOKENS - 10], vec![0; 20], vec![0; 5]];
        assert_eq!(group_len(&long), 1);
        assert_eq!(group_len(&long[1..]), 2);
        assert_eq!(group_len(&[vec![0u32; GROUP_TOKENS * 2]]), 1);
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
