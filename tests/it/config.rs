//! Config file parsing, flag overrides and profile resolution.

use std::io::Write;

use quorum::config::{Config, ConfigError, ConfigFile, Overrides};
use quorum::models::{resolve, ModelSource, Profile, ResolveError, Role};

fn parse(toml: &str) -> Result<ConfigFile, ConfigError> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(toml.as_bytes()).unwrap();
    ConfigFile::load(file.path())
}

#[test]
fn defaults_are_the_small_profile_on_localhost() {
    let config = Config::resolve(ConfigFile::default(), Overrides::default()).unwrap();
    assert_eq!(config.profile.name, "small");
    assert_eq!(config.host.to_string(), "127.0.0.1");
    assert_eq!(config.port, 8080);
    assert!(config.engine.threads >= 1);
    let coder = config.profile.role(Role::Coder);
    assert_eq!(coder.source.file_name(), "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    assert_eq!(config.profile.role(Role::Preprocessor).chat_template.as_deref(), Some("gemma"));
}

#[test]
fn file_overrides_roles_and_flags_override_the_file() {
    let file = parse(
        r#"
        profile = "m4max"
        port = 9000
        [roles.coder]
        model = "/models/mine.gguf"
        context = 2048
        temperature = 0.1
        [roles.voter]
        model = "hf:someone/some-repo/voter.gguf@ABCDEF"
        "#,
    )
    .unwrap();
    let flags = Overrides { port: Some(9100), models: vec!["planner=/p.gguf".into()], ..Default::default() };
    let config = Config::resolve(file, flags).unwrap();
    assert_eq!(config.profile.name, "m4max");
    assert_eq!(config.port, 9100);
    let coder = config.profile.role(Role::Coder);
    assert_eq!(coder.source, ModelSource::Local { path: "/models/mine.gguf".into() });
    assert_eq!(coder.context, 2048);
    assert_eq!(coder.sampling.temperature, 0.1);
    assert_eq!(
        config.profile.role(Role::Voter).source,
        ModelSource::Hub { repo: "someone/some-repo".into(), file: "voter.gguf".into(), sha256: Some("abcdef".into()) }
    );
    assert_eq!(config.profile.role(Role::Planner).source, ModelSource::Local { path: "/p.gguf".into() });
    // Untouched roles keep the profile's model.
    assert_eq!(config.profile.role(Role::Reviewer).source.file_name(), "Qwen3-Coder-30B-A3B-Instruct-Q6_K.gguf");
}

#[test]
fn bad_config_is_reported_with_the_file_and_the_problem() {
    let err = parse("profile = \"small\"\n[roles.coder]\ncontxt = 5\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("invalid config file") && msg.contains("contxt"), "{msg}");
    let err = parse("[roles.writer]\nmodel = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("writer"), "{err}");
    let file = parse("[roles.coder]\ntemperature = 5.0\n").unwrap();
    let err = Config::resolve(file, Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("temperature"), "{err}");
}

#[test]
fn bad_flags_and_profiles_are_refused() {
    let err = Config::resolve(ConfigFile::default(), Overrides { models: vec!["coder".into()], ..Default::default() });
    assert!(matches!(err, Err(ConfigError::ModelFlag(_))));
    let err =
        Config::resolve(ConfigFile::default(), Overrides { models: vec!["writer=x".into()], ..Default::default() });
    assert!(matches!(err, Err(ConfigError::Role(_))));
    let err = Config::resolve(ConfigFile::default(), Overrides { profile: Some("huge".into()), ..Default::default() });
    assert!(matches!(err, Err(ConfigError::Profile(_))));
}

#[test]
fn m4max_profile_names_real_hub_files_for_every_role() {
    let profile = Profile::builtin("m4max").unwrap();
    for role in Role::ALL {
        match &profile.role(role).source {
            ModelSource::Hub { repo, file, .. } => {
                assert!(repo.contains('/') && file.ends_with(".gguf"), "{role}: {repo} {file}");
            }
            other => panic!("{role} is not a hub file: {other:?}"),
        }
    }
    assert!(profile.role(Role::Coder).source.file_name().contains("Devstral"));
    assert!(profile.role(Role::Reviewer).source.file_name().contains("Qwen3-Coder-30B-A3B"));
    let draft = profile.role(Role::Reviewer).draft.as_ref().map(ModelSource::file_name);
    assert_eq!(draft.as_deref(), Some("Qwen3-0.6B-Q8_0.gguf"), "a draft of the Qwen3 vocabulary");
}

#[test]
fn small_profile_shares_files_between_roles() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::builtin("small").unwrap();
    for spec in profile.roles.values() {
        std::fs::write(dir.path().join(spec.source.file_name()), b"gguf").unwrap();
    }
    let files = resolve(&profile, dir.path()).unwrap();
    assert_eq!(files.len(), 3, "coder+reviewer and planner+voter share files: {files:?}");
    let coder_file = files.iter().find(|f| f.roles.contains(&Role::Coder)).unwrap();
    assert_eq!(coder_file.roles, vec![Role::Coder, Role::Reviewer]);
    let planner_file = files.iter().find(|f| f.roles.contains(&Role::Planner)).unwrap();
    assert_eq!(planner_file.roles, vec![Role::Planner, Role::Voter]);
    // The 0.5B drafts for the 1.5B (the planner's file), and has no draft of its own.
    assert_eq!(coder_file.draft.as_deref(), Some(planner_file.path.as_path()));
    assert_eq!(planner_file.draft, None);
}

#[test]
fn a_role_given_another_model_loses_the_profile_draft_unless_it_names_one() {
    let file = parse("[roles.reviewer]\ndraft = \"/d.gguf\"\n[roles.planner]\ndraft = \"\"\n").unwrap();
    let flags = Overrides { models: vec!["coder=/mine.gguf".into()], ..Default::default() };
    let config = Config::resolve(file, flags).unwrap();
    assert_eq!(config.profile.role(Role::Coder).draft, None, "the 0.5B was paired with the 1.5B, not with mine.gguf");
    let reviewer = config.profile.role(Role::Reviewer);
    assert_eq!(reviewer.draft, Some(ModelSource::Local { path: "/d.gguf".into() }));
    assert_eq!(config.profile.role(Role::Planner).draft, None);
    // The file's draft line is applied after its model line.
    let file = parse("[roles.coder]\nmodel = \"/mine.gguf\"\ndraft = \"/d.gguf\"\n").unwrap();
    let config = Config::resolve(file, Overrides::default()).unwrap();
    assert_eq!(config.profile.role(Role::Coder).draft, Some(ModelSource::Local { path: "/d.gguf".into() }));
    let err = parse("speculation = \"sometimes\"\n").unwrap_err();
    assert!(err.to_string().contains("speculation"), "{err}");
}

#[test]
fn a_symlink_and_its_target_are_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.gguf");
    std::fs::write(&real, b"gguf").unwrap();
    let link = dir.path().join("link.gguf");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let overrides = Overrides {
        models: vec![format!("all={}", real.display()), format!("voter={}", link.display())],
        ..Default::default()
    };
    let config = Config::resolve(ConfigFile::default(), overrides).unwrap();
    let files = resolve(&config.profile, dir.path()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].roles.len(), 5);
}

