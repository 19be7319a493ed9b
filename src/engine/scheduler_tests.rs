//! Unit tests of the scheduler's decisions, without llama.cpp.

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
fn plan(s: &mut Scheduler<(), ()>) -> Vec<(i32, i32, SeqId, bool)> {
    let mut entries = Vec::new();
    s.plan(|t, pos, seq, logits| entries.push((t.0, pos, seq, logits)));
    entries
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
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(0, 0, 0, false), (1, 1, 0, false), (2, 2, 0, true)]);
    assert!(!s.jobs[0].prefilling());
    s.jobs[0].seqs[0].next = Some(LlamaToken(77)); // sampled
    s.admit(req(toks(100..120), 1, 10), &mut ops).unwrap();
    let entries = plan(&mut s);
    // One generated token first, then 7 of the 20 prompt tokens; no logits yet.
    assert_eq!(entries[0], (77, 3, 0, true));
    assert_eq!(entries.len(), 8);
    assert!(entries[1..].iter().all(|e| e.2 == 1 && !e.3));
    assert_eq!((entries[1].1, entries[7].1), (0, 6));
    assert!(s.jobs[1].prefilling());
    assert_eq!(s.jobs[1].prefilled, 7);
    // The rest of the prompt comes in later steps; its last token asks for logits.
    plan(&mut s);
    let entries = plan(&mut s);
    assert_eq!(entries.last(), Some(&(119, 19, 1, true)));
    assert!(!s.jobs[1].prefilling());
    assert_eq!(s.jobs[1].seqs[0].logits, Some(entries.len() as i32 - 1));
}

/// A job of `n` samples whose 5-token prompt is prefilled (nothing sampled yet).
fn prefilled_fork(n: usize) -> Scheduler<(), ()> {
    let mut s = sched(1000, 64, 8, false);
    s.admit(req(toks(0..5), n, 10), &mut vec![]).unwrap();
    plan(&mut s);
    s
}

fn draw(s: &mut Scheduler<(), ()>, tokens: &[Option<i32>]) {
    for (q, t) in s.jobs[0].seqs.iter_mut().zip(tokens) {
        q.next = t.map(LlamaToken);
    }
}

#[test]
fn n_samples_prefill_once_and_share_one_row_while_they_agree() {
    let mut s = sched(1000, 64, 8, false);
    let mut ops = vec![];
    s.admit(req(toks(0..5), 3, 10), &mut ops).unwrap();
    let entries = plan(&mut s);
    assert_eq!(entries.len(), 5, "the prompt is decoded once");
    assert!(!s.jobs[0].prefilling());
    let primary = s.jobs[0].seqs[0].id;
    assert!(entries.iter().all(|e| e.2 == primary));
    assert!(s.jobs[0].seqs.iter().all(|q| q.logits == Some(4) && q.pos == 5));

    draw(&mut s, &[Some(9), Some(9), Some(9)]);
    s.jobs[0].regroup(&mut ops);
    assert!(ops.is_empty(), "the same token drawn: nothing to copy");
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(9, 5, primary, true)], "one row for three samples");
    assert!(s.jobs[0].seqs.iter().all(|q| q.logits == Some(0) && q.pos == 6 && q.fed == toks(9..10)));
    assert_eq!(s.usage().kv_cells, 6);
}

#[test]
fn a_sample_that_draws_another_token_gets_its_own_copy_of_the_kv() {
    let mut s = prefilled_fork(3);
    let mut ops = vec![];
    draw(&mut s, &[Some(9), Some(8), Some(8)]);
    s.jobs[0].regroup(&mut ops);
    let id: Vec<SeqId> = s.jobs[0].seqs.iter().map(|q| q.id).collect();
    assert_eq!(ops, vec![KvOp::Copy { src: id[0], dst: id[1] }], "one copy for the two that drew 8");
    assert_eq!(s.jobs[0].seqs.iter().map(|q| q.follows).collect::<Vec<_>>(), vec![None, None, Some(1)]);
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(9, 5, id[0], true), (8, 5, id[1], true)]);
    assert_eq!(s.jobs[0].seqs[2].logits, Some(1), "the third shares the second's row");
    assert_eq!(s.usage().kv_cells, 5 + 1 + 1, "the prompt once, one cell each for 9 and 8");

    // Later they part again: the third follows the second, so it copies the second's KV.
    ops.clear();
    draw(&mut s, &[Some(1), Some(2), Some(3)]);
    s.jobs[0].regroup(&mut ops);
    assert_eq!(ops, vec![KvOp::Copy { src: id[1], dst: id[2] }]);
}

