//! The MiniLM (BERT) encoder: its weights, read from `model.safetensors`, and its forward
//! pass over *unpadded* sequences.
//!
//! The linear layers run on every token of every sequence at once (the rows are simply
//! stacked); attention runs per sequence over that sequence's own tokens. Nothing is ever
//! padded, so padding cannot leak into attention or into the mean.

use half::f16;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use super::kernels::{gelu, layer_norm, softmax, to_f16, Linear};

/// The shape of a BERT encoder, from the model's `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub vocab: usize,
    pub eps: f32,
}

impl Config {
    pub fn from_json(text: &str) -> Result<Self, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let size = |key: &str| {
            json.get(key)
                .and_then(Value::as_u64)
                .filter(|&v| v > 0)
                .map(|v| v as usize)
                .ok_or_else(|| format!("{key} is missing or not a positive integer"))
        };
        let act = json
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        if act != "gelu" {
            return Err(format!(
                "hidden_act {act:?} is not supported (only \"gelu\")"
            ));
        }
        let positions = json
            .get("position_embedding_type")
            .and_then(Value::as_str)
            .unwrap_or("absolute");
        if positions != "absolute" {
            return Err(format!(
                "position_embedding_type {positions:?} is not supported"
            ));
        }
        let config = Self {
            hidden: size("hidden_size")?,
            layers: size("num_hidden_layers")?,
            heads: size("num_attention_heads")?,
            intermediate: size("intermediate_size")?,
            max_positions: size("max_position_embeddings")?,
            vocab: size("vocab_size")?,
            eps: json
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12) as f32,
        };
        if !config.hidden.is_multiple_of(config.heads) {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        Ok(config)
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    qkv: Linear, // query, key and value in one product: hidden -> 3·hidden
    attention_out: Linear,
    attention_norm: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: Norm,
}

/// A loaded encoder.
pub struct Encoder {
    config: Config,
    words: Vec<f16>, // vocab × hidden
    positions: Vec<f32>,
    token_type: Vec<f32>, // the embedding of token type 0 (single-segment input)
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// Reads named f32 tensors of an expected shape out of a safetensors file.
struct Tensors<'a> {
    file: SafeTensors<'a>,
    prefix: &'static str,
}

impl<'a> Tensors<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, String> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        // Checkpoints saved from `BertForMaskedLM` and friends prefix the encoder with "bert.".
        let prefix = if file.names().iter().any(|n| n.starts_with("bert.")) {
            "bert."
        } else {
            ""
        };
        Ok(Self { file, prefix })
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        Ok(self
            .bytes(name, shape)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A tensor straight to f16, in blocks, without a full f32 copy on the way.
    fn get_f16(&self, name: &str, shape: &[usize]) -> Result<Vec<f16>, String> {
        let bytes = self.bytes(name, shape)?;
        let mut out = Vec::with_capacity(bytes.len() / 4);
        let mut block = Vec::with_capacity(4096);
        for chunk in bytes.chunks(4 * 4096) {
            block.clear();
            block.extend(
                chunk
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            out.extend(to_f16(&block));
        }
        Ok(out)
    }

    fn bytes(&self, name: &str, shape: &[usize]) -> Result<&'a [u8], String> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .file
            .tensor(&full)
            .map_err(|_| format!("tensor {full} is missing"))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor {full} is {:?}, expected F32", view.dtype()));
        }
        if view.shape() != shape {
            return Err(format!(
                "tensor {full} has shape {:?}, expected {shape:?}",
                view.shape()
            ));
        }
        Ok(view.data())
    }

    fn linear(&self, name: &str, n: usize, k: usize) -> Result<Linear, String> {
        let weight = self.get(&format!("{name}.weight"), &[n, k])?;
        let bias = self.get(&format!("{name}.bias"), &[n])?;
        Ok(Linear::new(&weight, bias, n, k))
    }

    fn layer(&self, i: usize, config: &Config) -> Result<Layer, String> {
        let h = config.hidden;
        let p = format!("encoder.layer.{i}");
        let part = |what: &str| self.get(&format!("{p}.attention.self.{what}"), &[h, h]);
        let bias = |what: &str| self.get(&format!("{p}.attention.self.{what}"), &[h]);
        let mut qkv_weight = part("query.weight")?;
        qkv_weight.extend(part("key.weight")?);
        qkv_weight.extend(part("value.weight")?);
        let mut qkv_bias = bias("query.bias")?;
        qkv_bias.extend(bias("key.bias")?);
        qkv_bias.extend(bias("value.bias")?);
        Ok(Layer {
            qkv: Linear::new(&qkv_weight, qkv_bias, 3 * h, h),
            attention_out: self.linear(&format!("{p}.attention.output.dense"), h, h)?,
            attention_norm: self.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
            ffn_in: self.linear(&format!("{p}.intermediate.dense"), config.intermediate, h)?,
            ffn_out: self.linear(&format!("{p}.output.dense"), h, config.intermediate)?,
            ffn_norm: self.norm(&format!("{p}.output.LayerNorm"), h)?,
        })
    }

    fn norm(&self, name: &str, width: usize) -> Result<Norm, String> {
        Ok(Norm {
            gamma: self.get(&format!("{name}.weight"), &[width])?,
            beta: self.get(&format!("{name}.bias"), &[width])?,
        })
    }
}

