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
/// A task claim lapses this long after its runner stops renewing it.
const CLAIM: Duration = Duration::from_secs(60);

fn task_key(id: &str) -> String {
    format!("task:{id}")
}

fn events_key(id: &str) -> String {
    format!("task-events:{id}")
}

/// How long a cancel request waits for a runner to see it.
const CANCEL_REQUEST: Duration = Duration::from_secs(3600);

/// Tasks ever created (kept across restarts, to notice lost records).
const TASK_COUNT: &str = "quorum:task-count";

/// What [`TaskStore::audit`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// Records that decode.
    pub found: u64,
    /// Tasks the store had recorded before.
    pub expected: u64,
    /// Ids of records that do not decode.
    pub unreadable: Vec<String>,
}

impl Audit {
    /// Records missing: counted once, not found now.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.found + self.unreadable.len() as u64)
    }
}

/// What [`TaskStore::cancel`] did.
#[derive(Debug)]
pub enum Cancel {
    /// Marked cancelled (it ran nowhere).
    Done(Box<Task>),
    /// Its runner was asked to stop.
    Requested,
    /// It had already ended so.
    Finished(TaskStatus),
    Unknown,
}

fn cancel_key(id: &str) -> String {
    format!("task-cancel:{id}")
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
            run: None,
            attempts: Vec::new(),
            reviews: Vec::new(),
            error: None,
            owner: self.instance.to_string(),
            version: 0,
        };
        self.save(&mut task).await?;
        // Counted once the record is durable: a count above what is found later means
        // records were lost.
        self.store.incr(TASK_COUNT).await?;
        Ok(task)
    }

    /// Compares the task records with the count of tasks ever created, and decodes each:
    /// what a file that was not closed cleanly may have lost or damaged.
    pub async fn audit(&self) -> Result<Audit> {
        let mut audit = Audit::default();
        for key in self.store.scan_prefix("task:").await? {
            match self.get(&key["task:".len()..]).await {
                Ok(Some(_)) => audit.found += 1,
                Ok(None) => {}
                Err(StateError::Corrupt { .. }) => audit.unreadable.push(key["task:".len()..].to_string()),
                Err(e) => return Err(e),
            }
        }
        let counted = self.store.get(TASK_COUNT).await?.and_then(|v| String::from_utf8_lossy(&v).parse::<u64>().ok());
        let present = audit.found + audit.unreadable.len() as u64;
        audit.expected = counted.unwrap_or(present);
        if counted != Some(present) {
            // From now on the count is what is there, so a loss is reported once.
            self.store.set(TASK_COUNT, present.to_string().as_bytes(), SetOptions::default()).await?;
        }
        Ok(audit)
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
            // A record that does not decode is reported by `audit`, not a reason to list nothing.
            let task = match self.get(&key["task:".len()..]).await {
                Ok(Some(task)) => task,
                Ok(None) | Err(StateError::Corrupt { .. }) => continue,
                Err(e) => return Err(e),
            };
            if status.is_none_or(|s| task.status.matches(s)) {
                tasks.push(TaskSummary::from(&task));
            }
        }
        tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        tasks.truncate(limit);
        Ok(tasks)
    }

    /// Appends to the task's event log and publishes the event to live listeners.
    pub async fn event(
        &self,
        id: &str,
        kind: &str,
        stage: Option<Stage>,
        data: serde_json::Value,
    ) -> Result<TaskEvent> {
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
        let Ok(start) = i64::try_from(from) else { return Ok(Vec::new()) };
        let raw = self.store.lrange(&key, start, -1).await?;
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
            let live = match tasks.subscribe(&id).await {
                Ok(live) => live,
                Err(e) => {
                    tracing::warn!(task = %id, error = %e, "cannot follow the task's events");
                    return;
                }
            };
            let mut live = Box::pin(live);
            let mut next = from;
            // Sends the log from `next` on; false when the listener is gone or the task ended.
            let drain = |from: u64| {
                let (tasks, id, tx) = (&tasks, &id, &tx);
                async move {
                    let Ok(log) = tasks.events(id, from).await else { return (from, false) };
                    let mut next = from;
                    for event in log {
                        next = event.seq + 1;
                        let done = event.kind == "finished";
                        if tx.send(event).is_err() || done {
                            return (next, false);
                        }
                    }
                    (next, true)
                }
            };
            let (n, open) = drain(next).await;
            next = n;
            if !open {
                return;
            }
            loop {
                let received = tokio::select! {
                    // The listener went away: stop, and release the store.
                    _ = tx.closed() => return,
                    received = tokio::time::timeout(Duration::from_secs(10), live.next()) => received,
                };
                let active = match received {
                    Ok(Some(event)) if event.seq < next => continue,
                    Ok(Some(event)) if event.seq == next => {
                        next += 1;
                        let done = event.kind == "finished";
                        if tx.send(event).is_err() || done {
                            return;
                        }
                        continue;
                    }
                    // A gap (a subscriber that fell behind, a lost message): the log has it.
                    Ok(Some(_)) => true,
                    Ok(None) => false,
                    // Quiet for a while: go on only while somebody works on the task.
                    Err(_) => {
                        matches!(tasks.get(&id).await, Ok(Some(t)) if t.status.is_active() || t.status == TaskStatus::Queued)
                    }
                };
                let (n, open) = drain(next).await;
                next = n;
                if !open || !active {
                    return;
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

    /// Ends the task as cancelled; its outputs so far stay in the record.
    pub async fn cancelled(&self, task: &mut Task, reason: &str) -> Result<()> {
        task.status = TaskStatus::Cancelled;
        task.error = Some(reason.to_string());
        self.save(task).await?;
        let data = serde_json::json!({"status": task.status, "error": task.error});
        self.event(&task.id, "finished", None, data).await?;
        Ok(())
    }

    /// Asks whichever runner holds the task (in this process or another) to stop it.
    pub async fn request_cancel(&self, id: &str) -> Result<()> {
        let options = SetOptions { ttl: Some(CANCEL_REQUEST), only_if_absent: false };
        self.store.set(&cancel_key(id), b"1", options).await?;
        Ok(())
    }

    /// Cancels a task as far as the store can: a task that runs nowhere (queued,
    /// interrupted) is marked cancelled; a running one is asked to stop, and its runner
    /// marks it (within a decode step in its own process, `CANCEL_POLL` from another).
    pub async fn cancel(&self, id: &str) -> Result<Cancel> {
        let Some(mut task) = self.get(id).await? else { return Ok(Cancel::Unknown) };
        if matches!(task.status, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled) {
            return Ok(Cancel::Finished(task.status));
        }
        // An interrupted task's process is gone, whatever claim it left.
        let runs = task.status != TaskStatus::Interrupted && self.store.exists(&format!("task-claim:{id}")).await?;
        if !runs {
            self.cancelled(&mut task, "cancelled on request").await?;
            return Ok(Cancel::Done(Box::new(task)));
        }
        self.request_cancel(id).await?;
        Ok(Cancel::Requested)
    }

    pub async fn cancel_requested(&self, id: &str) -> Result<bool> {
        self.store.exists(&cancel_key(id)).await
    }

    /// Takes this store into use for a long-running process: renews the lease, marks the
    /// tasks of dead processes interrupted, and keeps the lease fresh from now on.
    pub async fn start(store: Arc<dyn StateStore>) -> Result<TaskStore> {
        let tasks = TaskStore::new(store);
        tasks.renew_lease().await?;
        let interrupted = tasks.recover().await?;
        if !interrupted.is_empty() {
            tracing::warn!(
                count = interrupted.len(),
                "tasks interrupted by the last shutdown are marked `interrupted`"
            );
        }
        // Runs for the life of the process.
        drop(tasks.spawn_upkeep());
        Ok(tasks)
    }

    /// Claims the right to run a task: one runner per task, across processes. A claim
    /// whose holder is dead (its lease lapsed, or any other holder of an exclusive store)
    /// is taken over. Returns `false` when a live runner holds it.
    pub async fn claim(&self, id: &str) -> Result<bool> {
        let key = format!("task-claim:{id}");
        let options = SetOptions { ttl: Some(CLAIM), only_if_absent: true };
        if self.store.set(&key, self.instance.as_bytes(), options).await? {
            return Ok(true);
        }
        let holder = self.store.get(&key).await?.map(|h| String::from_utf8_lossy(&h).into_owned()).unwrap_or_default();
        let dead =
            holder != *self.instance && (self.store.exclusive() || !self.store.exists(&lease_key(&holder)).await?);
        if dead {
            self.store
                .set(&key, self.instance.as_bytes(), SetOptions { ttl: Some(CLAIM), only_if_absent: false })
                .await?;
        }
        Ok(dead)
    }

    /// Keeps a claim alive while the task runs.
    pub async fn renew_claim(&self, id: &str) -> Result<()> {
        self.store.expire(&format!("task-claim:{id}"), CLAIM).await?;
        Ok(())
    }

    pub async fn release(&self, id: &str) -> Result<()> {
        self.store.del(&format!("task-claim:{id}")).await?;
        self.store.del(&cancel_key(id)).await?;
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
        let mut candidates = self.list(Some(TaskStatus::Running), usize::MAX).await?;
        candidates.extend(self.list(Some(TaskStatus::Queued), usize::MAX).await?);
        for summary in candidates {
            let Some(mut task) = self.get(&summary.id).await? else { continue };
            let stranded = task.status.is_active() || task.status == TaskStatus::Queued;
            if !stranded || task.owner == *self.instance {
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
