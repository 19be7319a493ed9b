//! The options of a task: how hard the pipeline tries. Defaults come from the config
//! file's `[pipeline]`, a request's `options` override them field by field; the result is
//! checked once, at task creation, and again when the task runs (the record keeps what
//! was asked). The README's `[pipeline]` example is checked against these defaults and
//! bounds by a test.

use serde::{Deserialize, Serialize};

use super::{tuning, PipelineError};

/// The most an option may be: candidates are voted on under letters A-Z; the rest bound
/// the work one request can ask for.
pub const BOUNDS: &[(&str, u64)] = &[
    ("candidates", 26),
    ("max_candidates", 26),
    ("max_votes", 64),
    ("max_rounds", 10),
    ("replans", 5),
    ("coder_max_tokens", 8192),
    ("context_tokens", 65536),
    ("whole_file_lines", 1000),
    ("probes", 20),
    ("test_timeout_secs", 3600),
    ("time_budget_secs", 86400),
];

/// How hard the pipeline tries. Every field may be set per task (`options` of the
/// workflow request); the rest keep these defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineOptions {
    /// Coder candidates per batch, sampled from one prefilled prompt.
    pub candidates: u32,
    /// In a plan's first round, further batches (each `retry_heat` hotter) are sampled
    /// while no choice settles it ([`ballot::settled`]), up to this many candidates in all;
    /// at most `candidates` means one batch.
    pub max_candidates: u32,
    /// Their temperatures are spread evenly over this range.
    pub min_temperature: f32,
    pub max_temperature: f32,
    /// First-to-ahead-by-k.
    pub k: u32,
    /// Votes at most; then plurality decides.
    pub max_votes: u32,
    /// Each retry round samples this much hotter (up to `tuning::HEAT_CAP`, or
    /// max_temperature if hotter): at the same temperatures a small coder tends to write
    /// the rejected answer again.
    pub retry_heat: f32,
    /// Code-vote-review rounds per plan.
    pub max_rounds: u32,
    /// Re-plans after `max_rounds` rejections, or after a round that wrote a change
    /// rejected before, before the task fails.
    pub replans: u32,
    /// Tokens of code the planner and the coders see (the planner's tokenizer counts).
    pub context_tokens: usize,
    /// A candidate longer than this is red-flagged (plus the files' length when the coder
    /// writes them whole, or the longest definition shown, at most as much again, when it
    /// writes edit blocks).
    pub coder_max_tokens: u32,
    /// The coder writes files up to this many lines whole, and edits longer ones with
    /// search/replace blocks; 0 means always blocks.
    pub whole_file_lines: usize,
    /// Edge-case calls the reviewer writes for Python code; candidates that return the same
    /// on all of them are one choice, and the largest such group wins (0: off).
    pub probes: u32,
    /// Run the workspace's tests on each candidate.
    pub run_tests: bool,
    pub test_timeout_secs: u64,
    /// Seconds a task should take, counted from when it starts running (0: no budget).
    /// Past half of it no further candidate batches are sampled and no probes planned;
    /// past 70% a plan's later steps are left out (the steps done are reviewed) and a
    /// rejected round ends the task with the best change so far instead of another round
    /// or plan; at its end the running stage is stopped and the task fails with the best
    /// change so far (the steps voted so far, unreviewed, if none was reviewed).
    /// Each cut is an event.
    pub time_budget_secs: u64,
    /// The task ends after its plan (the steps, the files each changes, how it is
    /// checked): nothing is coded.
    pub plan_only: bool,
    /// The preprocessor model rewrites the request into task text; the rewrite is used
    /// only when it keeps every path, code name, quoted message and number.
    pub rewrite_task: bool,
}

impl Default for PipelineOptions {
    fn default() -> PipelineOptions {
        PipelineOptions {
            candidates: 5,
            max_candidates: 10,
            min_temperature: 0.3,
            max_temperature: 0.7,
            k: 2,
            max_votes: 9,
            retry_heat: 0.3,
            max_rounds: 3,
            replans: 1,
            context_tokens: 1500,
            coder_max_tokens: 512,
            whole_file_lines: 80,
            probes: 8,
            run_tests: true,
            test_timeout_secs: 300,
            time_budget_secs: 0,
            plan_only: false,
            rewrite_task: false,
        }
    }
}

