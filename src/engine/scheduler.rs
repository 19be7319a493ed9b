//! Continuous-batching decisions for one context, as pure logic (no FFI), so that
//! admission, chunked prefill, forking and prompt-cache eviction are unit-tested without
//! llama.cpp. The worker executes the [`KvOp`]s it returns and does the sampling.
//!
//! Each step decodes one token of every running sequence plus a bounded chunk of pending
//! prompt tokens. A job asking for `n` samples is prefilled once into its primary
//! sequence. The other samples follow it: while a sample has drawn the same tokens as the
//! sequence it follows, their KV and logits are the same, so it is decoded once for both.
//! Only when a sample draws another token is the KV copied into a sequence of its own (a
//! deferred fork). A finished job's primary sequence stays in the prompt cache (least
//! recently used goes first) so that a later prompt sharing its prefix only prefills the
//! rest; a running job's prompt is shared the same way.

use llama_cpp_2::token::LlamaToken;

pub type SeqId = i32;

/// The fewest prompt tokens a running job must share with a new one for the new one to
/// wait until they are prefilled.
const MIN_SHARED: usize = 16;

/// KV-cache work the worker must carry out, in order, before the next decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Forget a sequence entirely.
    Clear(SeqId),
    /// Forget a sequence's positions from `from` on.
    Trim { seq: SeqId, from: i32 },
    /// Share `src`'s KV with `dst` (a sample leaving the sequence it followed).
    Copy { src: SeqId, dst: SeqId },
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// KV cells in the context.
    pub n_ctx: u32,
    /// Tokens per decode.
    pub n_batch: u32,
    /// Sequence ids in the context.
    pub n_seq: u32,
    pub prompt_cache: bool,
}

/// One sequence of a running job; `S` is the worker's per-sequence state (sampler...).
#[derive(Debug)]
pub struct Seq<S> {
    pub id: SeqId,
    pub choice: u32,
    /// Position the next fed token takes.
    pub pos: i32,
    /// Sampled token waiting to be fed.
    pub next: Option<LlamaToken>,
    /// Index in the last batch whose logits this sequence samples from.
    pub logits: Option<i32>,
    /// Tokens generated and fed so far (for the prompt cache).
    pub fed: Vec<LlamaToken>,
    /// The sequence of the same job (an index in `Job::seqs`) whose KV and logits this
    /// one shares, having drawn the same tokens so far; its own KV sequence is empty.
    pub follows: Option<usize>,
    /// How many of `fed` were already in the KV it was copied from (its cells are shared).
    own_from: usize,
    /// Drafted tokens to feed after `next` (set before [`Scheduler::plan`]); after it, the
    /// drafted tokens in the KV, each with its logits, not yet verified.
    pub draft: Vec<LlamaToken>,
    /// How many of `draft` the sampler drew, in order.
    kept: usize,
    pub done: bool,
    pub state: S,
}

impl<S> Seq<S> {
    /// After sampling `token` at a drafted position: whether it is the next drafted token,
    /// which is then in the KV already (fed) and whose logits come next in the batch.
    pub fn keep_drafted(&mut self, token: LlamaToken) -> bool {
        if self.draft.get(self.kept) != Some(&token) {
            return false;
        }
        self.kept += 1;
        self.fed.push(token);
        self.pos += 1;
        true
    }

    /// Ends the verification of this step's draft: the KV of the tokens not kept is
    /// removed. Returns (drafted, kept).
    pub fn end_draft(&mut self, ops: &mut Vec<KvOp>) -> (usize, usize) {
        let counts = (self.draft.len(), self.kept);
        if self.kept < self.draft.len() {
            ops.push(KvOp::Trim { seq: self.id, from: self.pos });
        }
        self.draft.clear();
        self.kept = 0;
        counts
    }
}

/// A running job; `J` is the worker's per-job state (the event channel...).
#[derive(Debug)]
pub struct Job<J, S> {
    pub tokens: Vec<LlamaToken>,
    pub max_new: u32,
    /// Prompt tokens already in the KV of the primary sequence.
    pub prefilled: usize,
    /// Of those, how many came from the prompt cache.
    pub reused: usize,
    pub seqs: Vec<Seq<S>>,
    /// KV cells reserved for the job's worst case.
    reserve: u32,
    pub state: J,
}

