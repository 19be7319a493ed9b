//! The default backend: one redb file. Every write command is one ACID transaction
//! (redb's default durability: committed means fsynced). redb blocks, so each command runs
//! on tokio's blocking pool. Expired keys are invisible to reads, removed by the next write
//! that touches them, and purged in the background.

mod layout;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    WriteTransaction,
};

use self::layout::{err, read_meta, Kind, Meta, Tables, HASHES, LISTS, META, STRINGS};
use super::broker::Broker;
use super::error::MOVE_ASIDE;
use super::{list_range, now_ms, Result, SetOptions, StateError, StateStore, Subscription, Ttl};

/// How often expired keys are purged from the file.
const PURGE_EVERY: Duration = Duration::from_secs(10);

enum Db {
    Writer(Database),
    Reader(ReadOnlyDatabase),
}

struct Inner {
    db: Db,
    path: PathBuf,
    broker: Broker,
}

impl Inner {
    fn err(&self, e: impl std::fmt::Display) -> StateError {
        err(&self.path)(e)
    }

    fn begin_read(&self) -> Result<ReadTransaction> {
        match &self.db {
            Db::Writer(db) => db.begin_read(),
            Db::Reader(db) => db.begin_read(),
        }
        .map_err(|e| self.err(e))
    }

    fn begin_write(&self) -> Result<WriteTransaction> {
        match &self.db {
            Db::Writer(db) => db.begin_write().map_err(|e| self.err(e)),
            Db::Reader(_) => Err(self.err("opened read-only")),
        }
    }
}

/// A cheap handle; clones share the file.
#[derive(Clone)]
pub struct EmbeddedStore(Arc<Inner>);

impl EmbeddedStore {
    /// Opens or creates the file for writing, repairing it if the last writer died. Only
    /// one process may write it; others may read it with [`EmbeddedStore::open_read_only`].
    pub async fn open(path: PathBuf) -> Result<EmbeddedStore> {
        let store = tokio::task::spawn_blocking(move || open_writer(&path)).await.expect("open task panicked")?;
        let weak = Arc::downgrade(&store.0);
        tokio::spawn(purge_loop(weak));
        Ok(store)
    }

    /// Reads a file that a running server may be writing, following its commits.
    pub async fn open_read_only(path: PathBuf) -> Result<EmbeddedStore> {
        tokio::task::spawn_blocking(move || {
            let db = redb::Builder::new()
                .set_concurrency_mode(ConcurrencyMode::SingleWriter)
                .open_read_only(&path)
                .map_err(|e| open_error(&path, e))?;
            Ok(EmbeddedStore(Arc::new(Inner { db: Db::Reader(db), path, broker: Broker::default() })))
        })
        .await
        .expect("open task panicked")
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Removes every expired key now; returns how many. Also runs every few seconds.
    pub async fn purge_expired(&self) -> Result<u64> {
        self.write(|t, now| {
            let mut due = Vec::new();
            for entry in t.expiries.range::<(u64, &str)>(..(now + 1, "")).map_err(err(t.path))? {
                let (key, _) = entry.map_err(err(t.path))?;
                due.push(key.value().1.to_string());
            }
            let mut purged = 0;
            for key in due {
                // `live` removes the key when it has expired.
                if t.live(&key, now)?.is_none() {
                    purged += 1;
                }
            }
            Ok(purged)
        })
        .await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tables<'_>, u64) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let txn = inner.begin_write()?;
            let out = {
                let mut tables = Tables::open(&txn, &inner.path)?;
                f(&mut tables, now_ms())?
            };
            // On an error above the transaction is dropped, so nothing of it is written.
            txn.commit().map_err(|e| inner.err(e))?;
            Ok(out)
        })
        .await
        .expect("state write task panicked")
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction, &Inner, u64) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let txn = inner.begin_read()?;
            f(&txn, &inner, now_ms())
        })
        .await
        .expect("state read task panicked")
    }
}

fn open_writer(path: &Path) -> Result<EmbeddedStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StateError::Open {
            path: path.to_path_buf(),
            reason: format!("cannot create directory {}: {e}", dir.display()),
            hint: "Pass --state with a writable path",
        })?;
    }
    // A damaged file must come back as an error, never a panic in the server's start-up.
    let shown = path.display().to_string();
    let warned = std::sync::atomic::AtomicBool::new(false);
    let opened = std::panic::catch_unwind(|| {
        redb::Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .set_repair_callback(move |_| {
                // Called with each step of the repair's progress; once is enough.
                if !warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(file = %shown, "the state file was not closed cleanly; repairing it (the last writes may be lost)");
                }
            })
            .create(path)
    });
    let db = match opened {
        Ok(result) => result.map_err(|e| open_error(path, e))?,
        Err(_) => {
            return Err(StateError::Open {
                path: path.to_path_buf(),
                reason: "the file is damaged".into(),
                hint: MOVE_ASIDE,
            })
        }
    };
    let inner = Inner { db: Db::Writer(db), path: path.to_path_buf(), broker: Broker::default() };
    // Create every table once so that read transactions can always open them.
    let txn = inner.begin_write()?;
    Tables::open(&txn, &inner.path)?;
    txn.commit().map_err(|e| inner.err(e))?;
    Ok(EmbeddedStore(Arc::new(inner)))
}

