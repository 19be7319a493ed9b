//! One worker thread per context. It owns the `LlamaContext` (which is not `Sync`) and
//! serves many sequences at once: each step puts one token of every running sequence and
//! a chunk of pending prompt tokens into one `llama_decode`, then samples each sequence
//! with its own sampler. New jobs join between steps; a job asking for `n` samples is
//! prefilled once and its KV copied to `n` sequences.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::request::{Event, FinishReason};
use super::sampling::Sampling;
use super::text::{StopMatcher, Utf8Stream};

/// A validated request: tokenized, fitted to the context, ready to schedule.
pub(super) struct Job {
    pub tokens: Vec<LlamaToken>,
    pub n: u32,
    /// Per sequence, already clipped so that the job fits the context on its own.
    pub max_new: u32,
    pub sampling: Sampling,
    pub stop: Vec<String>,
    pub ignore_eos: bool,
    /// Unbounded, but bounded in practice by `n * max_new` events.
    pub tx: mpsc::UnboundedSender<Event>,
}

impl Job {
    /// KV cells the job may use at most: the shared prompt once, plus each sample.
    pub fn cells(&self) -> u32 {
        self.tokens.len() as u32 + self.n * self.max_new
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
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_seq_max: u32,
    /// Sequences generating or prefilling now, for `/health` and tests.
    pub running: Arc<AtomicUsize>,
}

struct Seq {
    choice: u32,
    id: i32,
    sampler: LlamaSampler,
    /// Position the next fed token takes.
    pos: i32,
    next: Option<LlamaToken>,
    /// Index of this sequence's logits in the last decoded batch.
    logits: i32,
    generated: u32,
    utf8: Utf8Stream,
    stop: StopMatcher,
    done: bool,
}

struct Active {
    job: Job,
    prefilled: usize,
    seqs: Vec<Seq>,
}

impl Active {
    fn prefilling(&self) -> bool {
        self.prefilled < self.job.tokens.len()
    }
}

impl Worker {
    pub fn run(self) {
        let Worker { name, mut ctx, model, mut rx, turn, n_ctx, n_batch, n_seq_max, running } = self;
        let mut sched = Scheduler {
            free: (0..n_seq_max as i32).rev().collect(),
            reserved: 0,
            n_ctx,
            waiting: VecDeque::new(),
            active: Vec::new(),
        };
        let mut batch = LlamaBatch::new(n_batch as usize, n_seq_max as i32);
        loop {
            if sched.active.is_empty() && sched.waiting.is_empty() {
                match rx.blocking_recv() {
                    Some(job) => sched.waiting.push_back(job),
                    None => {
                        tracing::debug!(worker = %name, "request channel closed; worker stops");
                        return;
                    }
                }
            }
            sched.drop_cancelled(&mut ctx);
            // Take new jobs only while they can start: the rest stay in the bounded
            // channel, whose being full is what turns into HTTP 429.
            loop {
                sched.admit();
                if !sched.waiting.is_empty() {
                    break;
                }
                match rx.try_recv() {
                    Ok(job) => sched.waiting.push_back(job),
                    Err(_) => break,
                }
            }
            running.store(n_seq_max as usize - sched.free.len(), Ordering::Relaxed);
            if sched.active.is_empty() {
                continue;
            }
            if let Err(message) = step(&mut ctx, model, &mut batch, &mut sched, n_batch, &turn) {
                tracing::error!(worker = %name, %message, "decode failed");
                sched.fail_all(&mut ctx, &message);
            }
            running.store(n_seq_max as usize - sched.free.len(), Ordering::Relaxed);
        }
    }
}

/// Which sequences run, which wait, and the KV cells they have reserved.
struct Scheduler {
    free: Vec<i32>,
    reserved: u32,
    n_ctx: u32,
    waiting: VecDeque<Job>,
    active: Vec<Active>,
}

impl Scheduler {
    /// Starts waiting jobs, first come first served, while sequences and KV room last.
    /// A job reserves its worst case up front, so a running job never runs out of KV.
    fn admit(&mut self) {
        while let Some(job) = self.waiting.front() {
            let fits = self.free.len() >= job.n as usize && self.reserved + job.cells() <= self.n_ctx;
            if !fits {
                break;
            }
            let job = self.waiting.pop_front().expect("front exists");
            self.reserved += job.cells();
            let seqs = (0..job.n)
                .map(|choice| {
                    let sampling = Sampling { seed: job.sampling.seed.wrapping_add(choice), ..job.sampling };
                    Seq {
                        choice,
                        id: self.free.pop().expect("checked free sequences"),
                        sampler: sampling.sampler(),
                        pos: job.tokens.len() as i32,
                        next: None,
                        logits: -1,
                        generated: 0,
                        utf8: Utf8Stream::default(),
                        stop: StopMatcher::new(job.stop.clone()),
                        done: false,
                    }
                })
                .collect();
            self.active.push(Active { job, prefilled: 0, seqs });
        }
    }

