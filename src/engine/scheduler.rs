//! Continuous-batching decisions for one context, as pure logic (no FFI), so that
//! admission, chunked prefill, forking and prompt-cache eviction are unit-tested without
//! llama.cpp. The worker executes the [`KvOp`]s it returns and does the sampling.
//!
//! Each step decodes one token of every running sequence plus a bounded chunk of pending
//! prompt tokens. A job asking for `n` samples is prefilled once into its primary
//! sequence, whose KV is then copied to the others. A finished job's primary sequence
//! stays in the prompt cache (least recently used goes first) so that a later prompt
//! sharing its prefix only prefills the rest.

use llama_cpp_2::token::LlamaToken;

pub type SeqId = i32;

/// KV-cache work the worker must carry out, in order, before the next decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Forget a sequence entirely.
    Clear(SeqId),
    /// Forget a sequence's positions from `from` on.
    Trim { seq: SeqId, from: i32 },
    /// Share `src`'s KV with `dst` (after a prefill, for forks).
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
    pub done: bool,
    pub state: S,
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
            .map(|j| j.prefilled as u32 + j.seqs.iter().map(|s| s.fed.len() as u32).sum::<u32>())
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
    /// reserves its worst case up front, so a running job never runs out of KV.
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
        let reused = best.map_or(0, |(_, lcp)| lcp);
        // Reused prompt cells stay in use by this job, so they count in its reservation.
        let need = req.cells();
        if self.free.len() + self.cache.len() < n || self.reserved + need > self.limits.n_ctx {
            return Err(req);
        }
        let mut primary = None;
        if let Some((i, _)) = best {
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
    /// token each), then prompt chunks in arrival order within the remaining budget.
    /// Returns the batch size and the jobs whose prompt it completes.
    pub fn plan(&mut self, mut add: impl FnMut(LlamaToken, i32, SeqId, bool)) -> (usize, Vec<usize>) {
        let mut n = 0usize;
        let mut prefilled = Vec::new();
        for job in &mut self.jobs {
            for s in job.seqs.iter_mut().filter(|s| !s.done) {
                if let Some(token) = s.next.take() {
                    add(token, s.pos, s.id, true);
                    s.logits = Some(n as i32);
                    s.fed.push(token);
                    s.pos += 1;
                    n += 1;
                }
            }
        }
        for (i, job) in self.jobs.iter_mut().enumerate() {
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
                prefilled.push(i);
            }
        }
        (n, prefilled)
    }

    /// KV copies for jobs whose prompt was just decoded (call after the decode): the
    /// forked samples share the primary sequence's prompt.
    pub fn forks(&self, prefilled: &[usize], ops: &mut Vec<KvOp>) {
        for job in prefilled.iter().map(|&i| &self.jobs[i]) {
            let primary = job.seqs[0].id;
            for s in &job.seqs[1..] {
                ops.push(KvOp::Copy { src: primary, dst: s.id });
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

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(range: std::ops::Range<i32>) -> Vec<LlamaToken> {
        range.map(LlamaToken).collect()
    }

    fn req(tokens: Vec<LlamaToken>, n: usize, max_new: u32) -> Request<(), ()> {
        Request { tokens, max_new, seqs: vec![(); n], state: () }
    }

    fn sched(n_ctx: u32, n_batch: u32, n_seq: u32, prompt_cache: bool) -> Scheduler<(), ()> {
        Scheduler::new(Limits { n_ctx, n_batch, n_seq, prompt_cache })
    }

    /// Plans a batch and returns its `(token, pos, seq, logits)` entries.
    fn plan(s: &mut Scheduler<(), ()>) -> (Vec<(i32, i32, SeqId, bool)>, Vec<usize>) {
        let mut entries = Vec::new();
        let (_, prefilled) = s.plan(|t, pos, seq, logits| entries.push((t.0, pos, seq, logits)));
        (entries, prefilled)
    }

    #[test]
    fn a_job_waits_for_free_sequences() {
        let mut s = sched(1000, 64, 2, false);
        let mut ops = vec![];
        assert!(s.admit(req(toks(0..4), 2, 8), &mut ops).is_ok());
        assert!(s.admit(req(toks(0..4), 1, 8), &mut ops).is_err(), "both sequence ids are taken");
        for i in 0..2 {
            s.finish(0, i, &mut ops);
        }
        assert_eq!(s.retire().len(), 1);
        assert!(s.admit(req(toks(0..4), 1, 8), &mut ops).is_ok());
    }

    #[test]
    fn a_job_waits_for_kv_room_and_reserves_its_worst_case() {
        let mut s = sched(100, 64, 4, false);
        let mut ops = vec![];
        assert!(s.admit(req(toks(0..50), 1, 40), &mut ops).is_ok()); // 90 cells
        assert!(s.admit(req(toks(0..10), 1, 11), &mut ops).is_err(), "21 more cells do not fit in 100");
        assert!(s.admit(req(toks(0..5), 1, 5), &mut ops).is_ok(), "10 more cells do");
        let job = s.cancel(0, &mut ops);
        assert_eq!(job.tokens.len(), 50);
        assert!(s.admit(req(toks(0..10), 1, 11), &mut ops).is_ok(), "room is back after a cancel");
    }

    #[test]
    fn prefill_is_chunked_behind_running_sequences() {
        let mut s = sched(1000, 8, 4, false);
        let mut ops = vec![];
        s.admit(req(toks(0..3), 1, 10), &mut ops).unwrap();
        let (entries, prefilled) = plan(&mut s);
        assert_eq!(entries, vec![(0, 0, 0, false), (1, 1, 0, false), (2, 2, 0, true)]);
        assert_eq!(prefilled, vec![0]);
        s.jobs[0].seqs[0].next = Some(LlamaToken(77)); // sampled
        s.admit(req(toks(100..120), 1, 10), &mut ops).unwrap();
        let (entries, prefilled) = plan(&mut s);
        // One generated token first, then 7 of the 20 prompt tokens; no logits yet.
        assert_eq!(entries[0], (77, 3, 0, true));
        assert_eq!(entries.len(), 8);
        assert!(entries[1..].iter().all(|e| e.2 == 1 && !e.3));
        assert_eq!((entries[1].1, entries[7].1), (0, 6));
        assert!(prefilled.is_empty());
        assert_eq!(s.jobs[1].prefilled, 7);
        // The rest of the prompt comes in later steps; its last token asks for logits.
        plan(&mut s);
        let (entries, prefilled) = plan(&mut s);
        assert_eq!(entries.last(), Some(&(119, 19, 1, true)));
        assert_eq!(prefilled, vec![1]);
        assert_eq!(s.jobs[1].seqs[0].logits, Some(entries.len() as i32 - 1));
    }

    #[test]
    fn n_samples_prefill_once_then_fork() {
        let mut s = sched(1000, 64, 8, false);
        let mut ops = vec![];
        s.admit(req(toks(0..5), 3, 10), &mut ops).unwrap();
        let (entries, prefilled) = plan(&mut s);
        assert_eq!(entries.len(), 5, "the prompt is decoded once");
        let primary = s.jobs[0].seqs[0].id;
        assert!(entries.iter().all(|e| e.2 == primary));
        s.forks(&prefilled, &mut ops);
        let others: Vec<SeqId> = s.jobs[0].seqs[1..].iter().map(|q| q.id).collect();
        assert_eq!(ops, others.iter().map(|&dst| KvOp::Copy { src: primary, dst }).collect::<Vec<_>>());
        assert!(s.jobs[0].seqs.iter().all(|q| q.logits == Some(4) && q.pos == 5));
    }

    #[test]
    fn a_cached_prompt_prefix_is_reused() {
        let mut s = sched(1000, 64, 4, true);
        let mut ops = vec![];
        s.admit(req(toks(0..10), 1, 4), &mut ops).unwrap();
        plan(&mut s);
        s.jobs[0].seqs[0].next = Some(LlamaToken(500));
        plan(&mut s); // feeds the generated token
        let first = s.jobs[0].seqs[0].id;
        s.finish(0, 0, &mut ops);
        s.retire();
        assert_eq!(s.cached_prompts(), vec![11], "prompt + the fed token");
        assert!(ops.is_empty(), "the primary sequence is kept, not cleared");

        // Shares 6 tokens: only the rest is prefilled, into the same sequence.
        let mut next = toks(0..6);
        next.extend(toks(50..53));
        s.admit(req(next, 1, 4), &mut ops).unwrap();
        assert_eq!(ops, vec![KvOp::Trim { seq: first, from: 6 }]);
        assert_eq!((s.jobs[0].reused, s.jobs[0].prefilled), (6, 6));
        let (entries, _) = plan(&mut s);
        assert_eq!(entries.iter().map(|e| e.1).collect::<Vec<_>>(), vec![6, 7, 8]);
        assert!(s.cached_prompts().is_empty());
    }

    #[test]
    fn an_identical_prompt_still_decodes_its_last_token() {
        let mut s = sched(1000, 64, 4, true);
        let mut ops = vec![];
        s.admit(req(toks(0..8), 1, 4), &mut ops).unwrap();
        plan(&mut s);
        s.finish(0, 0, &mut ops);
        s.retire();
        s.admit(req(toks(0..8), 1, 4), &mut ops).unwrap();
        assert_eq!(s.jobs[0].reused, 7);
        let (entries, prefilled) = plan(&mut s);
        assert_eq!(entries, vec![(7, 7, s.jobs[0].seqs[0].id, true)]);
        assert_eq!(prefilled, vec![0]);
    }

    #[test]
    fn the_least_recently_used_prompt_is_evicted_for_ids_and_for_cells() {
        let mut s = sched(100, 64, 2, true);
        let mut ops = vec![];
        for base in [0, 1000] {
            s.admit(req(toks(base..base + 30), 1, 5), &mut ops).unwrap();
            plan(&mut s);
            s.finish(0, 0, &mut ops);
            s.retire();
        }
        assert_eq!(s.cached_prompts(), vec![30, 30]);
        // Needs one id: both are cached, so the older entry goes.
        s.admit(req(toks(5000..5010), 1, 5), &mut ops).unwrap();
        assert_eq!(ops.len(), 1);
        assert!(matches!(ops[0], KvOp::Clear(_)));
        assert_eq!(s.cached_prompts(), vec![30]);
        s.cancel(0, &mut ops);
        ops.clear();
        // Needs 90 of 100 cells: the remaining 30 cached cells must go too.
        s.admit(req(toks(7000..7050), 1, 40), &mut ops).unwrap();
        assert_eq!(ops.len(), 1);
        assert!(s.cached_prompts().is_empty());
    }

    #[test]
    fn with_the_cache_off_finished_sequences_are_cleared() {
        let mut s = sched(1000, 64, 4, false);
        let mut ops = vec![];
        s.admit(req(toks(0..8), 2, 4), &mut ops).unwrap();
        plan(&mut s);
        s.finish(0, 1, &mut ops);
        s.finish(0, 0, &mut ops);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|op| matches!(op, KvOp::Clear(_))));
        assert_eq!(s.retire().len(), 1);
        assert_eq!(s.usage(), Usage { running_seqs: 0, kv_cells: 0, cached_seqs: 0 });
    }
}