impl<J, S> Job<J, S> {
    pub fn prefilling(&self) -> bool {
        self.prefilled < self.tokens.len()
    }

    /// Whether sequence `i` decodes alone: it follows none and none follows it.
    pub fn solo(&self, i: usize) -> bool {
        self.seqs[i].follows.is_none() && !self.seqs.iter().any(|f| f.follows == Some(i))
    }

    /// After sampling (`next` set on the sequences that go on): a sequence that drew
    /// another token than the one it follows, or kept another part of its draft, or whose
    /// leader stops, gets that KV copied into its own sequence (the drafted cells it did
    /// not keep are trimmed after: [`Seq::end_draft`]'s ops go after these); siblings that
    /// did the same as it follow it from now.
    pub fn regroup(&mut self, ops: &mut Vec<KvOp>) {
        // (the leader left, the position reached, the token drawn, the new leader)
        let mut split: Vec<(usize, i32, LlamaToken, usize)> = Vec::new();
        for f in 0..self.seqs.len() {
            let (Some(l), Some(token)) = (self.seqs[f].follows, self.seqs[f].next) else { continue };
            let pos = self.seqs[f].pos;
            if self.seqs[l].next == Some(token) && self.seqs[l].pos == pos {
                continue;
            }
            let src = self.seqs[l].id;
            let s = &mut self.seqs[f];
            if let Some(&(.., lead)) = split.iter().find(|&&(old, p, t, _)| old == l && p == pos && t == token) {
                s.follows = Some(lead);
            } else {
                ops.push(KvOp::Copy { src, dst: s.id });
                s.follows = None;
                s.own_from = s.fed.len();
                split.push((l, pos, token, f));
            }
        }
    }
}

/// What a job asks for, before it is admitted.
#[derive(Debug)]
pub struct Request<J, S> {
    pub tokens: Vec<LlamaToken>,
    pub max_new: u32,
    /// Per-sequence state, one per sample (`n` = its length).
    pub seqs: Vec<S>,
    pub state: J,
}

impl<J, S> Request<J, S> {
    /// Worst-case KV cells: the prompt once, plus every sample.
    fn cells(&self) -> u32 {
        self.tokens.len() as u32 + self.seqs.len() as u32 * self.max_new
    }
}

#[derive(Debug)]
struct Cached {
    seq: SeqId,
    tokens: Vec<LlamaToken>,
    used: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub running_seqs: usize,
    pub kv_cells: u32,
    pub cached_seqs: usize,
}

pub struct Scheduler<J, S> {
    limits: Limits,
    free: Vec<SeqId>,
    cache: Vec<Cached>,
    clock: u64,
    reserved: u32,
    pub jobs: Vec<Job<J, S>>,
}

