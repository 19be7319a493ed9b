//! What a task's evidence runs saw, kept for the rest of the task's run: a test or probe
//! run, by what its tree is made of ([`TreeId`]) and what ran on it. A tree seen before is
//! not run again: the next round's baseline on a workspace that has not changed, the
//! review's run of a one-step change (the winner's own), a candidate that wrote what
//! another did.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// What a tree is made of: the commit it starts at and the patches applied to it, in
/// order (an empty patch changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeId(u64);

impl TreeId {
    pub fn at(commit: &str) -> TreeId {
        TreeId(hash(&("commit", commit.trim())))
    }

    /// The tree after `patch`.
    pub fn then(self, patch: &str) -> TreeId {
        if patch.trim().is_empty() {
            return self;
        }
        TreeId(hash(&(self.0, patch)))
    }
}

fn hash(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Values by key, each made once; asks for a key being made wait for it.
pub struct Memo<V> {
    made: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Option<V>>>>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo { made: Mutex::new(HashMap::new()) }
    }
}

impl<V: Clone> Memo<V> {
    /// The value kept for `key` where `usable` takes it, else what `make` makes (then kept).
    pub async fn get_or_make<E, F: Future<Output = Result<V, E>>>(
        &self,
        key: impl Hash,
        usable: impl Fn(&V) -> bool,
        make: impl FnOnce() -> F,
    ) -> Result<V, E> {
        let slot = self.made.lock().expect("memo lock").entry(hash(&key)).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(kept) = slot.as_ref().filter(|v| usable(v)) {
            return Ok(kept.clone());
        }
        let made = make().await?;
        *slot = Some(made.clone());
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_tree_is_named_by_its_commit_and_the_patches_that_change_it() {
        let base = TreeId::at("abc\n");
        assert_eq!(base, TreeId::at("abc"));
        assert_eq!(base.then(""), base, "an empty patch changes nothing");
        assert_eq!(base.then("p").then("q"), base.then("p").then(" \n").then("q"));
        assert_ne!(base.then("p").then("q"), base.then("q").then("p"), "order counts");
        assert_ne!(base.then("p"), TreeId::at("abd").then("p"));
    }

    #[tokio::test]
    async fn a_key_is_made_once_and_again_only_where_the_kept_value_will_not_do() {
        let memo = Memo::<u32>::default();
        let made = AtomicUsize::new(0);
        let make = |v: u32| {
            made.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(v) }
        };
        let (a, b) =
            tokio::join!(memo.get_or_make("k", |_| true, || make(1)), memo.get_or_make("k", |_| true, || make(2)));
        assert_eq!((a, b), (Ok(1), Ok(1)), "the second ask waited for the first");
        assert_eq!(memo.get_or_make("other", |_| true, || make(3)).await, Ok(3));
        assert_eq!(memo.get_or_make("k", |&v| v > 1, || make(4)).await, Ok(4), "the kept 1 will not do");
        assert_eq!(memo.get_or_make("k", |_| true, || make(5)).await, Ok(4));
        assert_eq!(made.load(Ordering::SeqCst), 3);
        let failed = memo.get_or_make("bad", |_| true, || async { Err::<u32, _>("no") }).await;
        assert_eq!(failed, Err("no"));
        assert_eq!(memo.get_or_make("bad", |_| true, || make(6)).await, Ok(6), "a failure is not kept");
    }
}
