//! The file's layout: `meta` holds each key's type, expiry and length; the values live
//! in one table per type, hashes keyed by (key, field) and lists by (key, index), so HSET
//! and RPUSH touch only what they change; `expiries` indexes keys by expiry time.

use std::path::Path;

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::state::{Result, StateError};

pub const META: TableDefinition<&str, (u8, u64, u64)> = TableDefinition::new("meta");
pub const STRINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("strings");
pub const HASHES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("hashes");
pub const LISTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("lists");
pub const EXPIRIES: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiries");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String = 0,
    Hash = 1,
    List = 2,
}

/// One key's type, expiry (unix ms, 0 for none) and item count (hash fields, list items).
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub kind: Kind,
    pub expires: u64,
    pub len: u64,
}

impl Meta {
    pub fn new(kind: Kind) -> Meta {
        Meta { kind, expires: 0, len: 0 }
    }

    pub fn decode((kind, expires, len): (u8, u64, u64)) -> Meta {
        let kind = match kind {
            1 => Kind::Hash,
            2 => Kind::List,
            _ => Kind::String,
        };
        Meta { kind, expires, len }
    }

    pub fn encode(self) -> (u8, u64, u64) {
        (self.kind as u8, self.expires, self.len)
    }

    pub fn live(self, now: u64) -> bool {
        self.expires == 0 || self.expires > now
    }

    pub fn expect(self, kind: Kind, key: &str) -> Result<Meta> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(StateError::WrongType(key.to_string()))
        }
    }
}

/// The open tables of one write transaction.
pub struct Tables<'t> {
    pub meta: Table<'t, &'static str, (u8, u64, u64)>,
    pub strings: Table<'t, &'static str, &'static [u8]>,
    pub hashes: Table<'t, (&'static str, &'static str), &'static [u8]>,
    pub lists: Table<'t, (&'static str, u64), &'static [u8]>,
    pub expiries: Table<'t, (u64, &'static str), ()>,
    pub path: &'t Path,
}

impl<'t> Tables<'t> {
    pub fn open(txn: &'t WriteTransaction, path: &'t Path) -> Result<Tables<'t>> {
        Ok(Tables {
            meta: txn.open_table(META).map_err(err(path))?,
            strings: txn.open_table(STRINGS).map_err(err(path))?,
            hashes: txn.open_table(HASHES).map_err(err(path))?,
            lists: txn.open_table(LISTS).map_err(err(path))?,
            expiries: txn.open_table(EXPIRIES).map_err(err(path))?,
            path,
        })
    }

    /// The key's metadata if it exists and has not expired; an expired key is removed.
    pub fn live(&mut self, key: &str, now: u64) -> Result<Option<Meta>> {
        let meta = self.meta.get(key).map_err(err(self.path))?.map(|g| Meta::decode(g.value()));
        match meta {
            Some(m) if m.live(now) => Ok(Some(m)),
            Some(m) => {
                self.remove(key, m)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    pub fn remove(&mut self, key: &str, meta: Meta) -> Result<()> {
        match meta.kind {
            Kind::String => {
                self.strings.remove(key).map_err(err(self.path))?;
            }
            Kind::Hash => {
                for field in self.fields(key)? {
                    self.hashes.remove((key, field.as_str())).map_err(err(self.path))?;
                }
            }
            Kind::List => {
                for i in 0..meta.len {
                    self.lists.remove((key, i)).map_err(err(self.path))?;
                }
            }
        }
        self.set_expiry(key, meta.expires, 0)?;
        self.meta.remove(key).map_err(err(self.path))?;
        Ok(())
    }

    pub fn fields(&self, key: &str) -> Result<Vec<String>> {
        let mut fields = Vec::new();
        for entry in self.hashes.range::<(&str, &str)>((key, "")..).map_err(err(self.path))? {
            let (k, _) = entry.map_err(err(self.path))?;
            let (owner, field) = k.value();
            if owner != key {
                break;
            }
            fields.push(field.to_string());
        }
        Ok(fields)
    }

    pub fn put_meta(&mut self, key: &str, meta: Meta) -> Result<()> {
        self.meta.insert(key, meta.encode()).map_err(err(self.path))?;
        Ok(())
    }

    /// Moves the key's entry in the expiry index from `old` to `new` (0: none).
    pub fn set_expiry(&mut self, key: &str, old: u64, new: u64) -> Result<()> {
        if old != 0 {
            self.expiries.remove((old, key)).map_err(err(self.path))?;
        }
        if new != 0 {
            self.expiries.insert((new, key), ()).map_err(err(self.path))?;
        }
        Ok(())
    }
}

/// Maps a redb error inside a transaction to one that names the file.
pub fn err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> StateError + '_ {
    |e| StateError::Storage { path: path.to_path_buf(), reason: e.to_string() }
}

/// Reads a key's live metadata in a read transaction (expired keys are absent).
pub fn read_meta(txn: &ReadTransaction, path: &Path, key: &str, now: u64) -> Result<Option<Meta>> {
    let table = txn.open_table(META).map_err(err(path))?;
    let meta = table.get(key).map_err(err(path))?.map(|g| Meta::decode(g.value()));
    Ok(meta.filter(|m| m.live(now)))
}
