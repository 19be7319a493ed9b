//! Text in an image through Tesseract's command-line tool, run without a shell, the image
//! on its standard input, bounded in time.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A screenshot takes a second or two; a page of dense text several.
const OCR_TIMEOUT: Duration = Duration::from_secs(60);
/// What an image may say (about 40 pages of text); more is cut.
const MAX_OCR_CHARS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error(
        "reading text from images needs Tesseract (`apt-get install tesseract-ocr`, `brew install tesseract`): {0}"
    )]
    Missing(std::io::Error),
    #[error("Tesseract took longer than {} s", OCR_TIMEOUT.as_secs())]
    Timeout,
    #[error("Tesseract could not read the image: {0}")]
    Failed(String),
}

/// The text Tesseract reads in `image` (PNG, JPEG, GIF, WebP or BMP bytes).
pub async fn read_text(image: &[u8]) -> Result<String, OcrError> {
    let mut child = Command::new("tesseract")
        .args(["stdin", "stdout", "-l", "eng"])
        // One thread: the models already take both cores.
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(OcrError::Missing)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let image = image.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&image).await;
    });
    let out = tokio::time::timeout(OCR_TIMEOUT, child.wait_with_output()).await.map_err(|_| OcrError::Timeout)?;
    let _ = writer.await;
    let out = out.map_err(|e| OcrError::Failed(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(OcrError::Failed(err.lines().last().unwrap_or("no output").to_string()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().chars().take(MAX_OCR_CHARS).collect())
}
