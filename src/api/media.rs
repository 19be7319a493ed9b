//! Audio and images in requests: `POST /v1/audio/transcriptions` (OpenAI's multipart
//! shape and response formats) and the `input_audio` / `image_url` content parts of chats,
//! which become text (a transcript, the text OCR reads) before a model sees them.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use crate::media::image::MAX_IMAGE_BYTES;
use crate::media::{ImageError, MediaError, OcrError, Transcript};
use crate::tools::Tools;

/// Audio and image parts one request may carry (each is seconds of CPU).
pub const MAX_MEDIA_PARTS: usize = 8;

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> ApiError {
        let message = e.to_string();
        let (status, param, code) = match e {
            MediaError::Audio(_) => (StatusCode::BAD_REQUEST, Some("file"), "invalid_audio"),
            MediaError::Image(_) => (StatusCode::BAD_REQUEST, Some("image_url"), "invalid_image"),
            MediaError::Ocr(OcrError::Missing(_)) | MediaError::NoSpeech(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, None, "media_unavailable")
            }
            MediaError::SpeechLoading => (StatusCode::SERVICE_UNAVAILABLE, None, "model_loading"),
            MediaError::Ocr(_) | MediaError::Vision(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some("image_url"), "unreadable_image")
            }
            MediaError::Busy => (StatusCode::TOO_MANY_REQUESTS, None, "rate_limit_exceeded"),
            MediaError::Whisper(_) => (StatusCode::INTERNAL_SERVER_ERROR, None, "speech_failed"),
        };
        let kind = match status {
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        ApiError { status, message, kind, param, code: Some(code) }
    }
}

/// OpenAI's transcription response formats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl Format {
    fn parse(s: &str) -> Result<Format, ApiError> {
        Ok(match s {
            "json" => Format::Json,
            "text" => Format::Text,
            "verbose_json" => Format::VerboseJson,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            other => {
                return Err(ApiError::invalid(
                    format!("response_format `{other}` is not one of json, text, verbose_json, srt, vtt"),
                    Some("response_format"),
                ))
            }
        })
    }
}

/// `POST /v1/audio/transcriptions`.
pub async fn transcriptions(
    State(state): State<AppState>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form =
        form.map_err(|e| ApiError::invalid(format!("expected a multipart form: {}", e.body_text()), None))?;
    let (mut file, mut format, mut language, mut words) = (None, Format::Json, None, false);
    let field_error = |e: axum::extract::multipart::MultipartError| {
        let mut err = ApiError::invalid(format!("cannot read the form: {}", e.body_text()), None);
        err.status = e.status();
        err
    };
    while let Some(field) = form.next_field().await.map_err(field_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => file = Some(field.bytes().await.map_err(field_error)?.to_vec()),
            "response_format" => format = Format::parse(field.text().await.map_err(field_error)?.trim())?,
            "language" => language = Some(field.text().await.map_err(field_error)?.trim().to_string()),
            "timestamp_granularities[]" | "timestamp_granularities" => {
                words |= field.text().await.map_err(field_error)?.trim() == "word";
            }
            // `model` names Whisper whatever it says; decoding is greedy (`temperature` 0)
            // and `prompt` is not used. Unknown fields are ignored, as OpenAI does.
            _ => {}
        }
    }
    if words {
        let message = "word timestamps are not supported; segment timestamps are";
        return Err(ApiError::invalid(message, Some("timestamp_granularities")));
    }
    let file = file.ok_or_else(|| ApiError::invalid("the form has no `file`", Some("file")))?;
    if let Some(code) = language.as_deref() {
        if code.len() > 8 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(ApiError::invalid(format!("`{code}` is not a language code such as en"), Some("language")));
        }
    }
    let transcript = state.media().transcribe(file, language).await?;
    Ok(render(&transcript, format))
}

fn render(t: &Transcript, format: Format) -> Response {
    let text = |body: String, mime: &'static str| ([(header::CONTENT_TYPE, mime)], body).into_response();
    match format {
        Format::Json => {
            Json(json!({"text": t.text, "usage": {"type": "duration", "seconds": t.duration.ceil()}})).into_response()
        }
        Format::Text => text(format!("{}\n", t.text), "text/plain; charset=utf-8"),
        Format::VerboseJson => {
            let segments: Vec<_> = t
                .segments
                .iter()
                .enumerate()
                .map(|(id, s)| {
                    json!({"id": id, "seek": (s.start * 100.0) as u64, "start": s.start, "end": s.end, "text": s.text,
                           "tokens": s.tokens, "temperature": 0.0, "avg_logprob": s.avg_logprob})
                })
                .collect();
            Json(json!({"task": "transcribe", "language": language_name(&t.language), "duration": t.duration,
                        "text": t.text, "segments": segments}))
            .into_response()
        }
        Format::Srt => text(subtitles(t, ",", |i| format!("{}\n", i + 1)), "application/x-subrip; charset=utf-8"),
        Format::Vtt => text(format!("WEBVTT\n\n{}", subtitles(t, ".", |_| String::new())), "text/vtt; charset=utf-8"),
    }
}

