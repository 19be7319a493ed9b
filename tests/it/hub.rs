//! The hf-hub download path against a local server that speaks the hub's file protocol
//! (`HEAD`/`GET /{owner}/{repo}/resolve/{revision}/{file}` with the hub's headers).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use quorum::models::{pull, sha256_file, DownloadError, HubClient, ModelSource, Profile, ProgressFn, Role};
use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Default)]
struct Hub {
    /// path `owner/repo/file` -> (body, etag the hub claims)
    files: Mutex<HashMap<String, (Vec<u8>, String)>>,
    gets: AtomicUsize,
    heads: AtomicUsize,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A few MB of non-repeating bytes, so progress arrives in several chunks.
fn blob(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[i % 4] ^ seed).collect()
}

async fn resolve(
    State(hub): State<Arc<Hub>>,
    method: Method,
    headers: HeaderMap,
    Path((owner, repo, _rev, file)): Path<(String, String, String, String)>,
) -> Response {
    let key = format!("{owner}/{repo}/{file}");
    let Some((body, etag)) = hub.files.lock().unwrap().get(&key).cloned() else {
        return (StatusCode::NOT_FOUND, [("x-error-code", "EntryNotFound")], "not found").into_response();
    };
    let quoted = format!("\"{etag}\"");
    let hub_headers = [
        ("x-repo-commit", COMMIT.to_string()),
        ("x-linked-etag", quoted.clone()),
        ("etag", quoted.clone()),
        ("x-linked-size", body.len().to_string()),
    ];
    if method == Method::HEAD {
        hub.heads.fetch_add(1, Ordering::SeqCst);
        if headers.get("if-none-match").is_some_and(|v| v.to_str().unwrap_or("") == quoted) {
            return (StatusCode::NOT_MODIFIED, hub_headers).into_response();
        }
        return (StatusCode::OK, hub_headers, [("content-length", body.len().to_string())]).into_response();
    }
    hub.gets.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, hub_headers, body).into_response()
}

async fn start_hub() -> (String, Arc<Hub>) {
    let hub = Arc::new(Hub::default());
    let app = Router::new().route("/{owner}/{repo}/resolve/{rev}/{*file}", any(resolve)).with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hub)
}

fn add(hub: &Hub, path: &str, body: Vec<u8>, etag: Option<String>) -> String {
    let sha = sha256_hex(&body);
    hub.files.lock().unwrap().insert(path.into(), (body, etag.unwrap_or_else(|| sha.clone())));
    sha
}

/// Records the largest `(done, total)` seen and how many updates came.
/// What a progress callback saw: bytes done, total, calls.
type Seen = Arc<(AtomicU64, AtomicU64, AtomicUsize)>;

fn recorder() -> (ProgressFn, Seen) {
    let seen = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicUsize::new(0)));
    let s = seen.clone();
    let f: ProgressFn = Arc::new(move |done, total| {
        s.0.fetch_max(done, Ordering::SeqCst);
        s.1.fetch_max(total, Ordering::SeqCst);
        s.2.fetch_add(1, Ordering::SeqCst);
    });
    (f, seen)
}

