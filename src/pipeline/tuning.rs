//! The pipeline's fixed numbers, named in one place. Each bounds work that no task needs
//! to tune; what a task may tune is in [`super::PipelineOptions`].

/// Tokens the planner may answer with: at most three steps of 300 characters, a check.
pub const PLAN_TOKENS: u32 = 400;
/// The preprocessor's rewrite of a request: a statement of a few sentences.
pub const PREPROCESS_TOKENS: u32 = 256;
/// Tokens the reviewer may answer with: at most five problems.
pub const REVIEW_TOKENS: u32 = 300;
/// Tokens a probe answer may take: about 40 per call of 120 characters, plus the JSON.
pub const PROBE_TOKENS_PER_CALL: u32 = 50;
pub const PROBE_TOKENS_BASE: u32 = 40;
/// Edit blocks one answer may hold.
pub const EDIT_BLOCKS: u32 = 3;
/// The most tokens a whole-files answer may take, however long its files.
pub const MAX_WHOLE_TOKENS: usize = 8192;
/// The hottest a retry round samples (unless `max_temperature` is hotter).
pub const HEAT_CAP: f32 = 1.2;
/// Seconds one probe call may run (the probe test's alarm), and the allowance for
/// collecting the probe test before the calls.
pub const PROBE_CALL_SECS: u64 = 2;
pub const PROBE_SETUP_SECS: u64 = 30;
/// How hot voters sample their letters: hot enough that repeated votes are independent
/// draws, as first-to-ahead-by-k needs.
pub const VOTE_TEMPERATURE: f32 = 0.8;
/// Tokens of voting: one letter.
pub const VOTE_TOKENS: u32 = 2;

/// Seconds the whole test suite may take before any change for it to be the candidates'
/// evidence (when no test could be picked for the change).
pub const WHOLE_SUITE_SECS: u64 = 60;

/// The share of a task's time budget after which no further batches or probes start.
pub const BUDGET_NO_MORE: f64 = 0.5;

/// The share of a task's time budget kept after the coder's answers, beside their tests:
/// for the probes, the vote and a review.
pub const BUDGET_AFTER_ANSWERS: f64 = 0.15;

/// The share of a task's time budget by which candidates' test runs end.
pub const BUDGET_TESTS_END: f64 = 0.9;

/// Candidates whose tests run at once: one per core (the coder is idle while they run).
pub fn test_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}
