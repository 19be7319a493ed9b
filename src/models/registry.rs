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
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "model file for role {role} not found at {}\n  hint: run `quorum models pull --profile {profile}` \
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

/// Resolves every role of `profile` to a file, grouping roles that share one.
pub fn resolve(profile: &Profile, models_dir: &Path) -> Result<Vec<ModelFile>, ResolveError> {
    let mut by_path: BTreeMap<PathBuf, ModelFile> = BTreeMap::new();
    for (&role, spec) in &profile.roles {
        let path = expected_path(&spec.source, models_dir);
        // Canonical paths make `models/x.gguf` and its symlink target one file.
        let canonical = path.canonicalize().map_err(|_| ResolveError::Missing {
            role,
            path: path.clone(),
            profile: profile.name.clone(),
        })?;
        by_path
            .entry(canonical.clone())
            .or_insert_with(|| ModelFile { path: canonical, name: spec.source.file_name(), roles: Vec::new() })
            .roles
            .push(role);
    }
    Ok(by_path.into_values().collect())
}