/// SRT and WebVTT cues: they differ in the cue number and the millisecond separator.
fn subtitles(t: &Transcript, ms_sep: &str, number: impl Fn(usize) -> String) -> String {
    let stamp = |secs: f64| {
        let ms = (secs * 1000.0).round() as u64;
        format!("{:02}:{:02}:{:02}{ms_sep}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
    };
    t.segments
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}{} --> {}\n{}\n\n", number(i), stamp(s.start), stamp(s.end), s.text))
        .collect()
}

/// OpenAI's verbose transcripts name the language in English words.
fn language_name(code: &str) -> &str {
    match code {
        "en" => "english",
        "de" => "german",
        "fr" => "french",
        "es" => "spanish",
        "it" => "italian",
        "pt" => "portuguese",
        "nl" => "dutch",
        "ja" => "japanese",
        "zh" => "chinese",
        other => other,
    }
}

/// An audio or image part of a message, as clients send it.
pub enum Attachment<'a> {
    /// `input_audio`: base64 data and its format (`wav`, `mp3`, ...).
    Audio { data: &'a str },
    /// `image_url`: a data URL, or a file in the workspace (`file://` or a relative path).
    Image { url: &'a str },
}

/// The text an attachment stands for: the transcript of audio, the text OCR reads in an
/// image.
pub async fn to_text(state: &AppState, tools: &Tools, attachment: Attachment<'_>) -> Result<String, ApiError> {
    match attachment {
        Attachment::Audio { data } => {
            let bytes = base64_bytes(data, "input_audio")?;
            Ok(state.media().transcribe(bytes, None).await?.text)
        }
        Attachment::Image { url } => Ok(state.media().image_text(&image_bytes(state, tools, url).await?).await?),
    }
}

/// A task's text from what a request sent: its words, then what its audio and images say.
pub async fn task_text(
    state: &AppState,
    tools: &Tools,
    words: &str,
    audio: Option<&str>,
    images: &[String],
) -> Result<String, ApiError> {
    if images.len() + audio.is_some() as usize > MAX_MEDIA_PARTS {
        return Err(ApiError::invalid(format!("at most {MAX_MEDIA_PARTS} audio and image inputs are accepted"), None));
    }
    let audio = audio.map(|data| base64_bytes(data, "audio")).transpose()?;
    let mut pictures = Vec::new();
    for url in images {
        pictures.push(image_bytes(state, tools, url).await?);
    }
    Ok(state.media().task_text(words, audio, &pictures).await?)
}

fn base64_bytes(data: &str, param: &'static str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| ApiError::invalid(format!("the {param} data is not base64: {e}"), Some(param)))
}

/// An image's bytes: a `data:` URL, a file inside the workspace, or, where the config allows
/// it, an http(s) URL (by default refused: a request could make the server reach any host).
async fn image_bytes(state: &AppState, tools: &Tools, url: &str) -> Result<Vec<u8>, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) =
            rest.split_once(',').ok_or_else(|| ApiError::invalid("a data URL without data", Some("image_url")))?;
        if !meta.ends_with(";base64") {
            return Err(ApiError::invalid("image data URLs must be base64", Some("image_url")));
        }
        return base64_bytes(data, "image_url");
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        if !state.remote_images() {
            return Err(ApiError::invalid(
                "remote image URLs are not fetched (allow_remote_images); send the image as a data URL or a file in the workspace",
                Some("image_url"),
            ));
        }
        return fetch(url).await;
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let path = tools.workspace().resolve(path)?;
    let len = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
    if len > MAX_IMAGE_BYTES as u64 {
        return Err(MediaError::Image(ImageError::TooLarge(len as usize)).into());
    }
    tokio::fs::read(&path).await.map_err(|e| ApiError::invalid(format!("cannot read {url}: {e}"), Some("image_url")))
}

/// Downloads an image, stopping at the size limit.
async fn fetch(url: &str) -> Result<Vec<u8>, ApiError> {
    use futures::StreamExt;
    let failed = |e: reqwest::Error| ApiError::invalid(format!("cannot fetch {url}: {e}"), Some("image_url"));
    let client = reqwest::Client::builder().timeout(REMOTE_IMAGE_TIMEOUT).build().map_err(failed)?;
    let response = client.get(url).send().await.and_then(|r| r.error_for_status()).map_err(failed)?;
    let mut body = response.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.map_err(failed)?);
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(MediaError::Image(ImageError::TooLarge(bytes.len())).into());
        }
    }
    Ok(bytes)
}

const REMOTE_IMAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Segment;

    #[test]
    fn subtitles_have_their_formats() {
        let seg = |start, end, text: &str| Segment { start, end, text: text.into(), tokens: vec![], avg_logprob: 0.0 };
        let t = Transcript {
            text: "a b".into(),
            language: "en".into(),
            duration: 3700.0,
            segments: vec![seg(0.0, 1.5, "a"), seg(3599.5, 3661.25, "b")],
        };
        assert_eq!(
            subtitles(&t, ",", |i| format!("{}\n", i + 1)),
            "1\n00:00:00,000 --> 00:00:01,500\na\n\n2\n00:59:59,500 --> 01:01:01,250\nb\n\n"
        );
        assert_eq!(subtitles(&t, ".", |_| String::new()).lines().next(), Some("00:00:00.000 --> 00:00:01.500"));
    }
}