    /// Frees the sequences of jobs whose caller went away (client disconnected).
    fn drop_cancelled(&mut self, ctx: &mut LlamaContext<'static>) {
        self.waiting.retain(|job| !job.tx.is_closed());
        let mut i = 0;
        while i < self.active.len() {
            if self.active[i].job.tx.is_closed() {
                let mut a = self.active.swap_remove(i);
                tracing::debug!(sequences = a.seqs.len(), "generation cancelled by its caller");
                for s in a.seqs.iter_mut().filter(|s| !s.done) {
                    release(ctx, &mut self.free, s);
                }
                self.reserved -= a.job.cells();
            } else {
                i += 1;
            }
        }
    }

    fn fail_all(&mut self, ctx: &mut LlamaContext<'static>, message: &str) {
        for mut a in self.active.drain(..) {
            let _ = a.job.tx.send(Event::Failed { message: message.to_string() });
            for s in a.seqs.iter_mut().filter(|s| !s.done) {
                release(ctx, &mut self.free, s);
            }
        }
        self.reserved = 0;
    }

    fn retire_finished(&mut self) {
        let reserved = &mut self.reserved;
        self.active.retain(|a| {
            let running = a.seqs.iter().any(|s| !s.done);
            if !running {
                *reserved -= a.job.cells();
            }
            running
        });
    }
}

fn release(ctx: &mut LlamaContext<'static>, free: &mut Vec<i32>, s: &mut Seq) {
    s.done = true;
    let _ = ctx.clear_kv_cache_seq(Some(s.id as u32), None, None);
    free.push(s.id);
}

/// One decode: a token of every running sequence, then prompt chunks in arrival order.
fn step(
    ctx: &mut LlamaContext<'static>,
    model: &'static LlamaModel,
    batch: &mut LlamaBatch<'static>,
    sched: &mut Scheduler,
    n_batch: u32,
    turn: &Mutex<()>,
) -> Result<(), String> {
    batch.clear();
    let mut budget = n_batch as usize;
    for a in &mut sched.active {
        for s in a.seqs.iter_mut().filter(|s| !s.done) {
            if let Some(token) = s.next.take() {
                s.logits = batch.n_tokens();
                batch.add(token, s.pos, &[s.id], true).map_err(|e| e.to_string())?;
                s.pos += 1;
                budget -= 1;
            }
        }
    }
    let mut finishing_prefill = Vec::new();
    for (i, a) in sched.active.iter_mut().enumerate() {
        if !a.prefilling() || budget == 0 {
            continue;
        }
        let len = a.job.tokens.len();
        let take = budget.min(len - a.prefilled);
        let primary = a.seqs[0].id;
        for p in a.prefilled..a.prefilled + take {
            let last = p == len - 1;
            batch.add(a.job.tokens[p], p as i32, &[primary], last).map_err(|e| e.to_string())?;
        }
        a.prefilled += take;
        budget -= take;
        if !a.prefilling() {
            let logits = batch.n_tokens() - 1;
            a.seqs.iter_mut().for_each(|s| s.logits = logits);
            finishing_prefill.push(i);
        }
    }

    {
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        ctx.decode(batch).map_err(|e| e.to_string())?;
    }

    // Fork: the prompt was decoded once into the primary sequence; the others share it.
    for &i in &finishing_prefill {
        let a = &mut sched.active[i];
        let primary = a.seqs[0].id;
        for s in &a.seqs[1..] {
            ctx.copy_kv_cache_seq(primary, s.id, None, None).map_err(|e| e.to_string())?;
        }
    }

    let vocab = model.vocab();
    for a in &mut sched.active {
        if a.prefilling() {
            continue;
        }
        for s in a.seqs.iter_mut().filter(|s| !s.done && s.logits >= 0) {
            let token = s.sampler.sample(ctx, s.logits);
            s.logits = -1;
            let mut stopped_by_string = false;
            let finish = if vocab.is_eog(token) && !a.job.ignore_eos {
                Some(FinishReason::Stop)
            } else {
                s.generated += 1;
                let text = s.utf8.push(&vocab.token_to_piece(token, false, None));
                let scan = s.stop.push(&text);
                send_text(&a.job.tx, s.choice, scan.emit);
                stopped_by_string = scan.stopped;
                if scan.stopped {
                    Some(FinishReason::Stop)
                } else if s.generated >= a.job.max_new {
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
                let scan = s.stop.push(&s.utf8.finish());
                let mut rest = scan.emit;
                if !scan.stopped {
                    rest.push_str(&s.stop.finish());
                }
                send_text(&a.job.tx, s.choice, rest);
            }
            let _ = a.job.tx.send(Event::Done { choice: s.choice, finish, completion_tokens: s.generated });
            release(ctx, &mut sched.free, s);
        }
    }
    sched.retire_finished();
    Ok(())
}

fn send_text(tx: &mpsc::UnboundedSender<Event>, choice: u32, text: String) {
    if !text.is_empty() {
        let _ = tx.send(Event::Text { choice, text });
    }
}
