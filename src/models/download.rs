//! Downloads GGUF files through `hf-hub` into the Hugging Face cache, verifies them and
//! links them into `models/`.
//!
//! hf-hub writes whatever body the server returns and never checks a hash, so every
//! download is verified here: against the profile's sha256, or else against the hub's
//! LFS etag (which is the file's sha256). A file that fails is removed from the cache so
//! that the next pull fetches it again instead of re-using a corrupt copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hf_hub::progress::{DownloadEvent, ProgressEvent, ProgressHandler};
use hf_hub::HFClient;

use super::profile::{Profile, WHISPER_FILES};
use super::registry::expected_path;
use super::spec::ModelSource;
use super::verify::{sha256_file, Verification};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot set up the Hugging Face client")]
    Client(#[source] hf_hub::HFError),
    #[error("downloading {repo}/{file} failed")]
    Hub { repo: String, file: String, source: hf_hub::HFError },
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual}; the corrupt copy \
         was removed, run the pull again"
    )]
    ChecksumMismatch { file: String, expected: String, actual: String },
    #[error("local model file {} does not exist", .0.display())]
    MissingLocal(PathBuf),
    #[error("I/O error on {}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Byte progress of one file: `(done, total)`.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A Hugging Face hub client. `from_env` honours `HF_ENDPOINT`, `HF_HUB_CACHE`, `HF_TOKEN`.
#[derive(Clone)]
pub struct HubClient {
    client: HFClient,
}

impl HubClient {
    pub fn from_env() -> Result<HubClient, DownloadError> {
        Ok(HubClient { client: HFClient::new().map_err(DownloadError::Client)? })
    }

    /// A client for a given endpoint and cache (tests point it at a local hub).
    pub fn with_endpoint(endpoint: &str, cache_dir: &Path) -> Result<HubClient, DownloadError> {
        let client = HFClient::builder()
            .endpoint(endpoint)
            .cache_dir(cache_dir)
            .retry_max_attempts(1)
            .build()
            .map_err(DownloadError::Client)?;
        Ok(HubClient { client })
    }

    /// Downloads (or re-uses the cached copy of) `file` from `repo`, verifies it and
    /// returns the path of the verified file in the cache.
    pub async fn fetch(
        &self,
        repo: &str,
        file: &str,
        sha256: Option<&str>,
        progress: ProgressFn,
    ) -> Result<PathBuf, DownloadError> {
        let (owner, name) = hf_hub::split_id(repo);
        let hub_err = |source| DownloadError::Hub { repo: repo.into(), file: file.into(), source };
        let link = self
            .client
            .model(owner, name)
            .download_file()
            .filename(file)
            .progress(Bytes(progress))
            .send()
            .await
            .map_err(hub_err)?;
        let blob = link.canonicalize().map_err(|source| DownloadError::Io { path: link.clone(), source })?;
        // The blob is named by its etag; on the hub an LFS file's etag is its sha256.
        let etag = blob.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let expected = sha256.map(str::to_string).or_else(|| is_sha256(&etag).then_some(etag));
        let Some(expected) = expected else {
            tracing::warn!(%repo, %file, "no sha256 known for this file; not verified");
            return Ok(blob);
        };
        // Hashing a multi-GB file takes seconds: off the async runtime.
        let path = blob.clone();
        let actual = tokio::task::spawn_blocking(move || sha256_file(&path))
            .await
            .map_err(|e| DownloadError::Io { path: blob.clone(), source: std::io::Error::other(e) })?
            .map_err(|source| DownloadError::Io { path: blob.clone(), source })?;
        if !actual.eq_ignore_ascii_case(&expected) {
            let _ = std::fs::remove_file(&blob);
            let _ = std::fs::remove_file(&link);
            return Err(DownloadError::ChecksumMismatch { file: file.into(), expected, actual });
        }
        Ok(blob)
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Forwards hf-hub's per-file byte counts to a [`ProgressFn`].
struct Bytes(ProgressFn);

impl ProgressHandler for Bytes {
    fn on_progress(&self, event: &ProgressEvent) {
        if let ProgressEvent::Download(DownloadEvent::Progress { files }) = event {
            for f in files {
                (self.0)(f.bytes_completed, f.total_bytes);
            }
        }
    }
}

/// What `pull` did for one file.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub file: String,
    pub path: PathBuf,
    pub verification: Verification,
}

/// Gets every file of `profile` into `models_dir`: hub files are downloaded (once each,
/// however many roles use them) and linked; local files are checked.
pub async fn pull(
    hub: &HubClient,
    profile: &Profile,
    models_dir: &Path,
    progress_for: &dyn Fn(&str) -> ProgressFn,
) -> Result<Vec<PullReport>, DownloadError> {
    std::fs::create_dir_all(models_dir)
        .map_err(|source| DownloadError::Io { path: models_dir.to_path_buf(), source })?;
    let mut seen = BTreeSet::new();
    let mut reports = Vec::new();
    for source in profile.sources() {
        let dest = expected_path(source, models_dir);
        if !seen.insert(dest.clone()) {
            continue;
        }
        match source {
            ModelSource::Local { path } => {
                if !path.exists() {
                    return Err(DownloadError::MissingLocal(path.clone()));
                }
                reports.push(PullReport {
                    file: source.file_name(),
                    path: path.clone(),
                    verification: Verification::Unchecked,
                });
            }
            ModelSource::Hub { repo, file, sha256 } => {
                let blob = hub.fetch(repo, file, sha256.as_deref(), progress_for(file)).await?;
                link(&blob, &dest)?;
                reports.push(PullReport { file: file.clone(), path: dest, verification: Verification::Verified });
            }
        }
    }
    if let Some(speech) = &profile.speech {
        let dir = models_dir.join(&speech.dir);
        std::fs::create_dir_all(&dir).map_err(|source| DownloadError::Io { path: dir.clone(), source })?;
        for file in WHISPER_FILES {
            let blob = hub.fetch(&speech.repo, file, None, progress_for(file)).await?;
            // Small text files are not LFS files: their etag is no checksum to verify against.
            let etag = blob.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let verification = if is_sha256(&etag) { Verification::Verified } else { Verification::Unchecked };
            link(&blob, &dir.join(file))?;
            reports.push(PullReport { file: format!("{}/{file}", speech.dir), path: dir.join(file), verification });
        }
    }
    Ok(reports)
}

/// Points `dest` at `target`, replacing an older link or file.
fn link(target: &Path, dest: &Path) -> Result<(), DownloadError> {
    let io = |source| DownloadError::Io { path: dest.to_path_buf(), source };
    if dest.symlink_metadata().is_ok() {
        std::fs::remove_file(dest).map_err(io)?;
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, dest).map_err(io)?;
    #[cfg(not(unix))]
    std::fs::copy(target, dest).map(|_| ()).map_err(io)?;
    Ok(())
}
