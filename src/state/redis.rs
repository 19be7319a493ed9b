//! The shared backend: a real Redis server, for several quorum instances. Commands go
//! through a connection manager that reconnects after a dropped connection; each
//! subscription gets its own pub/sub connection, as Redis requires.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::{Client, RedisError};

use super::{Result, SetOptions, StateError, StateStore, Subscription, Ttl};

#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    conn: ConnectionManager,
}

impl RedisStore {
    /// Connects and checks the server answers (PING), so a wrong URL fails at start-up.
    pub async fn connect(url: &str) -> Result<RedisStore> {
        let connect_error = |e: RedisError| StateError::Connect { url: url.to_string(), reason: e.to_string() };
        let client = Client::open(url).map_err(connect_error)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let mut conn = tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| StateError::Connect { url: url.to_string(), reason: "timed out".into() })?
            .map_err(connect_error)?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(connect_error)?;
        Ok(RedisStore { client, conn })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd, key: &str) -> Result<T> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(|e| map_error(e, key))
    }
}

fn map_error(e: RedisError, key: &str) -> StateError {
    match e.code() {
        Some("WRONGTYPE") => StateError::WrongType(key.to_string()),
        Some("ERR") if e.to_string().contains("not an integer") => StateError::NotInteger(key.to_string()),
        _ => StateError::Redis(e.to_string()),
    }
}

/// Escapes SCAN's glob characters so that a prefix matches literally.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

#[async_trait]
impl StateStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn exclusive(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("GET").arg(key), key).await
    }

    async fn set(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(ttl) = options.ttl {
            cmd.arg("PX").arg((ttl.as_millis() as u64).max(1));
        }
        if options.only_if_absent {
            cmd.arg("NX");
        }
        let reply: Option<String> = self.query(&cmd, key).await?;
        Ok(reply.is_some())
    }

    async fn del(&self, key: &str) -> Result<bool> {
        let n: u64 = self.query(redis::cmd("DEL").arg(key), key).await?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let n: u64 = self.query(redis::cmd("EXISTS").arg(key), key).await?;
        Ok(n > 0)
    }

    async fn incr(&self, key: &str) -> Result<i64> {
        self.query(redis::cmd("INCR").arg(key), key).await
    }

    async fn hset(&self, key: &str, fields: &[(&str, &[u8])]) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (field, value) in fields {
            cmd.arg(*field).arg(*value);
        }
        self.query(&cmd, key).await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("HGET").arg(key).arg(field), key).await
    }

    async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        self.query(redis::cmd("HGETALL").arg(key), key).await
    }

    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        self.query(redis::cmd("HDEL").arg(key).arg(fields), key).await
    }

    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<u64> {
        if values.is_empty() {
            return self.llen(key).await;
        }
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(key);
        for value in values {
            cmd.arg(*value);
        }
        self.query(&cmd, key).await
    }

    async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
        self.query(redis::cmd("LRANGE").arg(key).arg(start).arg(stop), key).await
    }

    async fn llen(&self, key: &str) -> Result<u64> {
        self.query(redis::cmd("LLEN").arg(key), key).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let n: u64 = self.query(redis::cmd("PEXPIRE").arg(key).arg((ttl.as_millis() as u64).max(1)), key).await?;
        Ok(n > 0)
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let ms: i64 = self.query(redis::cmd("PTTL").arg(key), key).await?;
        Ok(match ms {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = glob_escape(prefix);
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .query(redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000), prefix)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key twice when the keyspace is rehashed meanwhile.
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<u64> {
        self.query(redis::cmd("PUBLISH").arg(channel).arg(message), channel).await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(|e| map_error(e, channel))?;
        pubsub.subscribe(channel).await.map_err(|e| map_error(e, channel))?;
        Ok(Box::pin(pubsub.into_on_message().map(|msg| msg.get_payload_bytes().to_vec())))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scan_patterns_match_prefixes_literally() {
        assert_eq!(super::glob_escape("task:"), "task:*");
        assert_eq!(super::glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}
