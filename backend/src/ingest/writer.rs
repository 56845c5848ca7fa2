//! The buffer step: a bounded queue in front of writer tasks that commit many requests' events
//! in one transaction (group commit). A request is acknowledged only after the transaction
//! holding its events has committed, so an acknowledged event is never lost; when the queue
//! is full, submitters are told to come back later instead of growing memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::{SessionId, SiteId, VisitorId};
use crate::storage::events::{self, EventRow, SessionDelta, VisitorDelta};
use crate::storage::pg_writer::PgBatchWriter;
use crate::storage::sqlite_writer::SqliteBatchWriter;
use crate::telemetry::metrics::Metrics;

/// Everything one request asks to store.
pub struct WriteJob {
    pub events: Vec<EventRow>,
    pub sessions: Vec<SessionDelta>,
    pub visitors: Vec<VisitorDelta>,
}

struct Queued {
    job: WriteJob,
    ack: oneshot::Sender<Result<(), CommitFailed>>,
    /// Buffer capacity held until the job is committed (or failed).
    _permit: OwnedSemaphorePermit,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("the database did not commit the batch")]
pub struct CommitFailed {
    /// The database said its disk is full (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    pub disk_full: bool,
}

/// Whether a commit error says the database ran out of disk space.
fn is_disk_full(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    ["database or disk is full", "no space left on device", "could not extend file", "disk full"]
        .iter()
        .any(|needle| error.contains(needle))
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the write buffer is full")]
    Overloaded,
    #[error(transparent)]
    CommitFailed(#[from] CommitFailed),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Submits jobs to the writers. Cheap to clone; the writers stop once every handle is dropped
/// and the queue is drained.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Queued>,
    capacity: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

pub struct WriterConfig {
    /// Events that may wait in the buffer.
    pub buffer_capacity_events: usize,
    /// Most events per transaction.
    pub commit_max_events: usize,
    /// Writer tasks; each holds one transaction at a time.
    pub writers: usize,
}

/// Where the writers commit.
pub enum Sink {
    /// Any sea-orm database (an in-memory SQLite in tests): multi-row statements, `writers` tasks.
    Pool(DatabaseConnection),
    /// PostgreSQL: `UNNEST` array statements (see `storage::pg_writer`), `writers` tasks.
    Postgres(PgBatchWriter),
    /// A SQLite file: one dedicated connection on its own thread (see `storage::sqlite_writer`).
    SqliteFile(SqliteBatchWriter),
}

/// The sinks committed from async tasks.
enum AsyncSink {
    Pool(DatabaseConnection),
    Postgres(PgBatchWriter),
}

impl AsyncSink {
    async fn commit(&self, group: &Group) -> Result<(), String> {
        match self {
            AsyncSink::Pool(db) => async {
                let txn = db.begin().await?;
                events::insert_events(&txn, &group.rows).await?;
                events::upsert_sessions(&txn, &group.sessions).await?;
                events::upsert_visitors(&txn, &group.visitors).await?;
                txn.commit().await
            }
            .await
            .map_err(|error| error.to_string()),
            AsyncSink::Postgres(pg) => {
                pg.commit(&group.rows, &group.sessions, &group.visitors).await.map_err(|error| error.to_string())
            }
        }
    }
}

/// Starts the writers. Await the returned handles after dropping every [`WriterHandle`] to
/// drain the buffer on shutdown.
pub fn spawn(sink: Sink, config: WriterConfig, metrics: Arc<Metrics>) -> (WriterHandle, Vec<JoinHandle<()>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let max = config.commit_max_events;
    let tasks = match sink {
        Sink::SqliteFile(writer) => vec![spawn_sqlite_writer(writer, rx, max, metrics.clone())],
        Sink::Pool(db) => spawn_async_writers(AsyncSink::Pool(db), config.writers, rx, max, &metrics),
        Sink::Postgres(pg) => spawn_async_writers(AsyncSink::Postgres(pg), config.writers, rx, max, &metrics),
    };
    let capacity = Arc::new(Semaphore::new(config.buffer_capacity_events));
    (WriterHandle { tx, capacity, metrics }, tasks)
}

impl WriterHandle {
    /// Queues the job and waits until it is committed.
    pub async fn submit(&self, job: WriteJob) -> Result<(), SubmitError> {
        let weight = u32::try_from(job.events.len().max(1)).unwrap_or(u32::MAX);
        let permit = self.capacity.clone().try_acquire_many_owned(weight).map_err(|_| SubmitError::Overloaded)?;
        self.metrics.buffered_events.inc_by(i64::from(weight));
        let (ack, done) = oneshot::channel();
        self.tx.send(Queued { job, ack, _permit: permit }).map_err(|_| SubmitError::ShuttingDown)?;
        match done.await {
            Ok(result) => result.map_err(SubmitError::from),
            Err(_) => Err(SubmitError::ShuttingDown),
        }
    }
}

/// SQLite: one thread owns the connection and commits group after group.
fn spawn_sqlite_writer(
    mut writer: SqliteBatchWriter,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    commit_max_events: usize,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        while let Some(first) = rx.blocking_recv() {
            let group = Group::take(first, &mut rx, commit_max_events);
            let started = Instant::now();
            let result =
                writer.commit(&group.rows, &group.sessions, &group.visitors).map_err(|error| error.to_string());
            group.finish(result, started, &metrics);
        }
    })
}