#[tokio::test]
async fn downloads_verify_report_progress_and_reuse_the_cache() {
    let (endpoint, hub) = start_hub().await;
    let body = blob(7, 3 << 20);
    let sha = add(&hub, "acme/tiny-GGUF/tiny.gguf", body.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::with_endpoint(&endpoint, cache.path()).unwrap();

    let (progress, seen) = recorder();
    let path = client.fetch("acme/tiny-GGUF", "tiny.gguf", Some(&sha), progress).await.unwrap();
    assert!(path.starts_with(cache.path().canonicalize().unwrap()));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(seen.0.load(Ordering::SeqCst), body.len() as u64, "progress reached the end");
    assert_eq!(seen.1.load(Ordering::SeqCst), body.len() as u64, "progress knew the total");
    assert!(seen.2.load(Ordering::SeqCst) > 2, "progress came in several updates");
    assert_eq!(hub.gets.load(Ordering::SeqCst), 1);

    // Second time: the cached copy is re-used (the hub answers 304), nothing is downloaded.
    let (progress, _) = recorder();
    let again = client.fetch("acme/tiny-GGUF", "tiny.gguf", Some(&sha), progress).await.unwrap();
    assert_eq!(again, path);
    assert_eq!(hub.gets.load(Ordering::SeqCst), 1, "no second download");
    assert_eq!(hub.heads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_corrupt_download_is_an_error_and_is_not_kept() {
    let (endpoint, hub) = start_hub().await;
    let body = blob(1, 1 << 20);
    // The hub's etag (the sha256 of an LFS file) does not match the bytes that arrive.
    add(&hub, "acme/bad-GGUF/bad.gguf", body.clone(), Some(sha256_hex(b"something else")));
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::with_endpoint(&endpoint, cache.path()).unwrap();
    let (progress, _) = recorder();
    let err = client.fetch("acme/bad-GGUF", "bad.gguf", None, progress).await.unwrap_err();
    assert!(matches!(err, DownloadError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("checksum mismatch for bad.gguf"));

    // A pinned sha256 that differs from what the hub serves is refused too.
    add(&hub, "acme/ok-GGUF/ok.gguf", body.clone(), None);
    let (progress, _) = recorder();
    let err = client.fetch("acme/ok-GGUF", "ok.gguf", Some(&"0".repeat(64)), progress).await.unwrap_err();
    assert!(matches!(err, DownloadError::ChecksumMismatch { .. }), "{err}");

    // Neither corrupt copy stays in the cache.
    let leftovers: Vec<_> =
        walk(cache.path()).into_iter().filter(|p| std::fs::read(p).ok() == Some(body.clone())).collect();
    assert!(leftovers.is_empty(), "corrupt blobs left: {leftovers:?}");
}

#[tokio::test]
async fn a_missing_file_is_reported() {
    let (endpoint, _hub) = start_hub().await;
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::with_endpoint(&endpoint, cache.path()).unwrap();
    let (progress, _) = recorder();
    let err = client.fetch("acme/none-GGUF", "none.gguf", None, progress).await.unwrap_err();
    assert!(matches!(err, DownloadError::Hub { .. }), "{err}");
    assert!(err.to_string().contains("acme/none-GGUF/none.gguf"));
}

#[tokio::test]
async fn pull_fetches_each_file_once_and_links_it_into_models() {
    let (endpoint, hub) = start_hub().await;
    let big = blob(3, 2 << 20);
    let small = blob(4, 1 << 20);
    let big_sha = add(&hub, "acme/big-GGUF/big.gguf", big.clone(), None);
    add(&hub, "acme/small-GGUF/small.gguf", small.clone(), None);
    add(&hub, "acme/draft-GGUF/draft.gguf", blob(5, 1 << 10), None);
    let hub_file = |repo: &str, file: &str| ModelSource::Hub { repo: repo.into(), file: file.into(), sha256: None };
    let mut profile = Profile::builtin("small").unwrap();
    profile.speech = None;
    for (role, spec) in profile.roles.iter_mut() {
        // Drafts are pulled too: the coder's is a role's file (fetched once), the reviewer's its own.
        spec.draft = match role {
            Role::Coder => Some(hub_file("acme/small-GGUF", "small.gguf")),
            Role::Reviewer => Some(hub_file("acme/draft-GGUF", "draft.gguf")),
            _ => None,
        };
        spec.source = match role {
            Role::Coder | Role::Reviewer => ModelSource::Hub {
                repo: "acme/big-GGUF".into(),
                file: "big.gguf".into(),
                sha256: Some(big_sha.clone()),
            },
            _ => hub_file("acme/small-GGUF", "small.gguf"),
        };
    }
    let cache = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let client = HubClient::with_endpoint(&endpoint, cache.path()).unwrap();
    let bars: Mutex<BTreeMap<String, Seen>> = Mutex::default();
    let progress_for = |file: &str| {
        let (f, seen) = recorder();
        bars.lock().unwrap().insert(file.to_string(), seen);
        f
    };
    let reports = pull(&client, &profile, models.path(), &progress_for).await.unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(hub.gets.load(Ordering::SeqCst), 3, "one download per distinct file");
    assert!(models.path().join("draft.gguf").exists());
    assert_eq!(std::fs::read(models.path().join("big.gguf")).unwrap(), big);
    assert_eq!(sha256_file(&models.path().join("small.gguf")).unwrap(), sha256_hex(&small));
    let bars = bars.into_inner().unwrap();
    assert_eq!(bars.len(), 3, "a progress bar per file");
    assert_eq!(bars["big.gguf"].0.load(Ordering::SeqCst), big.len() as u64);
}

#[tokio::test]
async fn pull_fills_the_whisper_directory_from_its_repository() {
    let (endpoint, hub) = start_hub().await;
    let weights = blob(6, 1 << 20);
    let weights_sha = add(&hub, "openai/whisper-tiny.en/model.safetensors", weights.clone(), None);
    // Small text files carry an etag that is no sha256, as on the hub.
    add(&hub, "openai/whisper-tiny.en/config.json", b"{}".to_vec(), Some("abc123".into()));
    add(&hub, "openai/whisper-tiny.en/tokenizer.json", b"{}".to_vec(), Some("def456".into()));
    let mut profile = Profile::builtin("small").unwrap();
    for spec in profile.roles.values_mut() {
        spec.source = ModelSource::Local { path: std::env::current_exe().unwrap() };
        spec.draft = None;
    }
    let (cache, models) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = HubClient::with_endpoint(&endpoint, cache.path()).unwrap();
    let (progress, _) = recorder();
    let reports = pull(&client, &profile, models.path(), &|_| progress.clone()).await.unwrap();
    let speech: Vec<_> = reports.iter().filter(|r| r.file.starts_with("whisper-tiny.en/")).collect();
    assert_eq!(speech.len(), 3, "{reports:?}");
    let dir = models.path().join("whisper-tiny.en");
    assert_eq!(sha256_file(&dir.join("model.safetensors")).unwrap(), weights_sha);
    assert!(dir.join("config.json").exists() && dir.join("tokenizer.json").exists());
    assert_eq!(speech.iter().filter(|r| r.verification == quorum::models::Verification::Verified).count(), 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}