#[test]
fn a_missing_model_names_the_role_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = resolve(&Profile::builtin("small").unwrap(), dir.path()).unwrap_err();
    let ResolveError::Missing { role, .. } = &err;
    assert!(Role::ALL.contains(role));
    let msg = err.to_string();
    assert!(msg.contains("quorum models pull --profile small"), "{msg}");
}

#[test]
fn the_readme_config_example_is_valid() {
    let readme = std::fs::read_to_string(super::support::repo_root().join("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("README has a TOML example") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let config = Config::resolve(parse(&readme[start..end]).unwrap(), Overrides::default()).unwrap();
    assert_eq!(config.profile.role(Role::Coder).context, 8192);
    assert_eq!(config.profile.role(Role::Coder).parallel, 8);
    assert!(config.engine.prompt_cache && config.engine.kv_unified);
    assert_eq!(config.engine.concurrent_decodes, None, "the backend decides");
    assert_eq!(config.engine.speculation, quorum::config::Speculative::Auto);
    let draft = config.profile.role(Role::Coder).draft.as_ref().map(ModelSource::file_name);
    assert_eq!(draft.as_deref(), Some("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"));
    assert_eq!(config.speech_model.as_deref(), Some(std::path::Path::new("/opt/whisper-small.en")));
    assert!(!config.allow_remote_images);
    let set = Config::resolve(parse("concurrent_decodes = true").unwrap(), Overrides::default()).unwrap();
    assert_eq!(set.engine.concurrent_decodes, Some(true));
}

#[test]
fn prompt_files_override_the_built_in_prompts() {
    use quorum::models::Role;
    use quorum::prompts::Prompts;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coder.md"), "  Write Go only.\n").unwrap();
    let prompts = Prompts::load(Some(dir.path())).unwrap();
    assert_eq!(prompts.get(Role::Coder), "Write Go only.");
    assert_eq!(
        prompts.get(Role::Voter),
        quorum::prompts::system_prompt(Role::Voter).trim(),
        "the others stay built in"
    );
    assert!(Prompts::load(None).unwrap().get(Role::Coder).contains("careful programmer"));
}

#[test]
fn pipeline_options_from_the_config_file_are_checked() {
    use quorum::pipeline::PipelineOptions;
    let file: quorum::config::ConfigFile = toml::from_str("[pipeline]\nk = 3\nmax_rounds = 1\n").unwrap();
    let config = quorum::config::Config::resolve(file, Default::default()).unwrap();
    let options = PipelineOptions::default().with(&config.pipeline).unwrap();
    assert_eq!((options.k, options.max_rounds, options.candidates), (3, 1, 5));
    let bad: quorum::config::ConfigFile = toml::from_str("[pipeline]\nvotes = 3\n").unwrap();
    let config = quorum::config::Config::resolve(bad, Default::default()).unwrap();
    let err = PipelineOptions::default().with(&config.pipeline).unwrap_err().to_string();
    assert!(err.contains("unknown field `votes`"), "{err}");
}

#[test]
fn the_preprocessor_is_loaded_only_where_something_uses_it() {
    use quorum::app::serving_roles;
    use quorum::pipeline::PipelineOptions;
    let small = Config::resolve(ConfigFile::default(), Overrides::default()).unwrap();
    let defaults = PipelineOptions::default();
    assert_eq!(serving_roles(&small, &defaults), [Role::Planner, Role::Coder, Role::Voter, Role::Reviewer]);
    let rewriting = PipelineOptions { rewrite_task: true, ..Default::default() };
    assert!(serving_roles(&small, &rewriting).contains(&Role::Preprocessor));
    // One file for every role: the preprocessor costs nothing and stays.
    assert_eq!(serving_roles(&super::support::smollm_config(), &defaults).len(), 5);
    let m4max =
        Config::resolve(ConfigFile::default(), Overrides { profile: Some("m4max".into()), ..Default::default() });
    assert!(serving_roles(&m4max.unwrap(), &defaults).contains(&Role::Preprocessor), "its projector sees images");
}
