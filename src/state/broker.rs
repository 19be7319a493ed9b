//! In-process publish/subscribe for the embedded store: one broadcast channel per
//! channel name, dropped when its last subscriber goes.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::Subscription;

/// A slow subscriber may fall this far behind before it misses messages.
const CAPACITY: usize = 1024;

#[derive(Default)]
pub(crate) struct Broker {
    channels: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
}

impl Broker {
    pub fn publish(&self, channel: &str, message: &[u8]) -> u64 {
        let mut channels = self.channels.lock().expect("broker lock");
        let Some(sender) = channels.get(channel) else { return 0 };
        match sender.send(message.to_vec()) {
            Ok(n) => n as u64,
            Err(_) => {
                channels.remove(channel);
                0
            }
        }
    }

    pub fn subscribe(&self, channel: &str) -> Subscription {
        let mut channels = self.channels.lock().expect("broker lock");
        let receiver =
            channels.entry(channel.to_string()).or_insert_with(|| broadcast::channel(CAPACITY).0).subscribe();
        let channel = channel.to_string();
        Box::pin(BroadcastStream::new(receiver).filter_map(move |item| {
            let item = match item {
                Ok(message) => Some(message),
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "subscriber fell behind; messages dropped");
                    None
                }
            };
            std::future::ready(item)
        }))
    }
}
