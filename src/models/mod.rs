//! Roles, profiles, and getting GGUF files onto disk (hf-hub download, sha256 checks).

mod download;
mod profile;
mod registry;
mod role;
mod spec;
mod verify;

pub use download::{pull, DownloadError, HubClient, ProgressFn, PullReport};
pub use profile::{Profile, SpeechModel, UnknownProfile, PROFILE_NAMES, WHISPER_FILES};
pub use registry::{locate, resolve, ModelFile, ResolveError};
pub use role::{Role, UnknownRole};
pub use spec::{ModelSource, RoleSpec, SamplingDefaults};
pub use verify::{sha256_file, Verification};
