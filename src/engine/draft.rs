//! Draft-model speculation: a smaller model of the same vocabulary guesses the next
//! tokens of the sequences that decode alone, and the model being served verifies them
//! as it verifies prompt-lookup drafts (see `worker::step`), so the output is the same.
//!
//! The draft model has a context of its own, owned by the served model's worker, with a
//! sequence for each of the served context's sequences. It holds their tokens as far as
//! it has read them; the served context's KV operations are mirrored on it, so that it
//! never holds more than the served context reserved.

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::scheduler::{common_prefix, KvOp, SeqId};
use super::worker::Turns;

/// A draft ends before a token the draft model gives less than this probability: such a
/// token is likely rejected, and each drafted token costs a decode of the draft model.
const P_MIN: f32 = 0.6;

/// Tokens whose text may differ between two vocabularies that are otherwise one (control
/// tokens at the start), as llama.cpp's own check allows.
const CHECK_FROM: i32 = 5;
/// How far two vocabularies' sizes may differ (tokens added past the shared ones).
const MAX_SIZE_DIFFERENCE: i32 = 128;

/// Why a model cannot draft for another: their vocabularies differ.
pub(super) fn check_vocab(target: &LlamaModel, draft: &LlamaModel) -> Result<(), String> {
    let kind = |m: &LlamaModel| m.meta_val_str("tokenizer.ggml.model").unwrap_or_default();
    if kind(target) != kind(draft) {
        return Err(format!("tokenizer `{}` against `{}`", kind(draft), kind(target)));
    }
    let (vt, vd) = (target.vocab(), draft.vocab());
    let (nt, nd) = (vt.n_tokens(), vd.n_tokens());
    if (nt - nd).abs() > MAX_SIZE_DIFFERENCE {
        return Err(format!("{nd} tokens against {nt}"));
    }
    if vt.bos() != vd.bos() || vt.eos() != vd.eos() {
        return Err("other begin or end tokens".into());
    }
    for id in CHECK_FROM..nt.min(nd) {
        let token = LlamaToken(id);
        if vt.text(token) != vd.text(token) {
            let text = |v: &llama_cpp_2::vocab::LlamaVocab<'_>| {
                v.text(token).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default()
            };
            return Err(format!("token {id} is `{}` against `{}`", text(&vd), text(&vt)));
        }
    }
    Ok(())
}

/// What one sequence asks of the draft model.
pub(super) struct Want {
    pub seq: SeqId,
    /// The prompt, what the sequence generated, and the token it feeds next.
    pub history: Vec<LlamaToken>,
    /// The longest draft.
    pub max: usize,
}

pub(super) struct DraftModel {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    params: LlamaContextParams,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    /// Per sequence id, the tokens whose KV the context holds.
    held: Vec<Vec<LlamaToken>>,
}

impl DraftModel {
    /// A context on `model` made like the served model's (`params`), one sequence for each
    /// of its sequences.
    pub fn new(
        model: &'static LlamaModel,
        params: LlamaContextParams,
        n_batch: u32,
        n_seq: u32,
    ) -> Result<Self, String> {
        let ctx = model.new_context(super::backend::backend(), params.clone()).map_err(|e| e.to_string())?;
        Ok(DraftModel {
            model,
            ctx,
            params,
            batch: LlamaBatch::new(n_batch as usize, n_seq as i32),
            n_batch: n_batch as usize,
            held: vec![Vec::new(); n_seq as usize],
        })
    }

