//! sha256 verification of model files.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The state of a model file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Missing,
    /// Present, but no checksum is known to compare with.
    Unchecked,
    Verified,
    Mismatch {
        expected: String,
        actual: String,
    },
}

impl Verification {
    pub fn check(path: &Path, expected: Option<&str>) -> std::io::Result<Verification> {
        if !path.exists() {
            return Ok(Verification::Missing);
        }
        let Some(expected) = expected else { return Ok(Verification::Unchecked) };
        let actual = sha256_file(path)?;
        Ok(if actual.eq_ignore_ascii_case(expected) {
            Verification::Verified
        } else {
            Verification::Mismatch { expected: expected.to_string(), actual }
        })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Verification::Missing => "missing",
            Verification::Unchecked => "present (no checksum)",
            Verification::Verified => "verified",
            Verification::Mismatch { .. } => "CHECKSUM MISMATCH",
        }
    }
}

/// Hex sha256 of a file, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