fn open_error(path: &Path, e: DatabaseError) -> StateError {
    let open = |reason: String, hint| StateError::Open { path: path.to_path_buf(), reason, hint };
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StateError::InUse(path.to_path_buf())
        }
        DatabaseError::RepairAborted => open(
            "it was not closed cleanly and cannot be repaired read-only".into(),
            "Start `quorum serve` once (it repairs the file), then retry",
        ),
        DatabaseError::UpgradeRequired(v) => {
            open(format!("it was written in an older format (version {v})"), MOVE_ASIDE)
        }
        DatabaseError::Storage(redb::StorageError::Io(io)) if io.kind() == std::io::ErrorKind::NotFound => {
            open("it does not exist".into(), "Start `quorum serve` first, or pass --state with an existing file")
        }
        DatabaseError::Storage(redb::StorageError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            open(format!("it is not a redb state file ({io})"), MOVE_ASIDE)
        }
        DatabaseError::Storage(redb::StorageError::Io(io)) => open(
            io.to_string(),
            "Check that the path is a file you may read and write, or pass --state with another path",
        ),
        other => open(format!("{other}"), MOVE_ASIDE),
    }
}

async fn purge_loop(store: Weak<Inner>) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = store.upgrade() else { return };
        match EmbeddedStore(inner).purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "purged expired state keys"),
            Err(e) => tracing::warn!(error = %e, "purging expired state keys failed"),
        }
    }
}

