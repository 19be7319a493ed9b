//! `quorum models pull|list`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::ModelArgs;
use crate::models::{self, HubClient, ModelSource, ProgressFn, Verification};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download a profile's files through the Hugging Face hub, verify and link them.
    Pull(ModelArgs),
    /// Show each role's file, size, and whether it is present and verified.
    List(ModelArgs),
}

pub async fn run(cmd: ModelsCommand, config: Option<&PathBuf>) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Pull(args) => pull(args.config(config, None, None, None, None)?).await,
        ModelsCommand::List(args) => list(args.config(config, None, None, None, None)?).await,
    }
}

async fn pull(config: crate::config::Config) -> anyhow::Result<()> {
    let hub = HubClient::from_env()?;
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .expect("valid template")
        .progress_chars("=> ");
    let progress_for = |file: &str| -> ProgressFn {
        let bar = bars.add(ProgressBar::new(0).with_style(style.clone()).with_message(file.to_string()));
        Arc::new(move |done, total| {
            if total > 0 && bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.set_position(done);
        })
    };
    let reports = models::pull(&hub, &config.profile, &config.models_dir, &progress_for).await?;
    for r in reports {
        println!("{:<50} {}  -> {}", r.file, r.verification.label(), r.path.display());
    }
    Ok(())
}

async fn list(config: crate::config::Config) -> anyhow::Result<()> {
    println!("profile {} (models in {})", config.profile.name, config.models_dir.display());
    println!("{:<15} {:<48} {:>10}  status", "role", "file", "size");
    // Hash each distinct file once, off the async runtime.
    let mut checked: BTreeMap<PathBuf, Verification> = BTreeMap::new();
    let roles = config.profile.roles.iter().map(|(role, spec)| (role.to_string(), &spec.source));
    let drafts =
        config.profile.roles.iter().filter_map(|(role, spec)| Some((format!("{role} draft"), spec.draft.as_ref()?)));
    for (role, source) in roles.chain(drafts) {
        let path = models::locate(source, &config.models_dir);
        let expected = match source {
            ModelSource::Hub { sha256, .. } => sha256.clone(),
            ModelSource::Local { .. } => None,
        };
        let verification = match checked.get(&path) {
            Some(v) => v.clone(),
            None => {
                let p = path.clone();
                let v = tokio::task::spawn_blocking(move || Verification::check(&p, expected.as_deref())).await??;
                checked.insert(path.clone(), v.clone());
                v
            }
        };
        let size = std::fs::metadata(&path).map(|m| format_size(m.len())).unwrap_or_else(|_| "-".into());
        println!("{:<15} {:<48} {:>10}  {}", role, source.file_name(), size, verification.label());
    }
    Ok(())
}

fn format_size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
