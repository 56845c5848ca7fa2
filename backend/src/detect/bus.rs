//! Wake-ups for the live threat feed (`api/panel/live.rs`): after the recorder commits verdict
//! changes, it announces the tenants they belong to. Feeds on this node hear it at once; with
//! Redis (`detect.redis_url`) the announcement is also published on `{redis_prefix}:threats`
//! and every other node's subscriber passes it to its own feeds. A wake-up carries only the
//! tenant id: each feed then reads the `threats` table after its cursor, so the database stays
//! the one source of what a feed shows, and a lost message costs latency, never a verdict
//! (feeds still poll, slowly while the subscription is up, quickly while it is not).
//!
//! The Redis client is blocking, so the publisher and the subscriber are two small threads;
//! both reconnect on their own and log an outage once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::broadcast;

use super::redis_store::{CONNECT_TIMEOUT, IO_TIMEOUT};
use crate::domain::SiteId;

/// Wake-ups a slow feed may miss before it just re-reads (it then gets `Lagged` and reads).
const CAPACITY: usize = 1024;
/// Pause between reconnection attempts.
const RECONNECT_EVERY: Duration = Duration::from_secs(2);
/// The subscriber wakes this often to notice that the bus is gone.
const SUBSCRIBER_TICK: Duration = Duration::from_secs(1);

pub struct ThreatBus {
    local: broadcast::Sender<SiteId>,
    redis: Option<RedisLink>,
}

struct RedisLink {
    publish: mpsc::Sender<SiteId>,
    /// Set by the subscriber while it is subscribed.
    subscribed: Arc<AtomicBool>,
    /// Tells the subscriber thread to end.
    closed: Arc<AtomicBool>,
}

impl Drop for ThreatBus {
    fn drop(&mut self) {
        if let Some(link) = &self.redis {
            link.closed.store(true, Ordering::Relaxed);
        }
    }
}

impl ThreatBus {
    /// A bus for one node: only this node's feeds hear its announcements.
    pub fn local() -> Arc<ThreatBus> {
        Arc::new(ThreatBus { local: broadcast::channel(CAPACITY).0, redis: None })
    }

    /// A bus shared through Redis at `url` on channel `channel`. `remote` counts wake-ups that
    /// came from other nodes. Only a malformed URL is an error; an unreachable Redis is retried.
    pub fn with_redis(url: &str, channel: String, remote: Counter) -> redis::RedisResult<Arc<ThreatBus>> {
        let client = redis::Client::open(url)?;
        let local = broadcast::channel(CAPACITY).0;
        // Each node ignores its own messages: its feeds were woken directly.
        let node: u64 = rand::random();
        let (publish, queue) = mpsc::channel();
        let subscribed = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        {
            let (client, channel) = (client.clone(), channel.clone());
            std::thread::Builder::new()
                .name("threat-bus-pub".into())
                .spawn(move || publisher(client, channel, node, queue))
                .map_err(io_error)?;
        }
        {
            let (local, subscribed, closed) = (local.clone(), subscribed.clone(), closed.clone());
            std::thread::Builder::new()
                .name("threat-bus-sub".into())
                .spawn(move || subscriber(client, channel, node, local, subscribed, closed, remote))
                .map_err(io_error)?;
        }
        Ok(Arc::new(ThreatBus { local, redis: Some(RedisLink { publish, subscribed, closed }) }))
    }