#[test]
fn followers_of_a_sequence_that_stops_copy_its_kv_before_it_is_cleared() {
    let mut s = prefilled_fork(3);
    let mut ops = vec![];
    draw(&mut s, &[None, Some(7), Some(7)]); // the primary drew end of generation
    s.jobs[0].regroup(&mut ops);
    s.finish(0, 0, &mut ops);
    let id: Vec<SeqId> = s.jobs[0].seqs.iter().map(|q| q.id).collect();
    assert_eq!(ops, vec![KvOp::Copy { src: id[0], dst: id[1] }, KvOp::Clear(id[0])]);
    assert_eq!(s.jobs[0].seqs[2].follows, Some(1));
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(7, 5, id[1], true)]);
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
    let entries = plan(&mut s);
    assert_eq!(entries.iter().map(|e| e.1).collect::<Vec<_>>(), vec![6, 7, 8]);
    assert!(s.cached_prompts().is_empty());
}

#[test]
fn a_running_jobs_prompt_is_shared_and_waited_for_while_it_prefills() {
    let mut s = sched(1000, 16, 8, true);
    let mut ops = vec![];
    s.admit(req(toks(0..40), 5, 8), &mut ops).unwrap();
    let (first, _) = (s.jobs[0].seqs[0].id, plan(&mut s));
    // Shares 30 tokens, of which 16 are prefilled: it waits rather than prefill them again.
    let mut next = toks(0..30);
    next.extend(toks(500..504));
    let next = s.admit(req(next, 1, 8), &mut ops).unwrap_err();
    assert_eq!(s.jobs.len(), 1);
    plan(&mut s);
    plan(&mut s);
    assert!(!s.jobs[0].prefilling());
    s.admit(next, &mut ops).unwrap();
    let id = s.jobs[1].seqs[0].id;
    assert_ne!(id, first);
    assert_eq!(ops, vec![KvOp::Copy { src: first, dst: id }, KvOp::Trim { seq: id, from: 30 }]);
    assert_eq!((s.jobs[1].reused, s.jobs[1].prefilled), (30, 30));
    // Only its own 4 tokens are prefilled, from position 30.
    let own: Vec<_> = plan(&mut s).into_iter().filter(|e| e.2 == id).map(|e| e.1).collect();
    assert_eq!(own, vec![30, 31, 32, 33]);
}

#[test]
fn a_short_shared_start_is_not_waited_for_and_the_cache_off_shares_nothing() {
    for cache in [true, false] {
        let mut s = sched(1000, 16, 4, cache);
        let mut ops = vec![];
        s.admit(req(toks(0..40), 1, 8), &mut ops).unwrap();
        // 10 tokens in common, none prefilled yet: it starts at once, from nothing.
        let mut next = toks(0..10);
        next.extend(toks(500..520));
        s.admit(req(next, 1, 8), &mut ops).unwrap();
        assert_eq!(s.jobs[1].reused, 0);
        assert!(ops.is_empty());
        // The cache off: a long shared start is neither waited for nor copied.
        if !cache {
            s.admit(req(toks(0..39), 1, 8), &mut ops).unwrap();
            assert_eq!((s.jobs[2].reused, ops.len()), (0, 0));
        }
    }
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
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(7, 7, s.jobs[0].seqs[0].id, true)]);
    assert!(!s.jobs[0].prefilling());
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

