//! Maps roles to files on disk, once per distinct file: two roles naming the same GGUF
//! share one entry, so the engine loads it once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::profile::Profile;
use super::role::Role;
use super::spec::ModelSource;

/// One distinct GGUF file and the roles it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub path: PathBuf,
    pub name: String,
    pub roles: Vec<Role>,
    /// Where the draft model of its roles is (the first role's that names one), which
    /// may not exist: only speculation with a draft model needs it.
    pub draft: Option<PathBuf>,
    /// Where each role's vision projector is, for the roles that name one.
    pub mmproj: BTreeMap<Role, PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "model file for role {role} not found at {} (nor, for a hub file, in the Hugging Face cache)\n  hint: run `quorum models pull --profile {profile}` \
         (where Hugging Face is unreachable, `scripts/fetch-small-models.sh` gets the small profile), \
         or point the role elsewhere with `--model {role}=PATH`",
        path.display()
    )]
    Missing { role: Role, path: PathBuf, profile: String },
}

/// Where a role's file is expected: a local path as given, a hub file in `models_dir`
/// (where `quorum models pull` links it).
pub fn expected_path(source: &ModelSource, models_dir: &Path) -> PathBuf {
    match source {
        ModelSource::Local { path } => path.clone(),
        ModelSource::Hub { .. } => models_dir.join(source.file_name()),
    }
}

/// Where a role's file is: its [`expected_path`], or for a hub file not linked there,
/// where the Hugging Face cache has it (what `hf download` or another tool fetched).
pub fn locate(source: &ModelSource, models_dir: &Path) -> PathBuf {
    let expected = expected_path(source, models_dir);
    match source {
        ModelSource::Hub { repo, file, .. } if !expected.exists() => {
            hf_cache_dir().and_then(|cache| hf_cached(&cache, repo, file)).unwrap_or(expected)
        }
        _ => expected,
    }
}

/// The Hugging Face hub cache, as its own tools find it: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hf_cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|home| home.join("hub")))
        .or_else(|| dirs::home_dir().map(|home| home.join(".cache/huggingface/hub")))
}

/// `file` of model `repo` in a hub cache: in the snapshot `refs/main` names, else in any
/// snapshot that has it.
fn hf_cached(cache: &Path, repo: &str, file: &str) -> Option<PathBuf> {
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let main = std::fs::read_to_string(dir.join("refs/main")).ok();
    let snapshots = dir.join("snapshots");
    if let Some(path) = main.map(|rev| snapshots.join(rev.trim()).join(file)).filter(|p| p.exists()) {
        return Some(path);
    }
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(&snapshots).ok()?.flatten().map(|e| e.path().join(file)).filter(|p| p.exists()).collect();
    found.sort();
    found.pop()
}

/// Resolves every role of `profile` to a file, grouping roles that share one.
pub fn resolve(profile: &Profile, models_dir: &Path) -> Result<Vec<ModelFile>, ResolveError> {
    let mut by_path: BTreeMap<PathBuf, ModelFile> = BTreeMap::new();
    for (&role, spec) in &profile.roles {
        let path = locate(&spec.source, models_dir);
        // Canonical paths make `models/x.gguf` and its symlink target one file.
        let canonical = path.canonicalize().map_err(|_| ResolveError::Missing {
            role,
            path: path.clone(),
            profile: profile.name.clone(),
        })?;
        let file = by_path.entry(canonical.clone()).or_insert_with(|| ModelFile {
            path: canonical,
            name: spec.source.file_name(),
            roles: Vec::new(),
            draft: None,
            mmproj: BTreeMap::new(),
        });
        file.roles.push(role);
        if let Some(mmproj) = &spec.mmproj {
            file.mmproj.insert(role, locate(mmproj, models_dir));
        }
        if file.draft.is_none() {
            file.draft = spec.draft.as_ref().map(|d| {
                let path = locate(d, models_dir);
                path.canonicalize().unwrap_or(path)
            });
        }
    }
    Ok(by_path.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_file_is_found_in_the_hugging_face_cache() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--Org--Model-GGUF");
        for rev in ["aaa", "bbb"] {
            std::fs::create_dir_all(repo.join("snapshots").join(rev)).unwrap();
            std::fs::write(repo.join("snapshots").join(rev).join("m.gguf"), rev).unwrap();
        }
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "aaa\n").unwrap();
        let found = hf_cached(cache.path(), "Org/Model-GGUF", "m.gguf").unwrap();
        assert_eq!(found, repo.join("snapshots/aaa/m.gguf"));
        std::fs::remove_file(repo.join("refs/main")).unwrap();
        assert_eq!(hf_cached(cache.path(), "Org/Model-GGUF", "m.gguf").unwrap(), repo.join("snapshots/bbb/m.gguf"));
        assert_eq!(hf_cached(cache.path(), "Org/Model-GGUF", "other.gguf"), None);
        assert_eq!(hf_cached(cache.path(), "Org/Missing", "m.gguf"), None);
    }
}