    /// Verdict changes of `site` were committed.
    pub fn announce(&self, site: SiteId) {
        let _ = self.local.send(site);
        if let Some(link) = &self.redis {
            let _ = link.publish.send(site);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SiteId> {
        self.local.subscribe()
    }

    /// Whether announcements of other nodes arrive (Redis subscription up). When not, feeds
    /// must poll the database often to see other nodes' verdicts.
    pub fn hears_other_nodes(&self) -> bool {
        self.redis.as_ref().is_some_and(|link| link.subscribed.load(Ordering::Relaxed))
    }
}

fn io_error(error: std::io::Error) -> redis::RedisError {
    redis::RedisError::from(error)
}

fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// Publishes `{node}:{site}` for every announced site until the bus is dropped. Announcements
/// made while Redis is down are not kept: the other nodes' feeds poll meanwhile.
fn publisher(client: redis::Client, channel: String, node: u64, queue: mpsc::Receiver<SiteId>) {
    let mut conn: Option<redis::Connection> = None;
    let mut failing = false;
    while let Ok(first) = queue.recv() {
        let mut sites = vec![first];
        sites.extend(queue.try_iter());
        sites.sort_unstable();
        sites.dedup();
        let result = (|| {
            if conn.is_none() {
                let c = connect(&client)?;
                c.set_read_timeout(Some(IO_TIMEOUT))?;
                conn = Some(c);
            }
            let c = conn.as_mut().expect("connected above");
            for site in &sites {
                redis::cmd("PUBLISH").arg(&channel).arg(format!("{node}:{}", site.0)).exec(c)?;
            }
            Ok::<(), redis::RedisError>(())
        })();
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("live feed publishing through Redis again");
            }
            Ok(()) => {}
            Err(error) => {
                conn = None;
                if !failing {
                    failing = true;
                    tracing::warn!(error = %error, "cannot publish live feed wake-ups to Redis; other nodes poll");
                }
            }
        }
    }
}

/// Subscribes to `channel` and passes other nodes' wake-ups to this node's feeds, reconnecting
/// until `closed`.
fn subscriber(
    client: redis::Client,
    channel: String,
    node: u64,
    local: broadcast::Sender<SiteId>,
    subscribed: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    remote: Counter,
) {
    let mut reported = false;
    while !closed.load(Ordering::Relaxed) {
        let outcome = (|| {
            let mut conn = connect(&client)?;
            let mut pubsub = conn.as_pubsub();
            pubsub.subscribe(&channel)?;
            pubsub.set_read_timeout(Some(SUBSCRIBER_TICK))?;
            subscribed.store(true, Ordering::Relaxed);
            if reported {
                reported = false;
                tracing::info!("live feed subscribed to Redis again");
            }
            loop {
                if closed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let msg = match pubsub.get_message() {
                    Ok(msg) => msg,
                    Err(error) if error.is_timeout() => continue,
                    Err(error) => return Err(error),
                };
                let payload: String = msg.get_payload().unwrap_or_default();
                let Some((from, site)) = payload.split_once(':') else { continue };
                if from == node.to_string() {
                    continue;
                }
                if let Ok(site) = site.parse::<i64>() {
                    remote.inc();
                    let _ = local.send(SiteId(site));
                }
            }
        })();
        subscribed.store(false, Ordering::Relaxed);
        if let Err(error) = outcome {
            if !reported {
                reported = true;
                tracing::warn!(error = %error, "live feed lost its Redis subscription; feeds poll until it is back");
            }
            std::thread::sleep(RECONNECT_EVERY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn announcements_wake_local_feeds() {
        let bus = ThreatBus::local();
        let mut feed = bus.subscribe();
        bus.announce(SiteId(7));
        assert_eq!(feed.recv().await.unwrap(), SiteId(7));
        assert!(!bus.hears_other_nodes());
    }

    /// Runs when `GHOSTTRACK_TEST_REDIS_URL` is set: two buses on one channel are two nodes.
    #[tokio::test]
    async fn an_announcement_on_one_node_wakes_the_feeds_of_another_through_redis() {
        let Ok(url) = std::env::var("GHOSTTRACK_TEST_REDIS_URL") else {
            eprintln!("GHOSTTRACK_TEST_REDIS_URL not set: Redis live bus test not run");
            return;
        };
        let channel = format!("gt-test-{}:threats", rand::random::<u64>());
        let (a_remote, b_remote) = (Counter::default(), Counter::default());
        let a = ThreatBus::with_redis(&url, channel.clone(), a_remote.clone()).unwrap();
        let b = ThreatBus::with_redis(&url, channel, b_remote.clone()).unwrap();
        for _ in 0..100 {
            if a.hears_other_nodes() && b.hears_other_nodes() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(a.hears_other_nodes() && b.hears_other_nodes(), "both subscribed");
        let mut on_b = b.subscribe();
        a.announce(SiteId(42));
        let woken = tokio::time::timeout(Duration::from_secs(10), on_b.recv()).await.expect("wake-up arrives");
        assert_eq!(woken.unwrap(), SiteId(42));
        assert_eq!((b_remote.get(), a_remote.get()), (1, 0), "a node ignores its own messages");
    }
}
