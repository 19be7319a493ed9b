//! Telling a tool that runs on a blocking thread to stop. The async caller holds a guard
//! that raises a flag when it is dropped; the tool's thread sees the flag through
//! [`stopped`], so tools keep their plain `fn(&Workspace, Args)` signature.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A guard that raises the flag when dropped.
    pub fn on_drop(&self) -> StopOnDrop {
        StopOnDrop(self.clone())
    }
}

pub struct StopOnDrop(Stop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Relaxed);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Stop>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread with `stop` as the flag [`stopped`] reads.
pub fn with<T>(stop: Stop, f: impl FnOnce() -> T) -> T {
    CURRENT.with(|c| *c.borrow_mut() = Some(stop));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = None);
    out
}

/// Whether the caller of the tool running on this thread has gone away.
pub fn stopped() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|s| s.0.load(Ordering::Relaxed)))
}