impl PipelineOptions {
    /// `overrides` (a JSON object, or null) replace fields of `self`, then the result is
    /// checked.
    pub fn with(&self, overrides: &serde_json::Value) -> Result<PipelineOptions, PipelineError> {
        let mut merged = serde_json::to_value(self).expect("options serialize");
        match overrides {
            serde_json::Value::Null => {}
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    merged[key] = value.clone();
                }
            }
            _ => return Err(PipelineError::Invalid("options must be a JSON object".into())),
        }
        let options: PipelineOptions =
            serde_json::from_value(merged).map_err(|e| PipelineError::Invalid(format!("options: {e}")))?;
        if options.candidates == 0 || options.k == 0 || options.max_votes == 0 || options.max_rounds == 0 {
            return Err(PipelineError::Invalid("candidates, k, max_votes and max_rounds must be at least 1".into()));
        }
        if !(0.0..=2.0).contains(&options.min_temperature)
            || !(options.min_temperature..=2.0).contains(&options.max_temperature)
        {
            return Err(PipelineError::Invalid(
                "temperatures must satisfy 0 <= min_temperature <= max_temperature <= 2".into(),
            ));
        }
        if !(0.0..=1.0).contains(&options.retry_heat) {
            return Err(PipelineError::Invalid("retry_heat must be between 0 and 1".into()));
        }
        let value = serde_json::to_value(&options).expect("options serialize");
        for &(name, max) in BOUNDS {
            if value[name].as_u64().is_some_and(|v| v > max) {
                return Err(PipelineError::Invalid(format!("{name} may be at most {max}")));
            }
        }
        Ok(options)
    }

    /// `candidates` temperatures spread evenly from min to max.
    pub fn temperatures(&self) -> Vec<f32> {
        let n = self.candidates.max(1);
        if n == 1 {
            return vec![self.min_temperature];
        }
        let step = (self.max_temperature - self.min_temperature) / (n - 1) as f32;
        (0..n).map(|i| self.min_temperature + step * i as f32).collect()
    }

    /// The temperatures of a plan's code round `round` (from 1): `retry_heat` hotter per
    /// retry, up to `tuning::HEAT_CAP` (or max_temperature, if hotter).
    pub fn round_temperatures(&self, round: u32) -> Vec<f32> {
        let heat = self.retry_heat * round.saturating_sub(1) as f32;
        let cap = self.max_temperature.max(tuning::HEAT_CAP);
        self.temperatures().into_iter().map(|t| (t + heat).min(cap)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profiles_coder_has_room_for_a_round_of_edit_answers() {
        // The engine gives each of a request's samples (context - prompt) / n tokens at most,
        // and an edit answer may take twice `coder_max_tokens` (a rewritten definition).
        let options = PipelineOptions::default();
        let prompt = options.context_tokens + 1000;
        for name in crate::models::PROFILE_NAMES {
            let profile = crate::models::Profile::builtin(name).unwrap();
            let context = profile.role(crate::models::Role::Coder).context as usize;
            let room = (context - prompt) / options.candidates as usize;
            assert!(room >= 2 * options.coder_max_tokens as usize, "{name}: {room} tokens a candidate");
        }
    }

    #[test]
    fn retry_rounds_sample_hotter_up_to_a_cap() {
        let options = PipelineOptions::default();
        let close = |a: Vec<f32>, b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(options.round_temperatures(1), &[0.3, 0.4, 0.5, 0.6, 0.7]));
        assert!(close(options.round_temperatures(2), &[0.6, 0.7, 0.8, 0.9, 1.0]));
        assert!(close(options.round_temperatures(3), &[0.9, 1.0, 1.1, 1.2, 1.2]));
        let cold = options.with(&serde_json::json!({"retry_heat": 0.0})).unwrap();
        assert_eq!(cold.round_temperatures(3), cold.temperatures());
        assert!(options.with(&serde_json::json!({"retry_heat": 1.5})).is_err());
    }

    #[test]
    fn the_readme_shows_every_option_with_its_default_and_bound() {
        let readme = include_str!("../../README.md");
        let block = readme.split("[pipeline]").nth(1).and_then(|b| b.split("```").next()).expect("a [pipeline] block");
        let shown: std::collections::BTreeMap<&str, (&str, &str)> = block
            .lines()
            .filter_map(|line| {
                let (setting, comment) = line.split_once('#').unwrap_or((line, ""));
                let (name, value) = setting.split_once('=')?;
                Some((name.trim(), (value.trim(), comment)))
            })
            .collect();
        let defaults = serde_json::to_value(PipelineOptions::default()).unwrap();
        let mut fields: Vec<&str> = defaults.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(shown.keys().copied().collect::<Vec<_>>(), fields, "the README lists every option, no other");
        for (name, (value, _)) in &shown {
            let default = &defaults[*name];
            let value: serde_json::Value = value.parse().unwrap();
            let same = match (value.as_f64(), default.as_f64()) {
                (Some(a), Some(b)) => (a as f32) == (b as f32),
                _ => value == *default,
            };
            assert!(same, "{name}: the README says {value}, the default is {default}");
        }
        for (name, max) in BOUNDS {
            let comment = shown[name].1;
            assert!(comment.contains(&format!("<= {max}")), "{name}: the README does not give its bound {max}");
        }
    }
}