#[test]
fn a_draft_follows_its_token_with_logits_and_rejected_cells_are_trimmed() {
    let mut s = sched(1000, 64, 4, false);
    let mut ops = vec![];
    s.admit(req(toks(0..3), 1, 20), &mut ops).unwrap();
    plan(&mut s);
    let seq = &mut s.jobs[0].seqs[0];
    seq.next = Some(LlamaToken(50));
    seq.draft = toks(60..63);
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(50, 3, 0, true), (60, 4, 0, true), (61, 5, 0, true), (62, 6, 0, true)]);
    let seq = &mut s.jobs[0].seqs[0];
    assert_eq!(seq.logits, Some(0));
    // The sampler drew 60 then 61, then something else: two kept, one cell removed.
    assert!(seq.keep_drafted(LlamaToken(60)));
    assert!(seq.keep_drafted(LlamaToken(61)));
    assert!(!seq.keep_drafted(LlamaToken(99)));
    assert_eq!(seq.end_draft(&mut ops), (3, 2));
    assert_eq!(ops, vec![KvOp::Trim { seq: 0, from: 6 }]);
    assert_eq!(seq.fed, toks(0..0).into_iter().chain([50, 60, 61].map(LlamaToken)).collect::<Vec<_>>());
    assert_eq!(seq.pos, 6, "the next token takes the first rejected position");
    // A draft kept whole leaves nothing to trim.
    seq.next = Some(LlamaToken(99));
    seq.draft = toks(70..71);
    plan(&mut s);
    let seq = &mut s.jobs[0].seqs[0];
    assert!(seq.keep_drafted(LlamaToken(70)));
    ops.clear();
    assert_eq!(seq.end_draft(&mut ops), (1, 1));
    assert!(ops.is_empty());
    assert_eq!(seq.pos, 8);
}

#[test]
fn a_leaders_draft_is_verified_for_its_followers_and_cut_to_the_batch() {
    // Two samples still sharing: the leader's draft goes on its rows, the follower's own
    // draft is replaced by the leader's, which it verifies from the same logits.
    let mut s = prefilled_fork(2);
    for (q, first) in s.jobs[0].seqs.iter_mut().zip([1, 40]) {
        q.next = Some(LlamaToken(7));
        q.draft = toks(first..first + 3);
    }
    let entries = plan(&mut s);
    let id = s.jobs[0].seqs[0].id;
    assert_eq!(entries, vec![(7, 5, id, true), (1, 6, id, true), (2, 7, id, true), (3, 8, id, true)]);
    assert!(s.jobs[0].seqs.iter().all(|q| q.draft == toks(1..4) && q.logits == Some(0)));
    // Alone, with a batch of 4: its token and 3 of its 10 drafted tokens.
    let mut s = sched(1000, 4, 4, false);
    s.admit(req(toks(0..2), 1, 20), &mut vec![]).unwrap();
    plan(&mut s);
    s.jobs[0].seqs[0].next = Some(LlamaToken(7));
    s.jobs[0].seqs[0].draft = toks(10..20);
    assert_eq!(plan(&mut s).len(), 4);
    assert_eq!(s.jobs[0].seqs[0].draft, toks(10..13));
}

#[test]
fn a_follower_that_keeps_more_of_the_draft_copies_the_drafted_cells_before_they_are_trimmed() {
    let mut s = prefilled_fork(3);
    draw(&mut s, &[Some(7), Some(7), Some(7)]);
    s.jobs[0].seqs[0].draft = toks(1..4);
    plan(&mut s);
    // Drafted 1 2 3 at positions 6 to 8. The leader and the third keep 1 and draw 9; the
    // second keeps all three and draws 5.
    let draws: [&[i32]; 3] = [&[1, 9], &[1, 2, 3, 5], &[1, 9]];
    let (mut ops, mut trims) = (vec![], vec![]);
    for (q, drawn) in s.jobs[0].seqs.iter_mut().zip(draws) {
        let (last, kept) = drawn.split_last().unwrap();
        assert!(kept.iter().all(|&t| q.keep_drafted(LlamaToken(t))));
        assert!(!q.keep_drafted(LlamaToken(*last)));
        q.next = Some(LlamaToken(*last));
        q.end_draft(&mut trims);
    }
    s.jobs[0].regroup(&mut ops);
    ops.append(&mut trims);
    let id: Vec<SeqId> = s.jobs[0].seqs.iter().map(|q| q.id).collect();
    // The copy comes first, with every drafted cell; then the leader drops what it did not
    // keep (the third's trim is of its own empty sequence: it still follows the leader).
    assert_eq!(
        ops,
        vec![
            KvOp::Copy { src: id[0], dst: id[1] },
            KvOp::Trim { seq: id[0], from: 7 },
            KvOp::Trim { seq: id[2], from: 7 },
        ]
    );
    let follows: Vec<_> = s.jobs[0].seqs.iter().map(|q| q.follows).collect();
    assert_eq!(follows, vec![None, None, Some(0)]);
    assert_eq!(s.jobs[0].seqs.iter().map(|q| q.pos).collect::<Vec<_>>(), vec![7, 9, 7]);
    let entries = plan(&mut s);
    assert_eq!(entries, vec![(9, 7, id[0], true), (5, 9, id[1], true)]);
}
