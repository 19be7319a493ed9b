//! Task records over any [`StateStore`]: saved at every stage transition, with an event
//! log that is also published live, and recovery of tasks whose process died.
//!
//! Keys: `task:{id}` (the record, JSON), `task-events:{id}` (a list of events, also the
//! pub/sub channel), `instance:{id}` (a lease each running instance renews, so that on a
//! shared Redis one instance can tell that another one died).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::task::{Stage, Task, TaskEvent, TaskInput, TaskStatus, TaskSummary};
use super::{now_ms, Result, SetOptions, StateError, StateStore, Subscription};

/// An instance that has not renewed its lease for this long is taken for dead.
const LEASE: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);

fn task_key(id: &str) -> String {
    format!("task:{id}")
}

fn events_key(id: &str) -> String {
    format!("task-events:{id}")
}

fn lease_key(instance: &str) -> String {
    format!("instance:{instance}")
}

/// A cheap handle; clones share the store and the instance id.
#[derive(Clone)]
pub struct TaskStore {
    store: Arc<dyn StateStore>,
    instance: Arc<str>,
}

impl TaskStore {
    pub fn new(store: Arc<dyn StateStore>) -> TaskStore {
        TaskStore { store, instance: uuid::Uuid::now_v7().to_string().into() }
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// A new queued task owned by this instance, saved.
    pub async fn create(&self, input: TaskInput) -> Result<Task> {
        let now = now_ms();
        let mut task = Task {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now,
            updated_at: now,
            input,
            status: TaskStatus::Queued,
            last_completed_stage: None,
            outputs: Default::default(),
            attempts: Vec::new(),
            reviews: Vec::new(),
            error: None,
            owner: self.instance.to_string(),
            version: 0,
        };
        self.save(&mut task).await?;
        Ok(task)
    }

    /// Writes the whole record in one command, so a reader sees the old or the new one.
    pub async fn save(&self, task: &mut Task) -> Result<()> {
        task.version += 1;
        task.updated_at = now_ms();
        let json = serde_json::to_vec(task).expect("tasks serialize");
        self.store.set(&task_key(&task.id), &json, SetOptions::default()).await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Task>> {
        let key = task_key(id);
        let Some(bytes) = self.store.get(&key).await? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| StateError::Corrupt { key, reason: e.to_string() })
    }

    /// Tasks, newest first, optionally only those with a status (`running` selects every
    /// active one).
    pub async fn list(&self, status: Option<TaskStatus>, limit: usize) -> Result<Vec<TaskSummary>> {
        let mut tasks = Vec::new();
        for key in self.store.scan_prefix("task:").await? {
            if let Some(task) = self.get(&key["task:".len()..]).await? {
                if status.is_none_or(|s| task.status.matches(s)) {
                    tasks.push(TaskSummary::from(&task));
                }
            }
        }
        tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        tasks.truncate(limit);
        Ok(tasks)
    }

    /// Appends to the task's event log and publishes the event to live listeners.
    pub async fn event(&self, id: &str, kind: &str, stage: Option<Stage>, data: serde_json::Value) -> Result<TaskEvent> {
        // The position in the list is the event's `seq`: the stored value's is overwritten
        // on every read, so concurrent appends cannot give two events one number.
        let mut event = TaskEvent { seq: 0, at: now_ms(), kind: kind.to_string(), stage, data };
        let key = events_key(id);
        let len = self.store.rpush(&key, &[&serde_json::to_vec(&event).expect("events serialize")]).await?;
        event.seq = len - 1;
        self.store.publish(&key, &serde_json::to_vec(&event).expect("events serialize")).await?;
        Ok(event)
    }

    /// The event log from position `from` on.
    pub async fn events(&self, id: &str, from: u64) -> Result<Vec<TaskEvent>> {
        let key = events_key(id);
        let raw = self.store.lrange(&key, from as i64, -1).await?;
        raw.iter()
            .enumerate()
            .map(|(i, bytes)| {
                let mut event: TaskEvent = serde_json::from_slice(bytes)
                    .map_err(|e| StateError::Corrupt { key: key.clone(), reason: e.to_string() })?;
                event.seq = from + i as u64;
                Ok(event)
            })
            .collect()
    }

    /// Events published from now on. To miss nothing, subscribe first, then read
    /// [`TaskStore::events`] and skip what the subscription repeats (by `seq`).
    pub async fn subscribe(&self, id: &str) -> Result<impl futures::Stream<Item = TaskEvent> + Send + 'static> {
        let stream: Subscription = self.store.subscribe(&events_key(id)).await?;
        Ok(stream.filter_map(|bytes| std::future::ready(serde_json::from_slice(&bytes).ok())))
    }

