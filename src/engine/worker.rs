//! One worker thread per loaded model. It owns the model's `LlamaContext` (which is not
//! `Sync`), serves every role on that model, and runs the [`Scheduler`]'s decisions:
//! one `llama_decode` per step, then each sequence sampled with its own sampler.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::sampling::SeqSampler;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;
use tokio::sync::mpsc;

use super::draft::{DraftModel, Want};
use super::metrics::{ModelMetrics, StepCounts};
use super::request::{Event, FinishReason, Speculation};
use super::scheduler::{KvOp, Limits, Request, Scheduler};
use super::speculate::{lookup, Drafter};
use super::text::{StopMatcher, Utf8Stream};

/// A validated request: tokenized, fitted to its role's context, samplers built.
pub(super) struct Job {
    pub tokens: Vec<LlamaToken>,
    /// Per sequence, already clipped so that the job fits its role's context.
    pub max_new: u32,
    /// One sampler per sample (`n`).
    pub samplers: Vec<SeqSampler>,
    pub stop: Vec<String>,
    pub ignore_eos: bool,
    /// Control tokens are written as text.
    pub specials: bool,
    /// Unbounded, but bounded in practice by `n * max_new` events.
    pub tx: mpsc::UnboundedSender<Event>,
}

/// What the worker keeps per job and per sequence besides the scheduler's bookkeeping.
struct JobIo {
    tx: mpsc::UnboundedSender<Event>,
    ignore_eos: bool,
    specials: bool,
}

struct SeqIo {
    sampler: SeqSampler,
    utf8: Utf8Stream,
    stop: StopMatcher,
    generated: u32,
    drafter: Drafter,
}

impl Job {
    fn into_request(self) -> Request<JobIo, SeqIo> {
        let seqs = self
            .samplers
            .into_iter()
            .map(|sampler| SeqIo {
                sampler,
                utf8: Utf8Stream::default(),
                stop: StopMatcher::new(self.stop.clone()),
                generated: 0,
                drafter: Drafter::default(),
            })
            .collect();
        Request {
            tokens: self.tokens,
            max_new: self.max_new,
            seqs,
            state: JobIo { tx: self.tx, ignore_eos: self.ignore_eos, specials: self.specials },
        }
    }
}

pub(super) struct Worker {
    pub name: String,
    pub ctx: LlamaContext<'static>,
    /// What `ctx` was made with, to make a fresh one after a fault.
    pub params: LlamaContextParams,
    pub model: &'static LlamaModel,
    pub rx: mpsc::Receiver<Job>,
    pub turn: Turns,
    pub limits: Limits,
    pub metrics: Arc<ModelMetrics>,
    pub drafting: Drafting,
}

/// Where the drafts of speculative decoding come from.
pub(super) enum Drafting {
    Off,
    /// Prompt lookup.
    Lookup,
    /// Prompt lookup, else the draft model.
    Model(Box<DraftModel>),
}

impl Drafting {
    fn model(&mut self) -> Option<&mut DraftModel> {
        match self {
            Drafting::Model(m) => Some(m),
            _ => None,
        }
    }
}

type Sched = Scheduler<JobIo, SeqIo>;

/// Whether the decodes of different models take turns, so that on a CPU each decode has
/// every core to itself; a GPU backend overlaps them (`benches/RESULTS.md` has both).
#[derive(Clone)]
pub struct Turns(Option<Arc<Mutex<()>>>);

impl Turns {
    pub fn new(take_turns: bool) -> Turns {
        Turns(take_turns.then(|| Arc::new(Mutex::new(()))))
    }

