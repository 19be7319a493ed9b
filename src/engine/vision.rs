//! Images through llama.cpp's multimodal library (mtmd): a vision model's projector
//! (`mmproj`) turns the image into embeddings its language model reads, and the model says
//! what the image shows. One image at a time, in a context of its own beside the role's
//! worker (an image is a rare, one-off request, not worth a place in the batch).

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Mutex;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{mtmd_default_marker, MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputText};
use llama_cpp_2::sampling::LlamaSampler;

use super::{backend, EngineError};

/// The image's tokens and the prompt around them, and the answer.
const VISION_CTX: u32 = 4096;
const BATCH: u32 = 512;

/// A vision model's projector and a context to describe images in.
pub struct Vision {
    model: &'static LlamaModel,
    inner: Mutex<Inner>,
}

struct Inner {
    mtmd: MtmdContext,
    ctx: LlamaContext<'static>,
}

impl Vision {
    /// Loads the projector at `mmproj` for `model`. Blocking.
    pub fn load(model: &'static LlamaModel, mmproj: &Path, threads: i32) -> Result<Vision, EngineError> {
        let load_err = |message: String| EngineError::Load { path: mmproj.to_path_buf(), message };
        if !mmproj.is_file() {
            return Err(load_err("the projector (mmproj) file does not exist".into()));
        }
        let path = mmproj.to_str().ok_or_else(|| load_err("the path is not UTF-8".into()))?;
        let params = MtmdContextParams { n_threads: threads, print_timings: false, ..Default::default() };
        let mtmd = MtmdContext::init_from_file(path, model, &params)
            .map_err(|e| load_err(format!("not a projector for this model: {e}")))?;
        if !mtmd.support_vision() {
            return Err(load_err("the projector has no vision encoder".into()));
        }
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(VISION_CTX))
            .with_n_batch(BATCH)
            .with_n_ubatch(BATCH)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = model.new_context(backend::backend(), ctx_params).map_err(|e| load_err(e.to_string()))?;
        Ok(Vision { model, inner: Mutex::new(Inner { mtmd, ctx }) })
    }

    /// Where the image goes in a prompt.
    pub fn marker() -> &'static str {
        mtmd_default_marker()
    }

    /// Greedy answer to `prompt` (already in the model's chat format, with [`Vision::marker`]
    /// where the image goes) about `image` (PNG, JPEG, ... bytes, checked by the caller).
    /// Blocking: seconds to minutes.
    pub fn describe(&self, image: &[u8], prompt: &str, max_tokens: u32) -> Result<String, EngineError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { mtmd, ctx } = &mut *inner;
        ctx.clear_kv_cache();
        let bitmap = bitmap(image)?;
        let text = MtmdInputText { text: prompt.to_string(), add_special: true, parse_special: true };
        let chunks = mtmd.tokenize(text, &[&bitmap]).map_err(|e| EngineError::InvalidPrompt(e.to_string()))?;
        if chunks.total_tokens() + max_tokens as usize > VISION_CTX as usize {
            return Err(EngineError::ContextLength { prompt_tokens: chunks.total_tokens(), n_ctx: VISION_CTX, n: 1 });
        }
        let start = chunks
            .eval_chunks(mtmd, ctx, 0, 0, BATCH as i32, true)
            .map_err(|e| EngineError::Decode(format!("the image could not be read: {e}")))?;
        let mut sampler = LlamaSampler::greedy();
        let mut batch = LlamaBatch::new(1, 1);
        let (vocab, mut bytes) = (self.model.vocab(), Vec::new());
        for pos in start..start + max_tokens as i32 {
            let token = sampler.sample(ctx, -1);
            if vocab.is_eog(token) {
                break;
            }
            bytes.extend(vocab.token_to_piece(token, false, None));
            batch.clear();
            batch.add(token, pos, &[0], true).map_err(|e| EngineError::Decode(e.to_string()))?;
            ctx.decode(&mut batch).map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }
}

/// The image as the projector takes it: RGB pixels, decoded here (PNG, JPEG, GIF, WebP,
/// BMP; the caller has checked its size against the limits from its header).
fn bitmap(image: &[u8]) -> Result<MtmdBitmap, EngineError> {
    let bad = |e: String| EngineError::InvalidRequest(format!("the image cannot be decoded: {e}"));
    let rgb = image::load_from_memory(image).map_err(|e| bad(e.to_string()))?.to_rgb8();
    MtmdBitmap::from_image_data(rgb.width(), rgb.height(), rgb.as_raw()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    /// A PNG of `w` x `h` pixels, made with the same crate's encoder.
    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10]))
            .write_to(&mut out, image::ImageOutputFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn images_become_rgb_bitmaps_of_their_size_and_damaged_ones_are_refused() {
        let bitmap = super::bitmap(&png(64, 48)).unwrap();
        assert_eq!((bitmap.nx(), bitmap.ny()), (64, 48));
        assert_eq!(&bitmap.data()[..3], &[200, 10, 10]);
        let whole = png(64, 48);
        let Err(err) = super::bitmap(&whole[..whole.len() / 2]) else { panic!("a truncated PNG is refused") };
        let err = err.to_string();
        assert!(err.contains("cannot be decoded"), "{err}");
        assert!(super::bitmap(b"<svg/>").is_err());
    }
}
