//! The alert tests' harness: the SMTP sink process, a recording HTTP receiver, app settings
//! with fast retries, and API helpers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ghosttrack::domain::{SiteId, UnixMillis};
use ghosttrack::settings::{Secret, Settings, SmtpTls};
use ghosttrack::storage::threats::NewThreat;
use ghosttrack_tests::{Spawn, TestApp, TestDb, TestSite, workspace_root};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

pub(super) const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef-alerts";

/// A running `tests/smtp/sink.py`; killed on drop.
pub(super) struct SmtpSink {
    child: tokio::process::Child,
    out: PathBuf,
}

impl SmtpSink {
    pub(super) async fn start(port: u16, dir: &Path, tls: Option<(&Path, &Path)>) -> SmtpSink {
        Self::start_with(port, dir, tls, false).await
    }

    /// With `implicit`, the TLS of `tls` wraps the connection from the start (SMTPS).
    pub(super) async fn start_with(port: u16, dir: &Path, tls: Option<(&Path, &Path)>, implicit: bool) -> SmtpSink {
        let out = dir.join(format!("smtp-{port}.jsonl"));
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(workspace_root().join("tests/smtp/sink.py"))
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some((cert, key)) = tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
            if implicit {
                cmd.arg("--implicit");
            }
        }
        let mut child = cmd.spawn().expect("python3 with aiosmtpd (scripts/test installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next_line().await.unwrap().unwrap_or_default();
        assert!(ready.starts_with("READY"), "SMTP sink did not start: {ready}");
        SmtpSink { child, out }
    }

    pub(super) fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub(super) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// (path, headers, body) of one received request.
pub(super) type Recorded = (String, Vec<(String, String)>, String);

/// A local HTTP receiver recording every request; answers `status` (a shared, changeable value).
#[derive(Clone, Default)]
pub(super) struct Receiver {
    pub(super) requests: Arc<Mutex<Vec<Recorded>>>,
    status: Arc<Mutex<u16>>,
}

impl Receiver {
    pub(super) async fn start() -> (Receiver, String) {
        use poem::listener::{Acceptor, Listener};
        let recv = Receiver { status: Arc::new(Mutex::new(200)), ..Default::default() };
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let r = recv.clone();
        let app = poem::endpoint::make(move |req: poem::Request| {
            let r = r.clone();
            async move {
                let path = req.uri().path().to_owned();
                let headers =
                    req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
                let body = req.into_body().into_string().await.unwrap_or_default();
                r.requests.lock().unwrap().push((path, headers, body));
                let status = *r.status.lock().unwrap();
                poem::Response::builder().status(poem::http::StatusCode::from_u16(status).unwrap()).finish()
            }
        });
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        (recv, format!("http://{addr}"))
    }

    pub(super) fn set_status(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    pub(super) fn on(&self, path: &str) -> Vec<(Vec<(String, String)>, String)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, h, b)| (h.clone(), b.clone()))
            .collect()
    }
}

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
}

pub(super) fn alert_settings(s: &mut Settings, smtp_port: u16) {
    s.secret_key = Some(Secret::new(SECRET_KEY));
    s.alerts.smtp_host = Some("127.0.0.1".into());
    s.alerts.smtp_port = smtp_port;
    s.alerts.smtp_tls = SmtpTls::None;
    s.alerts.email_from = "GhostTrack <alerts@ghosttrack.test>".into();
    s.alerts.retry_base_ms = 100;
    s.alerts.retry_max_ms = 500;
    s.alerts.poll_interval_ms = 50;
    s.alerts.tick_interval_ms = 3_600_000;
    s.alerts.lease_ms = 30_000;
    s.alerts.send_timeout_secs = 5;
    // The receivers listen on 127.0.0.1.
    s.alerts.allow_private_targets = true;
}

pub(super) async fn spawn(smtp_port: u16, db: TestDb) -> TestApp {
    Spawn::default().database(db).configure(move |s| alert_settings(s, smtp_port)).start().await
}

/// Polls `check` until it holds; panics with `what` after a minute (never reached when working).
pub(super) async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(super) async fn api(
    app: &TestApp,
    site: &TestSite,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1/alerts{path}{sep}site={}", site.key)))
        .bearer_auth(&site.token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

pub(super) async fn create_channel(app: &TestApp, site: &TestSite, body: Value) -> Value {
    let resp = api(app, site, reqwest::Method::POST, "/channels", Some(body)).await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

pub(super) async fn put_policy(app: &TestApp, site: &TestSite, change: impl FnOnce(&mut Value)) {
    let mut policy: Value = api(app, site, reqwest::Method::GET, "/policy", None).await.json().await.unwrap();
    change(&mut policy);
    let resp = api(app, site, reqwest::Method::PUT, "/policy", Some(policy)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

pub(super) fn card_threat(site: i64, subject: &str, rule: &str, at: i64) -> NewThreat {
    NewThreat {
        site_id: SiteId(site),
        subject: subject.into(),
        decision: "BLOCK",
        score: 86,
        reasons_json: json!([{"rule": rule, "sentence": "12 failed payments from 203.0.113.0/24 in 10 minutes (last from 203.0.113.77)."}]).to_string(),
        evidence_json: "[]".into(),
        ttl_secs: 3600,
        at: UnixMillis(at),
    }
}

pub(super) async fn statuses(app: &TestApp) -> Vec<String> {
    use ghosttrack::storage::entities::alert_outbox;
    use sea_orm::{EntityTrait, QueryOrder};
    alert_outbox::Entity::find()
        .order_by_asc(alert_outbox::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect()
}