    /// Waits for this worker's turn, held until the guard drops; at once without turns.
    pub fn take(&self) -> Option<MutexGuard<'_, ()>> {
        self.0.as_ref().map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Why [`Worker::serve`] returned.
enum Exit {
    /// Every handle is gone: the worker is done.
    Closed,
    /// A decode failed; the context's state is unknown.
    Fault(String),
}

impl Worker {
    /// Serves until every handle is gone. A fault (a failed decode, a panic in this thread)
    /// fails the requests in flight with [`Event::Failed`] marked `recovering`, replaces
    /// the context with a fresh one and goes on serving; other models never notice.
    pub fn run(mut self) {
        let mut sched: Sched = Scheduler::new(self.limits);
        let mut waiting: Option<Request<JobIo, SeqIo>> = None;
        loop {
            let served =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(&mut sched, &mut waiting)));
            let message = match served {
                Ok(Exit::Closed) => return,
                Ok(Exit::Fault(message)) => message,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned());
                    format!("the model worker panicked: {}", what.unwrap_or_else(|| "(no message)".into()))
                }
            };
            tracing::error!(worker = %self.name, %message, "model worker failed; restarting it");
            self.metrics.set_recovering(true);
            let mut ops = Vec::new();
            // A request still waiting to start did not see the fault: it runs after the restart.
            for job in sched.fail_all(&mut ops) {
                let _ = job.state.tx.send(Event::Failed { message: message.clone(), recovering: true });
            }
            sched = Scheduler::new(self.limits);
            self.metrics.set_usage(sched.usage(), usize::from(waiting.is_some()));
            if let Err(e) = self.renew_context() {
                tracing::error!(worker = %self.name, error = %e, "cannot make a new context; the model stops serving");
                return;
            }
            self.metrics.on_restart();
            self.metrics.set_recovering(false);
            tracing::info!(worker = %self.name, "model worker restarted");
        }
    }

    /// A fresh context in place of one whose state a fault left unknown.
    fn renew_context(&mut self) -> Result<(), String> {
        let _turn = self.turn.take();
        let ctx = self.model.new_context(super::backend::backend(), self.params.clone()).map_err(|e| e.to_string())?;
        self.ctx = ctx;
        if let Some(draft) = self.drafting.model() {
            draft.reset();
        }
        Ok(())
    }

    fn serve(&mut self, sched: &mut Sched, waiting: &mut Option<Request<JobIo, SeqIo>>) -> Exit {
        let Worker { name, ctx, model, rx, turn, limits, metrics, drafting, .. } = self;
        let (model, limits) = (*model, *limits);
        let mut batch = LlamaBatch::new(limits.n_batch as usize, limits.n_seq as i32);
        let mut ops = Vec::new();
        loop {
            if sched.is_idle() && waiting.is_none() {
                match rx.blocking_recv() {
                    Some(job) => *waiting = Some(job.into_request()),
                    None => {
                        tracing::debug!(worker = %name, "request channel closed; worker stops");
                        return Exit::Closed;
                    }
                }
            }
            drop_cancelled(sched, waiting, &mut ops);
            // Take new jobs only while they can start: the rest stay in the bounded
            // channel, whose being full is what turns into HTTP 429.
            loop {
                let next = match waiting.take() {
                    Some(req) => req,
                    None => match rx.try_recv() {
                        Ok(job) => job.into_request(),
                        Err(_) => break,
                    },
                };
                match sched.admit(next, &mut ops) {
                    Ok(()) => {
                        let job = sched.jobs.last().expect("just admitted");
                        tracing::debug!(worker = %name, prompt = job.tokens.len(), reused = job.reused, samples = job.seqs.len(), "request admitted");
                        metrics.on_admit(job.reused);
                    }
                    Err(req) => {
                        *waiting = Some(req);
                        break;
                    }
                }
            }
            apply(ctx, drafting, &mut ops);
            metrics.set_usage(sched.usage(), usize::from(waiting.is_some()) + rx.len());
            if sched.is_idle() {
                continue;
            }
            if metrics.take_injected_fault() {
                panic!("a fault injected by a test");
            }
            if let Err(message) = step(ctx, model, &mut batch, sched, turn, metrics, drafting, &mut ops) {
                return Exit::Fault(format!("decoding failed: {message}"));
            }
            apply(ctx, drafting, &mut ops);
            metrics.set_usage(sched.usage(), usize::from(waiting.is_some()) + rx.len());
        }
    }
}

fn apply(ctx: &mut LlamaContext<'static>, drafting: &mut Drafting, ops: &mut Vec<KvOp>) {
    let mut draft = drafting.model();
    for op in ops.drain(..) {
        if let Some(draft) = draft.as_mut() {
            draft.mirror(&op);
        }
        match op {
            KvOp::Clear(seq) => {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            }
            KvOp::Trim { seq, from } => {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), Some(from as u32), None);
            }
            KvOp::Copy { src, dst } => {
                let _ = ctx.copy_kv_cache_seq(src, dst, None, None);
            }
        }
    }
}