/// Pooled databases: `writers` tasks take turns draining the queue, each holding one
/// transaction at a time, so commits pipeline.
fn spawn_async_writers(
    sink: AsyncSink,
    writers: usize,
    rx: mpsc::UnboundedReceiver<Queued>,
    commit_max_events: usize,
    metrics: &Arc<Metrics>,
) -> Vec<JoinHandle<()>> {
    let (sink, rx) = (Arc::new(sink), Arc::new(Mutex::new(rx)));
    (0..writers.max(1))
        .map(|_| tokio::spawn(run_async_writer(sink.clone(), rx.clone(), commit_max_events, metrics.clone())))
        .collect()
}

async fn run_async_writer(
    sink: Arc<AsyncSink>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Queued>>>,
    commit_max_events: usize,
    metrics: Arc<Metrics>,
) {
    loop {
        let group = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { break };
            Group::take(first, &mut rx, commit_max_events)
        };
        let started = Instant::now();
        let result = sink.commit(&group).await;
        group.finish(result, started, &metrics);
    }
}

/// The requests of one group commit, with their session and visitor deltas merged.
struct Group {
    rows: Vec<EventRow>,
    sessions: Vec<SessionDelta>,
    visitors: Vec<VisitorDelta>,
    acks: Vec<(oneshot::Sender<Result<(), CommitFailed>>, OwnedSemaphorePermit)>,
}

impl Group {
    /// `first` plus whatever else is already waiting, up to `commit_max_events`: that is the
    /// group in group commit.
    fn take(first: Queued, rx: &mut mpsc::UnboundedReceiver<Queued>, commit_max_events: usize) -> Group {
        let mut events = first.job.events.len();
        let mut batch = vec![first];
        while events < commit_max_events {
            match rx.try_recv() {
                Ok(next) => {
                    events += next.job.events.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        Group::merge(batch)
    }

    fn merge(batch: Vec<Queued>) -> Group {
        let mut rows: Vec<EventRow> = Vec::new();
        let mut sessions: HashMap<SessionId, SessionDelta> = HashMap::new();
        let mut visitors: HashMap<(SiteId, VisitorId), VisitorDelta> = HashMap::new();
        let mut acks = Vec::with_capacity(batch.len());
        for queued in batch {
            let WriteJob { events, sessions: job_sessions, visitors: job_visitors } = queued.job;
            rows.extend(events);
            for delta in job_sessions {
                match sessions.get_mut(&delta.id) {
                    Some(existing) => existing.merge(delta),
                    None => {
                        sessions.insert(delta.id, delta);
                    }
                }
            }
            for delta in job_visitors {
                visitors.entry((delta.site_id, delta.visitor_id)).and_modify(|v| v.merge(delta)).or_insert(delta);
            }
            acks.push((queued.ack, queued._permit));
        }
        Group { rows, sessions: sessions.into_values().collect(), visitors: visitors.into_values().collect(), acks }
    }

    /// Answers every request of the group with the commit's outcome.
    fn finish(self, result: Result<(), String>, started: Instant, metrics: &Metrics) {
        let event_count = self.rows.len();
        let buffered: i64 = self.acks.iter().map(|(_, permit)| i64::from(permit.num_permits() as u32)).sum();
        metrics.buffered_events.dec_by(buffered);
        metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                metrics.commits.inc();
                metrics.commit_events.observe(event_count as f64);
                metrics.events_accepted.inc_by(event_count as u64);
                for (ack, _permit) in self.acks {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(error) => {
                metrics.commit_failures.inc();
                let disk_full = is_disk_full(&error);
                tracing::error!(error = %error, disk_full, events = event_count, requests = self.acks.len(), "group commit failed; nothing in it was acknowledged");
                for (ack, _permit) in self.acks {
                    let _ = ack.send(Err(CommitFailed { disk_full }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_disk_full;

    #[test]
    fn disk_full_is_recognised_in_sqlite_and_postgresql_errors() {
        assert!(is_disk_full("error returned from database: (code: 13) database or disk is full"));
        assert!(is_disk_full("could not extend file \"base/16384/16400\": No space left on device"));
        assert!(!is_disk_full("pool timed out while waiting for an open connection"));
    }
}