impl<J, S> Scheduler<J, S> {
    pub fn new(limits: Limits) -> Self {
        Scheduler {
            limits,
            free: (0..limits.n_seq as SeqId).rev().collect(),
            cache: Vec::new(),
            clock: 0,
            reserved: 0,
            jobs: Vec::new(),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn usage(&self) -> Usage {
        let cached: u32 = self.cache.iter().map(|c| c.tokens.len() as u32).sum();
        let used: u32 = self
            .jobs
            .iter()
            .map(|j| {
                let own = j.seqs.iter().filter(|s| s.follows.is_none()).map(|s| (s.fed.len() - s.own_from) as u32);
                j.prefilled as u32 + own.sum::<u32>()
            })
            .sum();
        Usage {
            running_seqs: self.jobs.iter().map(|j| j.seqs.iter().filter(|s| !s.done).count()).sum(),
            kv_cells: cached + used,
            cached_seqs: self.cache.len(),
        }
    }

    fn cached_cells(&self) -> u32 {
        self.cache.iter().map(|c| c.tokens.len() as u32).sum()
    }

    /// Starts `req` if sequences and KV room allow, evicting cached prompts (least
    /// recently used first) as needed. Gives the request back when it must wait: a job
    /// reserves its worst case up front, so a running job never runs out of KV; and a
    /// running job that shares [`MIN_SHARED`] more of its prompt than the cache does is
    /// waited for until it has prefilled them.
    pub fn admit(&mut self, req: Request<J, S>, ops: &mut Vec<KvOp>) -> Result<(), Request<J, S>> {
        let n = req.seqs.len();
        // The cached prompt sharing the longest prefix, if any. At least one prompt
        // token is always decoded again: its logits start the generation.
        let best = self
            .cache
            .iter()
            .enumerate()
            .map(|(i, c)| (i, common_prefix(&c.tokens, &req.tokens).min(req.tokens.len() - 1)))
            .filter(|&(_, lcp)| lcp > 0)
            .max_by_key(|&(_, lcp)| lcp);
        let cached = best.map_or(0, |(_, lcp)| lcp);
        // A running job whose prompt starts the same way (the same system prompt and
        // files, another question): its prompt cells are copied. While it has yet to
        // prefill the part they share, this request waits for it rather than prefill the
        // same tokens beside it.
        let running = self
            .jobs
            .iter()
            .filter(|j| self.limits.prompt_cache && !j.seqs[0].done)
            .map(|j| (j.seqs[0].id, common_prefix(&j.tokens, &req.tokens).min(req.tokens.len() - 1), j.prefilled))
            .max_by_key(|&(_, lcp, _)| lcp);
        if running.is_some_and(|(_, lcp, prefilled)| lcp >= cached + MIN_SHARED && prefilled < lcp) {
            return Err(req);
        }
        let shared = running.map(|(seq, lcp, prefilled)| (seq, lcp.min(prefilled))).filter(|&(_, lcp)| lcp > cached);
        let reused = shared.map_or(cached, |(_, lcp)| lcp);
        // Reused prompt cells stay in use by this job, so they count in its reservation.
        let need = req.cells();
        if self.free.len() + self.cache.len() < n || self.reserved + need > self.limits.n_ctx {
            return Err(req);
        }
        let mut primary = None;
        if let (Some((i, _)), None) = (best, shared) {
            let c = self.cache.swap_remove(i);
            ops.push(KvOp::Trim { seq: c.seq, from: reused as i32 });
            primary = Some(c.seq);
        }
        // Evict until the ids and cells fit; possible, as checked above.
        while self.free.len() + usize::from(primary.is_some()) < n
            || self.reserved + self.cached_cells() + need > self.limits.n_ctx
        {
            let Some(i) = self.cache.iter().enumerate().min_by_key(|(_, c)| c.used).map(|(i, _)| i) else {
                break;
            };
            let c = self.cache.swap_remove(i);
            ops.push(KvOp::Clear(c.seq));
            self.free.push(c.seq);
        }
        let mut ids: Vec<SeqId> = primary.into_iter().collect();
        while ids.len() < n {
            ids.push(self.free.pop().expect("checked: enough sequence ids"));
        }
        if let Some((src, lcp)) = shared {
            // A whole copy, then a trim: a split KV cache cannot copy part of a sequence.
            ops.push(KvOp::Copy { src, dst: ids[0] });
            ops.push(KvOp::Trim { seq: ids[0], from: lcp as i32 });
        }
        self.reserved += need;
        let pos = req.tokens.len() as i32;
        let seqs = req
            .seqs
            .into_iter()
            .zip(ids)
            .enumerate()
            .map(|(choice, (state, id))| Seq {
                id,
                choice: choice as u32,
                pos,
                next: None,
                logits: None,
                fed: Vec::new(),
                follows: (choice > 0).then_some(0),
                own_from: 0,
                draft: Vec::new(),
                kept: 0,
                done: false,
                state,
            })
            .collect();
        self.jobs.push(Job {
            tokens: req.tokens,
            max_new: req.max_new,
            prefilled: reused,
            reused,
            seqs,
            reserve: need,
            state: req.state,
        });
        Ok(())
    }

    /// Fills one batch: `add(token, pos, seq, wants_logits)`. Running sequences first (one
    /// token each; a follower shares its leader's), each followed by its draft where it
    /// has one and the batch room (a follower verifies its leader's draft on the leader's
    /// rows), then prompt chunks in arrival order within the remaining budget.
    pub fn plan(&mut self, mut add: impl FnMut(LlamaToken, i32, SeqId, bool)) {
        let running = self.jobs.iter().flat_map(|j| &j.seqs).filter(|s| s.next.is_some() && s.follows.is_none());
        let mut spare = (self.limits.n_batch as usize).saturating_sub(running.count());
        let mut n = 0usize;
        for job in &mut self.jobs {
            for s in job.seqs.iter_mut().filter(|s| !s.done) {
                let Some(token) = s.next.take() else {
                    s.draft.clear();
                    continue;
                };
                if s.follows.is_none() {
                    s.draft.truncate(spare);
                    spare -= s.draft.len();
                    add(token, s.pos, s.id, true);
                    s.logits = Some(n as i32);
                    n += 1;
                    for (k, &d) in s.draft.iter().enumerate() {
                        add(d, s.pos + 1 + k as i32, s.id, true);
                    }
                    n += s.draft.len();
                }
                s.fed.push(token);
                s.pos += 1;
            }
            for k in 0..job.seqs.len() {
                if let (Some(l), false) = (job.seqs[k].follows, job.seqs[k].done) {
                    job.seqs[k].logits = job.seqs[l].logits;
                    job.seqs[k].draft = job.seqs[l].draft.clone();
                }
            }
        }
        for job in &mut self.jobs {
            let budget = (self.limits.n_batch as usize).saturating_sub(n);
            if budget == 0 {
                break;
            }
            if !job.prefilling() {
                continue;
            }
            let len = job.tokens.len();
            let take = budget.min(len - job.prefilled);
            let primary = job.seqs[0].id;
            for p in job.prefilled..job.prefilled + take {
                add(job.tokens[p], p as i32, primary, p == len - 1);
            }
            n += take;
            job.prefilled += take;
            if !job.prefilling() {
                for s in &mut job.seqs {
                    s.logits = Some(n as i32 - 1);
                }
            }
        }
    }

    /// Marks a sequence finished. The primary sequence of a job is kept in the prompt
    /// cache (its prompt and what it generated); others are freed.
    pub fn finish(&mut self, job: usize, seq: usize, ops: &mut Vec<KvOp>) {
        let j = &mut self.jobs[job];
        let s = &mut j.seqs[seq];
        s.done = true;
        s.next = None;
        if seq == 0 && self.limits.prompt_cache {
            self.clock += 1;
            let mut tokens = j.tokens.clone();
            tokens.extend_from_slice(&s.fed);
            self.cache.push(Cached { seq: s.id, tokens, used: self.clock });
        } else {
            ops.push(KvOp::Clear(s.id));
            self.free.push(s.id);
        }
    }

    /// Drops a job whose caller went away; none of its KV is kept.
    pub fn cancel(&mut self, job: usize, ops: &mut Vec<KvOp>) -> Job<J, S> {
        let j = self.jobs.swap_remove(job);
        for s in j.seqs.iter().filter(|s| !s.done) {
            ops.push(KvOp::Clear(s.id));
            self.free.push(s.id);
        }
        self.reserved -= j.reserve;
        j
    }

    /// Removes jobs whose sequences are all done, returning them.
    pub fn retire(&mut self) -> Vec<Job<J, S>> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.jobs.len() {
            if self.jobs[i].seqs.iter().all(|s| s.done) {
                let j = self.jobs.swap_remove(i);
                self.reserved -= j.reserve;
                done.push(j);
            } else {
                i += 1;
            }
        }
        done
    }

    /// After a failed decode: every running sequence is cleared, the cache too (its KV
    /// may be in any state).
    pub fn fail_all(&mut self, ops: &mut Vec<KvOp>) -> Vec<Job<J, S>> {
        for c in self.cache.drain(..) {
            ops.push(KvOp::Clear(c.seq));
            self.free.push(c.seq);
        }
        let jobs: Vec<_> = self.jobs.drain(..).collect();
        for s in jobs.iter().flat_map(|j| &j.seqs).filter(|s| !s.done) {
            ops.push(KvOp::Clear(s.id));
            self.free.push(s.id);
        }
        self.reserved = 0;
        jobs
    }

    #[cfg(test)]
    fn cached_prompts(&self) -> Vec<usize> {
        self.cache.iter().map(|c| c.tokens.len()).collect()
    }
}

pub(super) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
