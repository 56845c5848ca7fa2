//! Group commit for webhook receipts. Shopify expects a fast 200, and a 200 must mean the
//! delivery is stored. One task owns the inserts: it takes every delivery waiting in its queue
//! (up to [`MAX_GROUP`]), stores them in one transaction and then answers each request, so under
//! load many deliveries share one commit instead of competing for SQLite's single write lock
//! (whose busy handler sleeps, which is what made the tail latency). A full queue answers at
//! once with [`StoreError::Full`] (503: Shopify retries), so memory stays bounded.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::storage::StorageError;
use crate::storage::webhook_inbox::{self, Delivery};

/// Deliveries stored per transaction at most.
pub const MAX_GROUP: usize = 256;
/// Deliveries waiting for the writer before receipts answer 503.
pub const QUEUE_CAPACITY: usize = 4096;

/// Why a delivery was not stored. Either way nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the webhook queue is full")]
    Full,
    #[error("could not store the webhook: {0}")]
    Storage(String),
    #[error("the server is shutting down")]
    Closed,
}

struct Job {
    delivery: Delivery,
    /// `Ok(true)` for a new delivery, `Ok(false)` for a duplicate webhook id.
    done: oneshot::Sender<Result<bool, String>>,
}

/// The sending side, shared by the webhook handlers.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Job>,
}

impl InboxWriter {
    /// Starts the writer task; it ends once every `InboxWriter` is dropped and the queue is empty.
    /// `notify` wakes the inbox worker after each commit that stored something new.
    pub fn spawn(db: DatabaseConnection, notify: Arc<Notify>) -> (InboxWriter, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        (InboxWriter { tx }, tokio::spawn(run(db, rx, notify)))
    }

    /// Stores a delivery unless its webhook id is already there; returns whether it was new.
    /// Resolves after the transaction holding it committed.
    pub async fn store(&self, delivery: Delivery) -> Result<bool, StoreError> {
        let (done, answer) = oneshot::channel();
        self.tx.try_send(Job { delivery, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Full,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?.map_err(StoreError::Storage)
    }
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>, notify: Arc<Notify>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        match insert_group(&db, &jobs).await {
            Ok(new) => {
                if new.iter().any(|n| *n) {
                    notify.notify_one();
                }
                for (job, new) in jobs.drain(..).zip(new) {
                    let _ = job.done.send(Ok(new));
                }
            }
            Err(error) => {
                tracing::error!(error = %error, deliveries = jobs.len(), "webhook group not stored");
                let message = error.to_string();
                for job in jobs.drain(..) {
                    let _ = job.done.send(Err(message.clone()));
                }
            }
        }
    }
}

/// One transaction for the group: all stored, or none (and every request answers 503).
/// A webhook id repeated inside the group is new once and a duplicate after.
async fn insert_group(db: &DatabaseConnection, jobs: &[Job]) -> Result<Vec<bool>, StorageError> {
    let txn = db.begin().await?;
    let mut new = Vec::with_capacity(jobs.len());
    for job in jobs {
        new.push(webhook_inbox::insert_if_new(&txn, &job.delivery).await?);
    }
    txn.commit().await?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DatabaseUrl;

    fn delivery(id: &str) -> Delivery {
        Delivery {
            webhook_id: id.into(),
            shop_domain: "acme.myshopify.com".into(),
            topic: "orders/create".into(),
            api_version: "2026-10".into(),
            triggered_at: None,
            event_id: None,
            body: "{}".into(),
        }
    }

    async fn db() -> DatabaseConnection {
        let db = crate::storage::connect(&DatabaseUrl::new("sqlite::memory:")).await.unwrap();
        crate::storage::migrate(&db).await.unwrap();
        db
    }

    #[tokio::test]
    async fn concurrent_deliveries_are_each_stored_once_and_duplicates_say_so() {
        let db = db().await;
        let notify = Arc::new(Notify::new());
        let (writer, task) = InboxWriter::spawn(db.clone(), notify.clone());
        let stores = (0..300).map(|i| {
            let writer = writer.clone();
            // 300 requests, 150 distinct ids: every id once new, once a duplicate.
            async move { writer.store(delivery(&format!("w-{}", i % 150))).await.unwrap() }
        });
        let results = futures_util::future::join_all(stores).await;
        assert_eq!(results.iter().filter(|new| **new).count(), 150);
        use sea_orm::EntityTrait;
        let rows = crate::storage::entities::webhook_inbox::Entity::find().all(&db).await.unwrap();
        assert_eq!(rows.len(), 150);
        drop(writer);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_group_acknowledges_nothing() {
        let db = db().await;
        let (writer, _task) = InboxWriter::spawn(db.clone(), Arc::new(Notify::new()));
        assert!(writer.store(delivery("before")).await.unwrap());
        sea_orm::ConnectionTrait::execute_unprepared(&db, "DROP TABLE webhook_inbox").await.unwrap();
        assert!(matches!(writer.store(delivery("after")).await, Err(StoreError::Storage(_))));
    }
}
