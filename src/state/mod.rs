//! Shared state behind a trait shaped like the Redis commands quorum needs. The default
//! backend is an embedded redb file; `redis://` locations use a real Redis server so that
//! several instances can share tasks. Both pass one behaviour suite (`tests/it/state.rs`).

mod broker;
mod embedded;
mod error;
mod location;
mod redis;
pub mod task;
mod tasks;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

pub use self::embedded::EmbeddedStore;
pub use self::error::StateError;
pub use self::location::StateLocation;
pub use self::redis::RedisStore;
pub use self::task::{Stage, Task, TaskEvent, TaskInput, TaskStatus, TaskSummary};
pub use self::tasks::{Audit, Cancel, TaskStore};

pub type Result<T> = std::result::Result<T, StateError>;

/// Messages published on a channel after the subscription was made, in order.
pub type Subscription = Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>;

/// Options of SET, as in Redis: a time to live (`PX`) and set-if-absent (`NX`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetOptions {
    pub ttl: Option<Duration>,
    pub only_if_absent: bool,
}

/// What TTL/PTTL report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (Redis: -2).
    Missing,
    /// The key exists without an expiry (Redis: -1).
    Persistent,
    Expires(Duration),
}

/// The Redis semantics quorum relies on. Keys hold one type each (string, hash or list);
/// using a key as another type fails with [`StateError::WrongType`]. Expired keys are
/// absent to every command.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// `redb` or `redis`, for logs and `/health`.
    fn backend(&self) -> &'static str;
    /// Whether this process is the only one that can write the store (the embedded file
    /// is locked), so anything marked running by an earlier process is known to be dead.
    fn exclusive(&self) -> bool;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Returns false when `only_if_absent` was set and the key existed. A plain SET clears
    /// any expiry the key had, as in Redis.
    async fn set(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool>;
    /// Deletes a key of any type; returns whether it existed.
    async fn del(&self, key: &str) -> Result<bool>;
    async fn exists(&self, key: &str) -> Result<bool>;
    /// Adds one to a decimal integer string (absent counts as 0) and returns the result.
    async fn incr(&self, key: &str) -> Result<i64>;

    /// Returns how many of the fields are new.
    async fn hset(&self, key: &str, fields: &[(&str, &[u8])]) -> Result<u64>;
    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>>;
    async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, Vec<u8>>>;
    /// Returns how many fields were removed; a hash left empty is deleted.
    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64>;

    /// Appends and returns the new length.
    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<u64>;
    /// Inclusive range; negative indexes count from the end, as in Redis.
    async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Vec<u8>>>;
    async fn llen(&self, key: &str) -> Result<u64>;

    /// Returns false when the key does not exist.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;
    async fn ttl(&self, key: &str) -> Result<Ttl>;
    /// Every live key that starts with `prefix`, sorted.
    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>>;

    /// Returns how many subscribers received the message.
    async fn publish(&self, channel: &str, message: &[u8]) -> Result<u64>;
    /// Active once this returns: every later publish on `channel` is delivered.
    async fn subscribe(&self, channel: &str) -> Result<Subscription>;
}

/// Opens the store at `location`: the redb file (created if absent) or a Redis server.
pub async fn open(location: &StateLocation) -> Result<Arc<dyn StateStore>> {
    Ok(match location {
        StateLocation::File(path) => Arc::new(EmbeddedStore::open(path.clone()).await?),
        StateLocation::Redis(url) => Arc::new(RedisStore::connect(url).await?),
    })
}

/// Unix milliseconds, the unit of expiries and task times.
pub(crate) fn now_ms() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Redis's LRANGE index rule over a list of `len` items: the half-open range to return,
/// or `None` when it is empty.
pub(crate) fn list_range(len: u64, start: i64, stop: i64) -> Option<(u64, u64)> {
    let len = len as i64;
    let resolve = |i: i64| if i < 0 { len + i } else { i };
    let start = resolve(start).max(0);
    let stop = resolve(stop).min(len - 1);
    (start <= stop).then_some((start as u64, stop as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::list_range;

    #[test]
    fn list_range_follows_redis() {
        assert_eq!(list_range(5, 0, -1), Some((0, 5)));
        assert_eq!(list_range(5, 1, 2), Some((1, 3)));
        assert_eq!(list_range(5, -2, -1), Some((3, 5)));
        assert_eq!(list_range(5, 3, 100), Some((3, 5)));
        assert_eq!(list_range(5, -100, 0), Some((0, 1)));
        assert_eq!(list_range(5, 4, 2), None);
        assert_eq!(list_range(0, 0, -1), None);
        assert_eq!(list_range(5, 5, 9), None);
    }
}