    /// Forgets everything (after a failed decode here, or a fault of the served context).
    pub fn reset(&mut self) {
        match self.model.new_context(super::backend::backend(), self.params.clone()) {
            Ok(ctx) => self.ctx = ctx,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a new draft context; clearing the old one");
                self.ctx.clear_kv_cache();
            }
        }
        self.held.iter_mut().for_each(Vec::clear);
    }

    /// Carries out a KV operation of the served context on the same sequences here.
    pub fn mirror(&mut self, op: &KvOp) {
        match *op {
            KvOp::Clear(seq) => self.trim(seq, 0),
            KvOp::Trim { seq, from } => self.trim(seq, from.max(0) as usize),
            KvOp::Copy { src, dst } => {
                self.trim(dst, 0);
                let _ = self.ctx.copy_kv_cache_seq(src, dst, None, None);
                self.held[dst as usize] = self.held[src as usize].clone();
            }
        }
    }

    fn trim(&mut self, seq: SeqId, from: usize) {
        let held = &mut self.held[seq as usize];
        if held.len() > from {
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), Some(from as u32), None);
            held.truncate(from);
        }
    }

    /// Greedy drafts for `wants`, decoded together: first what each sequence's history
    /// adds to what this context holds (in chunks of the batch size), then one token of
    /// every sequence still drafting per decode. Each draft is at most `max` tokens and
    /// ends before a token below [`P_MIN`].
    pub fn draft(&mut self, wants: &[Want], turn: &Turns) -> Result<Vec<Vec<LlamaToken>>, String> {
        let mut drafts = vec![Vec::new(); wants.len()];
        for w in wants {
            // The history's last token is always decoded again: its logits start the draft.
            let keep = common_prefix(&self.held[w.seq as usize], &w.history).min(w.history.len().saturating_sub(1));
            self.trim(w.seq, keep);
        }
        // Catching up: sequences whose history ends in this decode read their first token.
        let mut drafting = Vec::new();
        while let Some(ends) = self.catch_up(wants, turn)? {
            for (i, idx) in ends {
                if self.pick(idx, &mut drafts[i]) && drafts[i].len() < wants[i].max {
                    drafting.push(i);
                }
            }
        }
        while !drafting.is_empty() {
            self.batch.clear();
            for &i in &drafting {
                let (seq, token) = (wants[i].seq, *drafts[i].last().expect("drafting has a token"));
                let held = &mut self.held[seq as usize];
                self.batch.add(token, held.len() as i32, &[seq], true).map_err(|e| e.to_string())?;
                held.push(token);
            }
            self.decode(turn)?;
            let mut next = Vec::new();
            for (n, &i) in drafting.iter().enumerate() {
                if self.pick(n as i32, &mut drafts[i]) && drafts[i].len() < wants[i].max {
                    next.push(i);
                }
            }
            drafting = next;
        }
        Ok(drafts)
    }

    /// One decode of history not yet held, up to the batch size; the wants whose history
    /// it ends, with their logits' index. None when every history is held.
    fn catch_up(&mut self, wants: &[Want], turn: &Turns) -> Result<Option<Vec<(usize, i32)>>, String> {
        self.batch.clear();
        let mut ends = Vec::new();
        let mut n = 0usize;
        for (i, w) in wants.iter().enumerate() {
            let held = &mut self.held[w.seq as usize];
            if held.len() >= w.history.len() || n == self.n_batch {
                continue;
            }
            let take = (w.history.len() - held.len()).min(self.n_batch - n);
            for p in held.len()..held.len() + take {
                let last = p + 1 == w.history.len();
                self.batch.add(w.history[p], p as i32, &[w.seq], last).map_err(|e| e.to_string())?;
            }
            held.extend_from_slice(&w.history[held.len()..held.len() + take]);
            n += take;
            if held.len() == w.history.len() {
                ends.push((i, n as i32 - 1));
            }
        }
        if n == 0 {
            return Ok(None);
        }
        self.decode(turn)?;
        Ok(Some(ends))
    }

    fn decode(&mut self, turn: &Turns) -> Result<(), String> {
        let _turn = turn.take();
        self.ctx.decode(&mut self.batch).map_err(|e| e.to_string())
    }

    /// Appends the most likely token at logits `idx` to `draft` if the model gives it at
    /// least [`P_MIN`]; whether it did.
    fn pick(&self, idx: i32, draft: &mut Vec<LlamaToken>) -> bool {
        let logits = self.ctx.get_logits_ith(idx);
        let (best, top) =
            logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |acc, (i, &l)| if l > acc.1 { (i, l) } else { acc });
        let sum: f32 = logits.iter().map(|&l| (l - top).exp()).sum();
        if 1.0 / sum < P_MIN {
            return false;
        }
        draft.push(LlamaToken(best as i32));
        true
    }
}
