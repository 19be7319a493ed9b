//! Audio and images become text before any language model sees them: speech through
//! Whisper (candle, in the process), text in images through OCR.
//!
//! [`Media`] is the facade the API and the pipeline use; it bounds the work (one
//! transcription at a time, a short queue) and runs it off the async runtime.

pub mod audio;
pub mod image;
mod ocr;
pub mod whisper;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Semaphore;

pub use audio::AudioError;
pub use image::ImageError;
pub use ocr::OcrError;
pub use whisper::{Segment, Transcript, Whisper, WhisperError};

/// What a vision model is asked about an image.
pub const IMAGE_QUESTION: &str = "Copy every piece of text in this image exactly (code, error messages, file \
    names, numbers), then say in one sentence what it shows.";

/// Describes an image (checked bytes) with a vision model: the composition root connects
/// the engine's, where the profile has one. Blocking.
pub type Describe = Arc<dyn Fn(&[u8]) -> Result<String, String> + Send + Sync>;

/// Transcriptions that may wait for the one that runs; more are refused as busy.
const SPEECH_QUEUE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Ocr(#[from] OcrError),
    #[error("speech is not available: {0}")]
    NoSpeech(String),
    #[error("the speech model is still loading; retry in a moment")]
    SpeechLoading,
    #[error("{SPEECH_QUEUE} transcriptions are already waiting; retry later")]
    Busy,
    #[error(transparent)]
    Whisper(#[from] WhisperError),
    #[error("the vision model could not read the image: {0}")]
    Vision(String),
}

/// Speech and image reading, shared by every request.
#[derive(Clone, Default)]
pub struct Media(Arc<Shared>);

#[derive(Default)]
struct Shared {
    speech: OnceLock<Result<Arc<Whisper>, String>>,
    queue: OnceLock<Arc<Semaphore>>,
    name: Mutex<Option<String>>,
    vision: OnceLock<Describe>,
}

impl Media {
    /// Loads the Whisper in `dir` (blocking, seconds); without one, speech is refused with
    /// the reason and everything else works.
    pub fn load_speech(&self, dir: Option<&Path>) {
        let loaded = match dir {
            None => Err("no speech model is configured (`speech_model` in the config)".to_string()),
            Some(dir) if !dir.exists() => Err(format!(
                "no speech model at {} (scripts/fetch-small-models.sh gets the small profile's)",
                dir.display()
            )),
            Some(dir) => Whisper::load(dir).map(Arc::new).map_err(|e| e.to_string()),
        };
        match &loaded {
            Ok(w) => {
                tracing::info!(model = w.name(), "speech model ready");
                *self.0.name.lock().expect("name lock") = Some(w.name().to_string());
            }
            Err(why) => tracing::warn!(%why, "speech is not available"),
        }
        let _ = self.0.speech.set(loaded);
    }

    /// Images are described by this vision model from now on, instead of read by OCR.
    pub fn set_vision(&self, describe: Describe) {
        let _ = self.0.vision.set(describe);
    }

    /// The loaded speech model's name.
    pub fn speech_model(&self) -> Option<String> {
        self.0.name.lock().expect("name lock").clone()
    }

    /// Transcribes an audio file (WAV, MP3, FLAC, OGG).
    pub async fn transcribe(&self, bytes: Vec<u8>, language: Option<String>) -> Result<Transcript, MediaError> {
        // The audio is checked first, so that bad input is answered at once; a decoder that
        // panics on a malformed file fails that request only.
        let pcm = tokio::task::spawn_blocking(move || audio::decode(&bytes))
            .await
            .map_err(|_| AudioError::Unsupported("the decoder failed on this file".into()))??;
        let whisper = match self.0.speech.get() {
            None => return Err(MediaError::SpeechLoading),
            Some(Err(why)) => return Err(MediaError::NoSpeech(why.clone())),
            Some(Ok(w)) => w.clone(),
        };
        let queue = self.0.queue.get_or_init(|| Arc::new(Semaphore::new(SPEECH_QUEUE + 1)));
        let _permit = queue.clone().try_acquire_owned().map_err(|_| MediaError::Busy)?;
        let transcript = tokio::task::spawn_blocking(move || whisper.transcribe(&pcm, language.as_deref()))
            .await
            .map_err(|_| WhisperError::Failed("the model stopped on this audio".into()))??;
        Ok(transcript)
    }

    /// A task's text from what a request carried: its words, then what its audio says, then
    /// the text in its images.
    pub async fn task_text(
        &self,
        words: &str,
        audio: Option<Vec<u8>>,
        images: &[Vec<u8>],
    ) -> Result<String, MediaError> {
        let mut parts = vec![words.trim().to_string()];
        if let Some(bytes) = audio {
            parts.push(self.transcribe(bytes, None).await?.text);
        }
        for image in images {
            parts.push(self.image_text(image).await?);
        }
        parts.retain(|p| !p.trim().is_empty());
        Ok(parts.join("\n\n"))
    }

    /// What an image says: described by the vision model where there is one, else its
    /// text read by OCR; checked first, and marked as such so that a model knows where it
    /// came from.
    pub async fn image_text(&self, bytes: &[u8]) -> Result<String, MediaError> {
        image::inspect(bytes)?;
        if let Some(describe) = self.0.vision.get().cloned() {
            let image = bytes.to_vec();
            let text = tokio::task::spawn_blocking(move || describe(&image))
                .await
                .map_err(|_| MediaError::Vision("the model stopped on this image".into()))?
                .map_err(MediaError::Vision)?;
            return Ok(format!("[an image, as the vision model describes it]\n{text}\n[end of image description]"));
        }
        let text = ocr::read_text(bytes).await?;
        Ok(format!("[text read from an image]\n{text}\n[end of image text]"))
    }
}
