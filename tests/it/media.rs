//! Speech: quorum's mel filters against openai-whisper's own, the CTranslate2 weights
//! converted and loaded, and a clip spoken by espeak-ng transcribed by the real Whisper
//! tiny.en (fetched by `scripts/fetch-small-models.sh`).

use std::path::PathBuf;

use quorum::media::{audio, whisper};

fn models_dir() -> PathBuf {
    quorum::config::default_models_dir()
}

fn floats(path: &std::path::Path) -> Vec<f32> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-small-models.sh)", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn mel_filters_equal_openai_whispers() {
    for n in [80, 128] {
        let theirs = floats(&models_dir().join(format!("whisper-assets/mel_{n}.f32")));
        let ours = whisper::mel_filters(n);
        assert_eq!(ours.len(), theirs.len());
        let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "{n} mel bins: largest difference {worst}");
    }
}

/// A fresh copy of the CTranslate2 files, so that the conversion runs in this test.
fn ct2_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["model.bin", "config.json", "tokenizer.json"] {
        let from = models_dir().join("whisper-tiny.en").join(file);
        std::fs::copy(&from, dir.path().join(file)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    dir
}

fn speak(text: &str, dir: &std::path::Path) -> Vec<u8> {
    let wav = dir.join("clip.wav");
    let status =
        std::process::Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&wav).arg(text).status();
    assert!(status.is_ok_and(|s| s.success()), "espeak-ng is missing: run scripts/setup.sh --test");
    std::fs::read(wav).unwrap()
}

#[test]
fn ctranslate2_weights_convert_and_transcribe_speech() {
    let dir = ct2_copy();
    let model = whisper::Whisper::load(dir.path()).unwrap();
    // Converted once: the safetensors and a Hugging Face config sit beside the original.
    let converted = dir.path().join("candle");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(converted.join("config.json")).unwrap()).unwrap();
    assert_eq!((config["d_model"].as_u64(), config["encoder_layers"].as_u64()), (Some(384), Some(4)));
    assert_eq!(config["encoder_attention_heads"].as_u64(), Some(6));
    let tensors =
        candle_core::safetensors::load(converted.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let q = &tensors["model.decoder.layers.0.encoder_attn.q_proj.weight"];
    assert_eq!(q.dims(), &[384, 384]);
    assert!(!tensors.contains_key("model.encoder.layers.0.self_attn.k_proj.bias"), "Whisper's keys have no bias");

    let said = "Add a function called is even to a new file named util dot py.";
    let pcm = audio::decode(&speak(said, dir.path())).unwrap();
    let transcript = model.transcribe(&pcm, None).unwrap();
    let text = transcript.text.to_lowercase();
    for word in ["function called", "even", "new file"] {
        assert!(text.contains(word), "{word} is not in {:?}", transcript.text);
    }
    assert_eq!(transcript.language, "en");
    let last = transcript.segments.last().unwrap();
    assert!(last.end <= transcript.duration + 0.5 && transcript.segments[0].start < 1.0, "{:?}", transcript.segments);

    // Loaded again, the converted files are used as they are.
    let modified = std::fs::metadata(converted.join("model.safetensors")).unwrap().modified().unwrap();
    whisper::Whisper::load(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(converted.join("model.safetensors")).unwrap().modified().unwrap(), modified);
}

#[test]
fn a_damaged_model_file_is_refused_with_its_path() {
    let dir = ct2_copy();
    let bin = dir.path().join("model.bin");
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() / 3]).unwrap();
    let err = whisper::Whisper::load(dir.path()).err().expect("a truncated file does not load").to_string();
    assert!(err.contains("model.bin"), "{err}");
    std::fs::write(&bin, b"not a model").unwrap();
    assert!(whisper::Whisper::load(dir.path()).is_err());
}

/// ImageMagick's command (some images ship a stand-in called `convert`).
fn magick() -> &'static str {
    if std::path::Path::new("/usr/bin/convert").exists() {
        "/usr/bin/convert"
    } else {
        "magick"
    }
}

#[test]
fn quorum_run_takes_its_task_from_audio_and_a_screenshot() {
    let (_repo_dir, repo) = super::pipeline::calc_repo();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("task.wav");
    std::fs::write(&clip, speak("Please fix the add function in the calc module.", dir.path())).unwrap();
    let shot = dir.path().join("shot.png");
    let status = std::process::Command::new(magick())
        .args(["-background", "white", "-fill", "black", "-font", "Nimbus-Mono-PS-Regular", "-pointsize", "24"])
        .args(["label:AssertionError: add(2, 3) returned -1", "-bordercolor", "white", "-border", "20"])
        .arg(&shot)
        .status();
    assert!(status.is_ok_and(|s| s.success()), "ImageMagick is missing: run scripts/setup.sh --test");
    let out = std::process::Command::new(super::support::quorum_bin())
        .arg("run")
        .arg("--audio")
        .arg(&clip)
        .arg("--image")
        .arg(&shot)
        .args(["--options", r#"{"plan_only": true}"#, "--model"])
        .arg(format!("all={}", super::support::smollm().display()))
        .arg("--workspace")
        .arg(&repo)
        .arg("--state")
        .arg(dir.path().join("state.redb"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let task = stderr.lines().find(|l| l.starts_with("task: ")).unwrap_or_else(|| panic!("no task line: {stderr}"));
    let task = task.to_lowercase();
    assert!(task.contains("function in the calc module"), "{task}");
    assert!(stderr.contains("[text read from an image]") && stderr.contains("AssertionError"), "{stderr}");
}
