//! One worker thread per loaded model. It owns the model's `LlamaContext` (which is not
//! `Sync`), serves every role on that model, and runs the [`Scheduler`]'s decisions:
//! one `llama_decode` per step, then each sequence sampled with its own sampler.

use std::sync::{Arc, Mutex};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use super::sampling::SeqSampler;
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
    /// Unbounded, but bounded in practice by `n * max_new` events.
    pub tx: mpsc::UnboundedSender<Event>,
}

/// What the worker keeps per job and per sequence besides the scheduler's bookkeeping.
struct JobIo {
    tx: mpsc::UnboundedSender<Event>,
    ignore_eos: bool,
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
            state: JobIo { tx: self.tx, ignore_eos: self.ignore_eos },
        }
    }
}

pub(super) struct Worker {
    pub name: String,
    pub ctx: LlamaContext<'static>,
    pub model: &'static LlamaModel,
    pub rx: mpsc::Receiver<Job>,
    /// Decodes of all models take turns: on a CPU two concurrent decodes each run at a
    /// fraction of the speed of one (measured: 15.7 -> 1.3 tokens/s next to a build).
    pub turn: Arc<Mutex<()>>,
    pub limits: Limits,
    pub metrics: Arc<ModelMetrics>,
}

type Sched = Scheduler<JobIo, SeqIo>;

impl Worker {
    pub fn run(self) {
        let Worker { name, mut ctx, model, mut rx, turn, limits, metrics } = self;
        let mut sched: Sched = Scheduler::new(limits);
        let mut waiting: Option<Request<JobIo, SeqIo>> = None;
        let mut batch = LlamaBatch::new(limits.n_batch as usize, limits.n_seq as i32);
        let mut ops = Vec::new();
        loop {
            if sched.is_idle() && waiting.is_none() {
                match rx.blocking_recv() {
                    Some(job) => waiting = Some(job.into_request()),
                    None => {
                        tracing::debug!(worker = %name, "request channel closed; worker stops");
                        return;
                    }
                }
            }
            drop_cancelled(&mut sched, &mut waiting, &mut ops);
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
                        waiting = Some(req);
                        break;
                    }
                }
            }
            apply(&mut ctx, &mut ops);
            metrics.set_usage(sched.usage(), usize::from(waiting.is_some()) + rx.len());
            if sched.is_idle() {
                continue;
            }
            if let Err(message) = step(&mut ctx, model, &mut batch, &mut sched, &turn, &metrics, &mut ops) {
                tracing::error!(worker = %name, %message, "decode failed");
                for job in sched.fail_all(&mut ops) {
                    let _ = job.state.tx.send(Event::Failed { message: message.clone() });
                }
            }
            apply(&mut ctx, &mut ops);
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
    turn: &Mutex<()>,
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
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
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
                let text = io.utf8.push(&vocab.token_to_piece(token, false, None));
                let scan = io.stop.push(&text);
                send_text(&job.state.tx, s.choice, scan.emit);
                stopped_by_string = scan.stopped;
                if scan.stopped {
                    Some(FinishReason::Stop)
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