/// Frees the sequences of jobs whose caller went away (client disconnected).
fn drop_cancelled(sched: &mut Sched, waiting: &mut Option<Request<JobIo, SeqIo>>, ops: &mut Vec<KvOp>) {
    if waiting.as_ref().is_some_and(|r| r.state.tx.is_closed()) {
        *waiting = None;
    }
    let mut i = 0;
    while i < sched.jobs.len() {
        if sched.jobs[i].state.tx.is_closed() {
            let job = sched.cancel(i, ops);
            tracing::debug!(sequences = job.seqs.len(), "generation cancelled by its caller");
        } else {
            i += 1;
        }
    }
}

/// Drafts for the sequences that have rows of their own, at most what each may still
/// generate: by prompt lookup, and for one that decodes alone where lookup finds none,
/// from the draft model if there is one (all such sequences drafted together). A leader's
/// followers verify its draft with it (samples of one prompt share rows while they copy
/// the same text, which is where lookup drafts are kept most).
fn propose_drafts(sched: &mut Sched, drafting: &mut Drafting, turn: &Turns) {
    let mut draft_model = drafting.model();
    // The sequences (job, index) that ask the draft model, and what they ask.
    let (mut at, mut wants) = (Vec::new(), Vec::new());
    for (j, job) in sched.jobs.iter_mut().enumerate().filter(|(_, j)| !j.prefilling()) {
        for i in 0..job.seqs.len() {
            if job.seqs[i].follows.is_some() || job.seqs[i].done {
                continue;
            }
            let solo = job.solo(i);
            let max_new = job.max_new;
            let s = &mut job.seqs[i];
            let Some(next) = s.next else { continue };
            let room = max_new.saturating_sub(s.state.generated + 1) as usize;
            let Some(allowed) = s.state.drafter.allowance(room) else { continue };
            s.fed.push(next);
            s.draft = lookup(&job.tokens, &s.fed, allowed.lookup);
            if s.draft.is_empty() && solo && draft_model.is_some() {
                let history = [job.tokens.as_slice(), &s.fed].concat();
                at.push((j, i));
                wants.push(Want { seq: s.id, history, max: allowed.model });
            }
            s.fed.pop();
        }
    }
    let Some(model) = draft_model.as_mut().filter(|_| !wants.is_empty()) else { return };
    match model.draft(&wants, turn) {
        Ok(drafts) => {
            for ((j, i), draft) in at.into_iter().zip(drafts) {
                sched.jobs[j].seqs[i].draft = draft;
            }
        }
        Err(e) => {
            // The served model goes on without drafts; the draft context starts afresh.
            tracing::warn!(error = %e, "the draft model failed to decode; drafting starts over");
            model.reset();
        }
    }
}