impl Encoder {
    /// Builds the encoder from the bytes of `model.safetensors`.
    /// Builds the encoder from the bytes of `model.safetensors`, the layers converted in
    /// parallel on the current rayon pool.
    pub fn from_safetensors(bytes: &[u8], config: Config) -> Result<Self, String> {
        let t = Tensors::new(bytes)?;
        let h = config.hidden;
        let (words, layers) = rayon::join(
            || t.get_f16("embeddings.word_embeddings.weight", &[config.vocab, h]),
            || {
                (0..config.layers)
                    .into_par_iter()
                    .map(|i| t.layer(i, &config))
                    .collect::<Result<Vec<_>, _>>()
            },
        );
        let positions = t.get(
            "embeddings.position_embeddings.weight",
            &[config.max_positions, h],
        )?;
        let types = t.get("embeddings.token_type_embeddings.weight", &[2, h])?;
        Ok(Self {
            words: words?,
            positions,
            token_type: types[..h].to_vec(),
            embedding_norm: t.norm("embeddings.LayerNorm", h)?,
            layers: layers?,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The last hidden state of every token: `Σ len × hidden` floats, the sequences' rows in
    /// order. Every id must be below the vocabulary size and every sequence no longer than
    /// the position table (the tokenizer's truncation sees to both).
    pub fn forward(&self, sequences: &[&[u32]]) -> Vec<f32> {
        let h = self.config.hidden;
        let tokens: usize = sequences.iter().map(|s| s.len()).sum();
        let mut x = self.embed(sequences);
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut context = vec![0f32; tokens * h];
        let mut scratch = vec![0f32; tokens * h];
        let mut inner = vec![0f32; tokens * self.config.intermediate];
        for layer in &self.layers {
            layer.qkv.forward(&x, &mut qkv);
            self.attention(sequences, &qkv, &mut context);
            layer.attention_out.forward(&context, &mut scratch);
            add_and_norm(&mut x, &scratch, &layer.attention_norm, self.config.eps);
            layer.ffn_in.forward(&x, &mut inner);
            gelu(&mut inner);
            layer.ffn_out.forward(&inner, &mut scratch);
            add_and_norm(&mut x, &scratch, &layer.ffn_norm, self.config.eps);
        }
        x
    }

    fn embed(&self, sequences: &[&[u32]]) -> Vec<f32> {
        let h = self.config.hidden;
        let mut x = Vec::with_capacity(sequences.iter().map(|s| s.len()).sum::<usize>() * h);
        for sequence in sequences {
            for (position, &id) in sequence.iter().enumerate() {
                let word = &self.words[id as usize * h..(id as usize + 1) * h];
                let place = &self.positions[position * h..(position + 1) * h];
                x.extend(
                    word.iter()
                        .zip(place)
                        .zip(&self.token_type)
                        .map(|((w, p), t)| w.to_f32() + p + t),
                );
            }
        }
        let norm = &self.embedding_norm;
        layer_norm(&mut x, &norm.gamma, &norm.beta, self.config.eps);
        x
    }

    /// Multi-head self-attention of each sequence over its own tokens.
    fn attention(&self, sequences: &[&[u32]], qkv: &[f32], context: &mut [f32]) {
        let h = self.config.hidden;
        let mut jobs = Vec::with_capacity(sequences.len());
        let (mut qkv_rest, mut out_rest) = (qkv, context);
        for sequence in sequences {
            let (q, rest) = qkv_rest.split_at(sequence.len() * 3 * h);
            let (out, tail) = std::mem::take(&mut out_rest).split_at_mut(sequence.len() * h);
            jobs.push((q, out));
            qkv_rest = rest;
            out_rest = tail;
        }
        let tokens = qkv.len() / (3 * h);
        if tokens >= PARALLEL_ATTENTION_TOKENS && jobs.len() > 1 {
            jobs.into_par_iter()
                .for_each(|(q, out)| self.attend(q, out));
        } else {
            jobs.into_iter().for_each(|(q, out)| self.attend(q, out));
        }
    }

    /// One sequence: `qkv` is `len × 3·hidden` (queries, keys, values), `out` `len × hidden`.
    ///
    /// Per head, the keys are first laid out dimension-major, so that a query's scores
    /// against all keys are built by adding whole rows (which vectorises), not by `len`
    /// separate dot products.
    fn attend(&self, qkv: &[f32], out: &mut [f32]) {
        let h = self.config.hidden;
        let d = self.config.head_dim();
        let len = out.len() / h;
        let scale = 1.0 / (d as f32).sqrt();
        let mut keys = vec![0f32; d * len]; // keys[c][j]
        let mut scores = vec![0f32; len];
        for head in 0..self.config.heads {
            let (q_at, k_at, v_at) = (head * d, h + head * d, 2 * h + head * d);
            for j in 0..len {
                let key = &qkv[j * 3 * h + k_at..j * 3 * h + k_at + d];
                for (c, value) in key.iter().enumerate() {
                    keys[c * len + j] = value * scale;
                }
            }
            for i in 0..len {
                let q = &qkv[i * 3 * h + q_at..i * 3 * h + q_at + d];
                scores.fill(0.0);
                for (c, qc) in q.iter().enumerate() {
                    for (score, key) in scores.iter_mut().zip(&keys[c * len..(c + 1) * len]) {
                        *score += qc * key;
                    }
                }
                softmax(&mut scores);
                let o = &mut out[i * h + head * d..i * h + head * d + d];
                o.fill(0.0);
                for (j, p) in scores.iter().enumerate() {
                    let v = &qkv[j * 3 * h + v_at..j * 3 * h + v_at + d];
                    for (acc, value) in o.iter_mut().zip(v) {
                        *acc += p * value;
                    }
                }
            }
        }
    }
}

/// Below this many tokens in a batch, attention runs on the calling thread.
const PARALLEL_ATTENTION_TOKENS: usize = 64;

fn add_and_norm(x: &mut [f32], residual: &[f32], norm: &Norm, eps: f32) {
    for (a, b) in x.iter_mut().zip(residual) {
        *a += b;
    }
    layer_norm(x, &norm.gamma, &norm.beta, eps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_of_minilm_is_read() {
        let text = r#"{"hidden_act": "gelu", "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512,
            "vocab_size": 30522, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}"#;
        let config = Config::from_json(text).unwrap();
        assert_eq!((config.hidden, config.layers, config.heads), (384, 6, 12));
        assert_eq!(config.head_dim(), 32);
    }

    #[test]
    fn unsupported_configs_are_refused_with_the_reason() {
        let err = Config::from_json(r#"{"hidden_act": "relu"}"#).unwrap_err();
        assert!(err.contains("relu"));
        let err = Config::from_json(r#"{"hidden_size": 384}"#).unwrap_err();
        assert!(err.contains("num_hidden_layers"));
        assert!(Config::from_json("not json").is_err());
    }
}
