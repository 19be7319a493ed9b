//! Speech to text inside the process: OpenAI's Whisper through candle (pure Rust, so it
//! links beside llama.cpp's ggml), greedy decoding with timestamps, 30-second windows.

mod convert;
mod mel;
mod timestamps;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as m, audio, model::Whisper as Model, Config};
use tokenizers::Tokenizer;

pub use mel::filters as mel_filters;
pub use timestamps::Segment;
use timestamps::{Rules, Specials};

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("cannot convert the Whisper weights: {0}")]
    Convert(String),
    #[error("cannot load the Whisper model from {path}: {why}")]
    Load { path: PathBuf, why: String },
    #[error("Whisper failed: {0}")]
    Model(#[from] candle_core::Error),
    #[error("Whisper failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What one audio input said.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// Two-letter code; `en` for English-only models.
    pub language: String,
    pub duration: f64,
    pub segments: Vec<Segment>,
}

/// Tokens one 30-second window may produce (Whisper's own limit is half its text context).
const MAX_WINDOW_TOKENS: usize = 224;

/// A loaded Whisper. One transcription runs at a time (the model's caches are per call).
pub struct Whisper {
    model: Mutex<Model>,
    tokenizer: Tokenizer,
    filters: Vec<f32>,
    specials: Specials,
    device: Device,
    name: String,
}

impl Whisper {
    /// Loads a Whisper directory: Hugging Face's layout (`config.json`, `model.safetensors`,
    /// `tokenizer.json`), or CTranslate2's (`model.bin`), converted once into `candle/`
    /// beside it.
    pub fn load(dir: &Path) -> Result<Whisper, WhisperError> {
        let load_err = |why: String| WhisperError::Load { path: dir.to_path_buf(), why };
        let weights_dir = if dir.join("model.safetensors").exists() {
            dir.to_path_buf()
        } else if dir.join("model.bin").exists() {
            let out = dir.join("candle");
            if !out.join("model.safetensors").exists() {
                tracing::info!(dir = %dir.display(), "converting CTranslate2 Whisper weights to safetensors (once)");
                convert::convert(dir, &out)?;
            }
            out
        } else {
            return Err(load_err("no model.safetensors or model.bin".into()));
        };
        let config: Config = std::fs::read(weights_dir.join("config.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| load_err(format!("config.json: {e}")))?;
        let tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        let specials = Specials::from_tokenizer(&tokenizer, config.vocab_size).map_err(load_err)?;
        let device = Device::Cpu;
        let file = weights_dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; quorum never writes it while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&file], m::DTYPE, &device)? };
        let filters = mel::filters(config.num_mel_bins);
        let model = Model::load(&vb, config).map_err(|e| load_err(e.to_string()))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Whisper { model: Mutex::new(model), tokenizer, filters, specials, device, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Transcribes 16 kHz mono samples. `language` (a two-letter code) skips detection on
    /// multilingual models. Blocking: seconds of CPU.
    pub fn transcribe(&self, pcm: &[f32], language: Option<&str>) -> Result<Transcript, WhisperError> {
        let mut model = self.model.lock().unwrap_or_else(|e| e.into_inner());
        let config = model.config.clone();
        // Whisper pads the audio with 30 s of silence before the spectrogram, so that every
        // window is whole; its loudness normalisation then sees the same signal.
        let mut padded = pcm.to_vec();
        padded.resize(pcm.len() + m::N_SAMPLES, 0.0);
        let mel = audio::pcm_to_mel(&config, &padded, &self.filters);
        let frames = mel.len() / config.num_mel_bins;
        let mel = Tensor::from_vec(mel, (1, config.num_mel_bins, frames), &self.device)?;
        let content_frames = pcm.len() / m::HOP_LENGTH;
        let mut language_token = None;
        let mut segments = Vec::new();
        let mut seek = 0;
        while seek < content_frames {
            let window = mel.narrow(2, seek, m::N_FRAMES.min(frames - seek))?;
            let features = model.encoder.forward(&window, true)?;
            if language_token.is_none() {
                language_token = Some(self.language(&mut model, &features, language)?);
            }
            let offset = seek as f64 * m::HOP_LENGTH as f64 / m::SAMPLE_RATE as f64;
            let prompt = self.specials.prompt(language_token.flatten());
            let tokens = self.decode(&mut model, &features, &prompt)?;
            let window_frames = m::N_FRAMES.min(content_frames - seek);
            let (found, advance) = timestamps::segments(&tokens, &self.specials, offset, window_frames);
            for mut s in found {
                s.text = self.tokenizer.decode(&s.tokens, true).unwrap_or_default().trim().to_string();
                if !s.text.is_empty() {
                    segments.push(s);
                }
            }
            seek += advance.max(1);
        }
        let text = segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        let language = match language_token.flatten() {
            Some(t) => self.specials.language_code(&self.tokenizer, t),
            None => "en".to_string(),
        };
        Ok(Transcript { text, language, duration: pcm.len() as f64 / m::SAMPLE_RATE as f64, segments })
    }

    /// The language token for a multilingual model: the requested one, else the most
    /// likely after the start token. `None` for English-only models.
    fn language(
        &self,
        model: &mut Model,
        features: &Tensor,
        wanted: Option<&str>,
    ) -> Result<Option<u32>, WhisperError> {
        if self.specials.languages.is_empty() {
            return Ok(None);
        }
        if let Some(code) = wanted {
            if let Some(t) = self.tokenizer.token_to_id(&format!("<|{code}|>")) {
                return Ok(Some(t));
            }
        }
        let logits = self.logits(model, features, &[self.specials.sot], true)?;
        let best = self.specials.languages.clone().max_by(|a, b| logits[*a as usize].total_cmp(&logits[*b as usize]));
        Ok(best)
    }

    /// Greedy decoding of one window under Whisper's timestamp rules.
    fn decode(&self, model: &mut Model, features: &Tensor, prompt: &[u32]) -> Result<Vec<(u32, f32)>, WhisperError> {
        let mut tokens = prompt.to_vec();
        let mut sampled: Vec<(u32, f32)> = Vec::new();
        let suppress = model.config.suppress_tokens.clone();
        let rules = Rules::new(&self.specials, &suppress);
        for step in 0..MAX_WINDOW_TOKENS {
            let mut logits = self.logits(model, features, &tokens, step == 0)?;
            let plain: Vec<u32> = sampled.iter().map(|(t, _)| *t).collect();
            rules.apply(&mut logits, &plain);
            let (next, logprob) = timestamps::best(&logits);
            sampled.push((next, logprob));
            if next == self.specials.eot {
                break;
            }
            tokens.push(next);
        }
        Ok(sampled)
    }

    /// The next-token logits after `tokens`.
    fn logits(
        &self,
        model: &mut Model,
        features: &Tensor,
        tokens: &[u32],
        fresh: bool,
    ) -> Result<Vec<f32>, WhisperError> {
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let hidden = model.decoder.forward(&input, features, fresh)?;
        let last = hidden.i((..1, tokens.len() - 1..))?;
        let logits = model.decoder.final_linear(&last)?.i(0)?.i(0)?;
        Ok(logits.to_dtype(DType::F32)?.to_vec1()?)
    }
}
