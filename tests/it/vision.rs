//! Images through a vision projector (llama.cpp's mtmd). No vision GGUF can be had on the
//! machines these tests run on, so they cover what runs without one: the profile that
//! names a projector, and a projector that is missing or not a projector refused at load
//! with its path, before any request; without one, images go to OCR (tests/python).

use quorum::engine::{Engine, EngineError};
use quorum::models::{resolve, ModelSource, Profile, Role};

use super::support::smollm_config;

#[test]
fn the_m4max_preprocessor_names_its_projector_and_pull_fetches_it() {
    let profile = Profile::builtin("m4max").unwrap();
    let mmproj = profile.role(Role::Preprocessor).mmproj.clone().expect("a projector");
    assert!(matches!(&mmproj, ModelSource::Hub { repo, .. } if repo == "unsloth/gemma-3-4b-it-GGUF"), "{mmproj:?}");
    assert!(profile.sources().any(|s| *s == mmproj), "models pull fetches what sources() names");
    assert!(Profile::builtin("small").unwrap().roles.values().all(|s| s.mmproj.is_none()));
}

fn load_with_projector(mmproj: &std::path::Path) -> Result<Engine, EngineError> {
    let mut config = smollm_config();
    config.profile.roles.get_mut(&Role::Preprocessor).unwrap().mmproj =
        Some(ModelSource::Local { path: mmproj.into() });
    let files = resolve(&config.profile, &config.models_dir).unwrap();
    Engine::load(&files, &config.profile, &config.engine, &|_| {})
}

#[test]
fn a_missing_or_foreign_projector_is_refused_at_load_with_its_path() {
    let _serial = super::engine::serial();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("mmproj-missing.gguf");
    let err = load_with_projector(&missing).err().expect("refused");
    assert!(matches!(&err, EngineError::Load { path, .. } if *path == missing), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let junk = dir.path().join("mmproj-junk.gguf");
    std::fs::write(&junk, b"GGUF but not really a projector").unwrap();
    let err = load_with_projector(&junk).err().expect("refused");
    assert!(matches!(&err, EngineError::Load { path, .. } if *path == junk), "{err}");
    // A language model is not a projector either.
    let err = load_with_projector(&super::support::smollm()).err().expect("refused");
    assert!(err.to_string().contains("projector"), "{err}");
}
