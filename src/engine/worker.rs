//! One worker thread per loaded model. It owns the model's `LlamaContext` (which is not
//! `Sync`), serves every role on that model, and runs the [`Scheduler`]'s decisions:
//! one `llama_decode` per step, then each sequence sampled with its own sampler.

use std::sync::{Arc, Mutex, MutexGuard};

use super::sampling::SeqSampler;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::metrics::ModelMetrics;
use super::request::{Event, FinishReason};
use super::scheduler::{KvOp, Limits, Request, Scheduler};
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
        Ok(())
    }

    fn serve(&mut self, sched: &mut Sched, waiting: &mut Option<Request<JobIo, SeqIo>>) -> Exit {
        let Worker { name, ctx, model, rx, turn, limits, metrics, .. } = self;
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
                        metrics.on_admit(job.reused);
                    }
                    Err(req) => {
                        *waiting = Some(req);
                        break;
                    }
                }
            }
            apply(ctx, &mut ops);
            metrics.set_usage(sched.usage(), usize::from(waiting.is_some()) + rx.len());
            if sched.is_idle() {
                continue;
            }
            if metrics.take_injected_fault() {
                panic!("a fault injected by a test");
            }
            if let Err(message) = step(ctx, model, &mut batch, sched, turn, metrics, &mut ops) {
                return Exit::Fault(format!("decoding failed: {message}"));
            }
            apply(ctx, &mut ops);
            metrics.set_usage(sched.usage(), usize::from(waiting.is_some()) + rx.len());
        }
    }
}

fn apply(ctx: &mut LlamaContext<'static>, ops: &mut Vec<KvOp>) {
    for op in ops.drain(..) {
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

/// One decode, then one sampled token for every sequence that has logits.
fn step(
    ctx: &mut LlamaContext<'static>,
    model: &'static LlamaModel,
    batch: &mut LlamaBatch<'static>,
    sched: &mut Sched,
    turn: &Turns,
    metrics: &ModelMetrics,
    ops: &mut Vec<KvOp>,
) -> Result<(), String> {
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
    {
        let _turn = turn.take();
        ctx.decode(batch).map_err(|e| e.to_string())?;
    }

    // Counted before any event goes out, so that a caller holding its answer sees them.
    let (mut generated, mut shared) = (0u64, 0u64);
    for s in sched.jobs.iter().filter(|j| !j.prefilling()).flat_map(|j| &j.seqs) {
        if s.logits.is_some() && !s.done {
            generated += 1;
            shared += u64::from(s.follows.is_some());
        }
    }
    metrics.on_step(prompt_tokens as u64, generated, shared);

    let vocab = model.vocab();
    let mut finished = Vec::new();
    for (j, job) in sched.jobs.iter_mut().enumerate() {
        if job.prefilling() {
            continue;
        }
        let max_new = job.max_new;
        for (k, s) in job.seqs.iter_mut().enumerate() {
            let Some(idx) = s.logits.take() else { continue };
            if s.done {
                continue;
            }
            let io = &mut s.state;
            let token = io.sampler.sample(ctx, idx);
            let mut stopped_by_string = false;
            let finish = if vocab.is_eog(token) && !job.state.ignore_eos {
                Some(FinishReason::Stop)
            } else {
                io.generated += 1;
                let text = io.utf8.push(&vocab.token_to_piece(token, job.state.specials, None));
                let scan = io.stop.push(&text);
                send_text(&job.state.tx, s.choice, scan.emit);
                stopped_by_string = scan.stopped;
                if scan.stopped {
                    Some(io.stop.matched().map_or(FinishReason::Stop, FinishReason::StopString))
                } else if io.generated >= max_new {
                    Some(FinishReason::Length)
                } else {
                    s.next = Some(token);
                    None
                }
            };
            let Some(finish) = finish else { continue };
            if !stopped_by_string {
                // Generation ended on its own: text held back as a possible stop string
                // (and an unfinished character) is released.
                let scan = io.stop.push(&io.utf8.finish());
                let mut rest = scan.emit;
                if !scan.stopped {
                    rest.push_str(&io.stop.finish());
                }
                send_text(&job.state.tx, s.choice, rest);
            }
            let _ = job.state.tx.send(Event::Done { choice: s.choice, finish, completion_tokens: io.generated });
            finished.push((j, k));
        }
        // Before `finish` below clears a leader that stopped: its followers copy its KV.
        job.regroup(ops);
    }
    for (j, k) in finished {
        sched.finish(j, k, ops);
    }
    sched.retire();
    Ok(())
}

fn send_text(tx: &mpsc::UnboundedSender<Event>, choice: u32, text: String) {
    if !text.is_empty() {
        let _ = tx.send(Event::Text { choice, text });
    }
}