/// One decode, then the sampled tokens of every sequence that has logits: one, or for a
/// sequence with a draft, one per drafted token the sampler drew in turn, plus the token
/// after them. Sampling at each position in order is what the sampler would do without
/// the draft (the same logits, the same state), so the output is the same.
#[allow(clippy::too_many_arguments)]
fn step(
    ctx: &mut LlamaContext<'static>,
    model: &'static LlamaModel,
    batch: &mut LlamaBatch<'static>,
    sched: &mut Sched,
    turn: &Turns,
    metrics: &ModelMetrics,
    drafting: &mut Drafting,
    ops: &mut Vec<KvOp>,
) -> Result<(), String> {
    let drafting_started = Instant::now();
    if !matches!(drafting, Drafting::Off) {
        propose_drafts(sched, drafting, turn);
    }
    let draft_nanos = nanos(drafting_started);
    batch.clear();
    let mut add_error = None;
    let prompt_before: usize = sched.jobs.iter().map(|j| j.prefilled).sum();
    sched.plan(|token, pos, seq, logits| {
        if let Err(e) = batch.add(token, pos, &[seq], logits) {
            add_error.get_or_insert(e.to_string());
        }
    });
    let prompt_tokens = sched.jobs.iter().map(|j| j.prefilled).sum::<usize>() - prompt_before;
    if let Some(e) = add_error {
        return Err(e);
    }
    let decode_started = Instant::now();
    {
        let _turn = turn.take();
        ctx.decode(batch).map_err(|e| e.to_string())?;
    }
    let decode_nanos = nanos(decode_started);
    // On a GPU `llama_decode` returns once the work is queued; waiting for it here, not in
    // the first read of the logits, keeps the device's time out of the sampling timer.
    let wait_started = Instant::now();
    ctx.synchronize();
    let wait_nanos = nanos(wait_started);
    let sampling_started = Instant::now();

    let vocab = model.vocab();
    let mut counts =
        StepCounts { prompt: prompt_tokens as u64, decode_nanos, wait_nanos, draft_nanos, ..StepCounts::default() };
    // Events go out after the counters are updated, so that a caller holding its answer sees them.
    let mut outbox: Vec<(usize, Event)> = Vec::new();
    let mut finished = Vec::new();
    for (j, job) in sched.jobs.iter_mut().enumerate() {
        if job.prefilling() {
            continue;
        }
        // Drafted cells not kept are trimmed after `regroup`: a follower that kept more of
        // its leader's draft than the leader copies them first.
        let mut trims = Vec::new();
        let (max_new, io_job) = (job.max_new, &job.state);
        for (k, s) in job.seqs.iter_mut().enumerate() {
            let Some(mut idx) = s.logits.take() else { continue };
            if s.done {
                continue;
            }
            let shared = s.follows.is_some();
            let finish = loop {
                let token = s.state.sampler.sample(ctx, idx);
                counts.generated += 1;
                counts.shared += u64::from(shared);
                let (finish, text) = judge(&mut s.state, &vocab, io_job, token, max_new);
                if !text.is_empty() {
                    outbox.push((j, Event::Text { choice: s.choice, text }));
                }
                if finish.is_some() {
                    break finish;
                }
                if s.keep_drafted(token) {
                    idx += 1;
                    continue;
                }
                s.next = Some(token);
                break None;
            };
            let (drafted, kept) = s.end_draft(&mut trims);
            if !shared {
                // A follower's draft is its leader's rows, counted once.
                s.state.drafter.verified(drafted, kept);
                counts.drafted += drafted as u64;
                counts.accepted += kept as u64;
            }
            let Some(finish) = finish else { continue };
            let io = &s.state;
            let speculation = Speculation { drafted: io.drafter.drafted, accepted: io.drafter.accepted };
            outbox.push((j, Event::Done { choice: s.choice, finish, completion_tokens: io.generated, speculation }));
            finished.push((j, k));
        }
        // Before `finish` below clears a leader that stopped: its followers copy its KV.
        job.regroup(ops);
        ops.append(&mut trims);
    }
    counts.sample_nanos = nanos(sampling_started);
    metrics.on_step(counts);
    for (j, event) in outbox {
        let _ = sched.jobs[j].state.tx.send(event);
    }
    for (j, k) in finished {
        sched.finish(j, k, ops);
    }
    sched.retire();
    Ok(())
}

/// What a sampled token does to its sequence: the text it releases, and how the sequence
/// ends if it does (end of generation, a stop string, the token limit). At the end, text
/// held back as a possible stop string (and an unfinished character) is released.
fn judge(
    io: &mut SeqIo,
    vocab: &LlamaVocab<'_>,
    job: &JobIo,
    token: LlamaToken,
    max_new: u32,
) -> (Option<FinishReason>, String) {
    let (finish, mut text) = if vocab.is_eog(token) && !job.ignore_eos {
        (FinishReason::Stop, String::new())
    } else {
        io.generated += 1;
        let piece = io.utf8.push(&vocab.token_to_piece(token, job.specials, None));
        let scan = io.stop.push(&piece);
        if scan.stopped {
            return (Some(io.stop.matched().map_or(FinishReason::Stop, FinishReason::StopString)), scan.emit);
        }
        if io.generated < max_new {
            return (None, scan.emit);
        }
        (FinishReason::Length, scan.emit)
    };
    let scan = io.stop.push(&io.utf8.finish());
    text.push_str(&scan.emit);
    if !scan.stopped {
        text.push_str(&io.stop.finish());
    }
    (Some(finish), text)
}

fn nanos(since: Instant) -> u64 {
    since.elapsed().as_nanos().min(u64::MAX as u128) as u64
}