#[async_trait]
impl StateStore for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "redb"
    }

    fn exclusive(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_string();
        self.read(move |txn, inner, now| {
            if read_meta(txn, &inner.path, &key, now)?.map(|m| m.expect(Kind::String, &key)).transpose()?.is_none() {
                return Ok(None);
            }
            let table = txn.open_table(STRINGS).map_err(|e| inner.err(e))?;
            Ok(table.get(key.as_str()).map_err(|e| inner.err(e))?.map(|g| g.value().to_vec()))
        })
        .await
    }

    async fn set(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.write(move |t, now| {
            let old = t.live(&key, now)?;
            if options.only_if_absent && old.is_some() {
                return Ok(false);
            }
            if let Some(old) = old {
                // SET replaces a value of any type and drops its expiry.
                t.remove(&key, old)?;
            }
            let mut meta = Meta::new(Kind::String);
            if let Some(ttl) = options.ttl {
                meta.expires = now + (ttl.as_millis() as u64).max(1);
                t.set_expiry(&key, 0, meta.expires)?;
            }
            t.strings.insert(key.as_str(), value.as_slice()).map_err(err(t.path))?;
            t.put_meta(&key, meta)?;
            Ok(true)
        })
        .await
    }

    async fn del(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.write(move |t, now| match t.live(&key, now)? {
            Some(meta) => t.remove(&key, meta).map(|_| true),
            None => Ok(false),
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.read(move |txn, inner, now| Ok(read_meta(txn, &inner.path, &key, now)?.is_some())).await
    }

    async fn incr(&self, key: &str) -> Result<i64> {
        let key = key.to_string();
        self.write(move |t, now| {
            let meta = match t.live(&key, now)? {
                Some(m) => m.expect(Kind::String, &key)?,
                None => Meta::new(Kind::String),
            };
            let current = match t.strings.get(key.as_str()).map_err(err(t.path))? {
                Some(v) => std::str::from_utf8(v.value())
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| StateError::NotInteger(key.clone()))?,
                None => 0,
            };
            let next = current.checked_add(1).ok_or_else(|| StateError::NotInteger(key.clone()))?;
            t.strings.insert(key.as_str(), next.to_string().as_bytes()).map_err(err(t.path))?;
            t.put_meta(&key, meta)?;
            Ok(next)
        })
        .await
    }

    async fn hset(&self, key: &str, fields: &[(&str, &[u8])]) -> Result<u64> {
        let key = key.to_string();
        let fields: Vec<(String, Vec<u8>)> = fields.iter().map(|(f, v)| (f.to_string(), v.to_vec())).collect();
        self.write(move |t, now| {
            let mut meta = match t.live(&key, now)? {
                Some(m) => m.expect(Kind::Hash, &key)?,
                None => Meta::new(Kind::Hash),
            };
            let mut added = 0;
            for (field, value) in &fields {
                let old = t.hashes.insert((key.as_str(), field.as_str()), value.as_slice()).map_err(err(t.path))?;
                if old.is_none() {
                    added += 1;
                }
            }
            meta.len += added;
            t.put_meta(&key, meta)?;
            Ok(added)
        })
        .await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        let (key, field) = (key.to_string(), field.to_string());
        self.read(move |txn, inner, now| {
            if read_meta(txn, &inner.path, &key, now)?.map(|m| m.expect(Kind::Hash, &key)).transpose()?.is_none() {
                return Ok(None);
            }
            let table = txn.open_table(HASHES).map_err(|e| inner.err(e))?;
            Ok(table.get((key.as_str(), field.as_str())).map_err(|e| inner.err(e))?.map(|g| g.value().to_vec()))
        })
        .await
    }

    async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let key = key.to_string();
        self.read(move |txn, inner, now| {
            let mut all = BTreeMap::new();
            if read_meta(txn, &inner.path, &key, now)?.map(|m| m.expect(Kind::Hash, &key)).transpose()?.is_none() {
                return Ok(all);
            }
            let table = txn.open_table(HASHES).map_err(|e| inner.err(e))?;
            for entry in table.range::<(&str, &str)>((key.as_str(), "")..).map_err(|e| inner.err(e))? {
                let (k, v) = entry.map_err(|e| inner.err(e))?;
                let (owner, field) = k.value();
                if owner != key {
                    break;
                }
                all.insert(field.to_string(), v.value().to_vec());
            }
            Ok(all)
        })
        .await
    }

    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64> {
        let key = key.to_string();
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        self.write(move |t, now| {
            let Some(mut meta) = t.live(&key, now)? else { return Ok(0) };
            meta = meta.expect(Kind::Hash, &key)?;
            let mut removed = 0;
            for field in &fields {
                if t.hashes.remove((key.as_str(), field.as_str())).map_err(err(t.path))?.is_some() {
                    removed += 1;
                }
            }
            meta.len -= removed;
            if meta.len == 0 {
                t.remove(&key, meta)?;
            } else {
                t.put_meta(&key, meta)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<u64> {
        let key = key.to_string();
        let values: Vec<Vec<u8>> = values.iter().map(|v| v.to_vec()).collect();
        self.write(move |t, now| {
            let mut meta = match t.live(&key, now)? {
                Some(m) => m.expect(Kind::List, &key)?,
                None => Meta::new(Kind::List),
            };
            for value in &values {
                t.lists.insert((key.as_str(), meta.len), value.as_slice()).map_err(err(t.path))?;
                meta.len += 1;
            }
            t.put_meta(&key, meta)?;
            Ok(meta.len)
        })
        .await
    }

    async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
        let key = key.to_string();
        self.read(move |txn, inner, now| {
            let Some(meta) = read_meta(txn, &inner.path, &key, now)? else { return Ok(Vec::new()) };
            let meta = meta.expect(Kind::List, &key)?;
            let Some((from, to)) = list_range(meta.len, start, stop) else { return Ok(Vec::new()) };
            let table = txn.open_table(LISTS).map_err(|e| inner.err(e))?;
            let mut items = Vec::with_capacity((to - from) as usize);
            for entry in table.range((key.as_str(), from)..(key.as_str(), to)).map_err(|e| inner.err(e))? {
                items.push(entry.map_err(|e| inner.err(e))?.1.value().to_vec());
            }
            Ok(items)
        })
        .await
    }

    async fn llen(&self, key: &str) -> Result<u64> {
        let key = key.to_string();
        self.read(move |txn, inner, now| match read_meta(txn, &inner.path, &key, now)? {
            Some(m) => Ok(m.expect(Kind::List, &key)?.len),
            None => Ok(0),
        })
        .await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = key.to_string();
        self.write(move |t, now| {
            let Some(mut meta) = t.live(&key, now)? else { return Ok(false) };
            let expires = now + (ttl.as_millis() as u64).max(1);
            t.set_expiry(&key, meta.expires, expires)?;
            meta.expires = expires;
            t.put_meta(&key, meta)?;
            Ok(true)
        })
        .await
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let key = key.to_string();
        self.read(move |txn, inner, now| {
            Ok(match read_meta(txn, &inner.path, &key, now)? {
                None => Ttl::Missing,
                Some(m) if m.expires == 0 => Ttl::Persistent,
                Some(m) => Ttl::Expires(Duration::from_millis(m.expires - now)),
            })
        })
        .await
    }

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.to_string();
        self.read(move |txn, inner, now| {
            let table = txn.open_table(META).map_err(|e| inner.err(e))?;
            let mut keys = Vec::new();
            for entry in table.range::<&str>(prefix.as_str()..).map_err(|e| inner.err(e))? {
                let (k, v) = entry.map_err(|e| inner.err(e))?;
                let key = k.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if Meta::decode(v.value()).live(now) {
                    keys.push(key.to_string());
                }
            }
            Ok(keys)
        })
        .await
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<u64> {
        Ok(self.0.broker.publish(channel, message))
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        Ok(self.0.broker.subscribe(channel))
    }
}