    /// A task's events from position `from`: the saved log, then live ones, until it ends.
    /// Subscribing before reading the log means nothing falls between the two.
    pub fn follow(&self, id: String, from: u64) -> impl futures::Stream<Item = TaskEvent> + Send + 'static {
        let tasks = self.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let Ok(live) = tasks.subscribe(&id).await else { return };
            let mut live = Box::pin(live);
            let mut next = from;
            let Ok(log) = tasks.events(&id, from).await else { return };
            for event in log {
                next = event.seq + 1;
                let done = event.kind == "finished";
                if tx.send(event).is_err() || done {
                    return;
                }
            }
            loop {
                let received = tokio::select! {
                    // The listener went away: stop, and release the store.
                    _ = tx.closed() => return,
                    received = tokio::time::timeout(Duration::from_secs(10), live.next()) => received,
                };
                match received {
                    Ok(Some(event)) if event.seq < next => {}
                    Ok(Some(event)) => {
                        next = event.seq + 1;
                        let done = event.kind == "finished";
                        if tx.send(event).is_err() || done {
                            return;
                        }
                    }
                    Ok(None) => return,
                    // Quiet for a while: stop if nobody is working on the task any more.
                    Err(_) => match tasks.get(&id).await {
                        Ok(Some(task)) if task.status.is_active() || task.status == TaskStatus::Queued => {
                            if tx.is_closed() {
                                return;
                            }
                        }
                        _ => return,
                    },
                }
            }
        });
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
    }

    /// Marks the task as being in `stage`, saves it and logs `stage_started`.
    pub async fn start_stage(&self, task: &mut Task, stage: Stage) -> Result<()> {
        task.status = TaskStatus::InStage(stage);
        task.owner = self.instance.to_string();
        self.save(task).await?;
        self.event(&task.id, "stage_started", Some(stage), serde_json::Value::Null).await?;
        Ok(())
    }

    /// Records the stage's output as the last completed one, saves and logs `stage_finished`.
    pub async fn finish_stage(&self, task: &mut Task, stage: Stage, output: serde_json::Value) -> Result<()> {
        task.outputs.insert(stage, output);
        task.last_completed_stage = Some(stage);
        task.status = TaskStatus::Running;
        self.save(task).await?;
        self.event(&task.id, "stage_finished", Some(stage), serde_json::Value::Null).await?;
        Ok(())
    }

    /// Ends the task as succeeded or failed.
    pub async fn finish(&self, task: &mut Task, error: Option<String>) -> Result<()> {
        task.status = if error.is_some() { TaskStatus::Failed } else { TaskStatus::Succeeded };
        task.error = error;
        self.save(task).await?;
        let data = serde_json::json!({"status": task.status, "error": task.error});
        self.event(&task.id, "finished", None, data).await?;
        Ok(())
    }

    /// Renews this instance's lease.
    pub async fn renew_lease(&self) -> Result<()> {
        let options = SetOptions { ttl: Some(LEASE), only_if_absent: false };
        self.store.set(&lease_key(&self.instance), b"alive", options).await?;
        Ok(())
    }

    /// Marks as interrupted every active task whose owner is gone: on an exclusive store,
    /// every owner but this instance; on a shared one, owners whose lease has lapsed. The
    /// last completed stage is kept, so the task can resume after it. Returns their ids.
    pub async fn recover(&self) -> Result<Vec<String>> {
        let mut interrupted = Vec::new();
        for summary in self.list(Some(TaskStatus::Running), usize::MAX).await? {
            let Some(mut task) = self.get(&summary.id).await? else { continue };
            if !task.status.is_active() || task.owner == *self.instance {
                continue;
            }
            if !self.store.exclusive() && self.store.exists(&lease_key(&task.owner)).await? {
                continue;
            }
            let was = task.status;
            task.status = TaskStatus::Interrupted;
            self.save(&mut task).await?;
            let data = serde_json::json!({"was": was, "resume_after": task.last_completed_stage});
            self.event(&task.id, "interrupted", None, data).await?;
            tracing::warn!(task = %task.id, %was, "task was interrupted when its process stopped");
            interrupted.push(task.id);
        }
        Ok(interrupted)
    }

    /// Renews the lease now and then in the background; on a shared store also recovers
    /// the tasks of instances that died meanwhile. Ends when the returned handle is dropped
    /// or aborted.
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let tasks = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = tasks.renew_lease().await {
                    tracing::warn!(error = %e, "renewing the instance lease failed");
                }
                if !tasks.store.exclusive() {
                    if let Err(e) = tasks.recover().await {
                        tracing::warn!(error = %e, "recovering interrupted tasks failed");
                    }
                }
            }
        })
    }
}
