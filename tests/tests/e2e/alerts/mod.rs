//! Alerts end to end: a real SMTP server process (aiosmtpd, `tests/smtp/sink.py`), local HTTP
//! receivers for Slack, Discord and the signed webhook, failure injection (SMTP down, a
//! receiver refusing, two workers on one database) and a storm of 10,000 threats.

mod harness;
mod tls;

use ghosttrack::alerts::record::{record_threats, tick_site};
use ghosttrack::domain::{SiteId, UnixMillis};
use ghosttrack::storage::threats::NewThreat;
use ghosttrack_tests::{Spawn, TestDb, now_ms, pg};
use harness::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_card_testing_alert_email_arrives_with_both_bodies_the_session_link_and_list_unsubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = SmtpSink::start(port, dir.path(), None).await;
    let app = spawn(port, TestDb::Sqlite).await;
    let site = app.create_site("shop.example").await;
    let channel =
        create_channel(&app, &site, json!({"kind": "email", "name": "Owner", "to": ["owner@shop.example"]})).await;
    let channel_id = channel["channel"]["id"].as_i64().unwrap();

    // The recorder's transaction, as the detector's recorder task calls it.
    let written = record_threats(
        &app.db,
        &[card_threat(site.id, "session:4242", "card/ct1-ip-failures-block", now_ms())],
        UnixMillis::now(),
    )
    .await
    .unwrap();
    assert_eq!(written, 1);
    wait_for("the email", || async { sink.messages().len() == 1 }).await;

    let m = &sink.messages()[0];
    assert_eq!(m["rcpt_tos"], json!(["owner@shop.example"]));
    let h = &m["headers"];
    assert_eq!(h["subject"], "[GhostTrack] Card testing detected (BLOCK, score 86) — shop.example");
    assert_eq!(h["from"], "GhostTrack <alerts@ghosttrack.test>");
    let message_id = h["message-id"].as_str().unwrap();
    assert!(
        message_id.starts_with("<gt-") && message_id.ends_with(&format!("-{channel_id}@ghosttrack.test>")),
        "{message_id}"
    );
    let unsubscribe = h["list-unsubscribe"].as_str().unwrap();
    assert!(
        unsubscribe.starts_with(&format!("<{}/api/v1/alerts/unsubscribe?channel={channel_id}&token=", app.base_url)),
        "{unsubscribe}"
    );
    assert_eq!(h["list-unsubscribe-post"], "List-Unsubscribe=One-Click");
    let text = m["text"].as_str().unwrap();
    let link = format!("{}/app/sessions/4242", app.base_url);
    assert!(text.contains(&format!("Open in GhostTrack: {link}")), "{text}");
    assert!(text.contains("Subject: session 4242"), "{text}");
    assert!(m["html"].as_str().unwrap().contains(&format!("<a href=\"{link}\">")));
    // The full IP in the rule's sentence was masked; the /24 prefix stays.
    assert!(
        !text.contains("203.0.113.77") && text.contains("203.0.113.x") && text.contains("203.0.113.0/24"),
        "{text}"
    );
    println!("---- rendered alert email (text part) ----\n{text}---- end ----");

    // The unsubscribe link turns the channel off.
    let url = unsubscribe.trim_start_matches('<').trim_end_matches('>');
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
    let channels: Value = api(&app, &site, reqwest::Method::GET, "/channels", None).await.json().await.unwrap();
    assert_eq!(channels[0]["enabled"], false);
    assert_eq!(app.client.get(url.replace("token=", "token=00")).send().await.unwrap().status(), 404);
    sink.stop().await;
}

#[tokio::test]
async fn evaluate_verdicts_become_a_burst_alert_on_slack_discord_and_a_signed_webhook() {
    let (recv, base) = Receiver::start().await;
    let app = spawn(free_port(), TestDb::Sqlite).await;
    let site = app.create_site("shop.example").await;
    put_policy(&app, &site, |p| p["burst_subjects"] = json!(2)).await;
    create_channel(&app, &site, json!({"kind": "slack", "name": "Slack", "url": format!("{base}/slack")})).await;
    create_channel(&app, &site, json!({"kind": "discord", "name": "Discord", "url": format!("{base}/discord")})).await;
    let hook_ch =
        create_channel(&app, &site, json!({"kind": "webhook", "name": "SIEM", "url": format!("{base}/hook")})).await;
    let secret = hook_ch["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed: Value = api(&app, &site, reqwest::Method::GET, "/channels", None).await.json().await.unwrap();
    assert!(!listed.to_string().contains("/slack") && !listed.to_string().contains(&secret), "{listed}");

    for ip in ["198.51.100.9", "198.51.100.10"] {
        let resp = app
            .client
            .post(app.url("/v1/evaluate"))
            .bearer_auth(&site.token)
            .json(&json!({"site": site.key, "path": "/", "user_agent": "sqlmap/1.8", "ip": ip}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    wait_for("three deliveries", || async { recv.requests.lock().unwrap().len() >= 3 }).await;

    let (sh, slack) = recv.on("/slack").pop().unwrap();
    let slack: Value = serde_json::from_str(&slack).unwrap();
    assert_eq!(slack["text"], "2 high-risk sessions within 10 minutes — shop.example");
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(slack["blocks"][1]["text"]["type"], "mrkdwn");
    assert!(header(&sh, "idempotency-key").starts_with("gt-"));

    let (_, discord) = recv.on("/discord").pop().unwrap();
    let discord: Value = serde_json::from_str(&discord).unwrap();
    assert_eq!(discord["content"], "GhostTrack alert for shop.example: 2 high-risk sessions within 10 minutes");
    assert_eq!(discord["embeds"][0]["title"], "2 high-risk sessions within 10 minutes");
    assert_eq!(discord["embeds"][0]["url"], format!("{}/app/threats", app.base_url));
    assert_eq!(discord["allowed_mentions"], json!({"parse": []}));

    let (hh, body) = recv.on("/hook").pop().unwrap();
    let ts = header(&hh, "ghosttrack-timestamp");
    assert_eq!(
        header(&hh, "ghosttrack-signature"),
        ghosttrack::alerts::channels::webhook::signature(&secret, ts.parse().unwrap(), &body)
    );
    let hook: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(hook["type"], "high_risk_burst");
    assert!(hook["details"][0].as_str().unwrap().starts_with("ua/"), "{hook}");
    let hook_channel = hook_ch["channel"]["id"].as_i64().unwrap();
    assert_eq!(header(&hh, "idempotency-key"), format!("gt-{}-{hook_channel}", hook["id"].as_str().unwrap()));
    // No shopper IP anywhere.
    for (_, _, b) in recv.requests.lock().unwrap().iter() {
        assert!(!b.contains("198.51.100"), "{b}");
    }
}

#[tokio::test]
async fn policy_errors_name_the_field_and_the_tenant_comes_only_from_the_token() {
    let app = spawn(free_port(), TestDb::Sqlite).await;
    let a = app.create_site("a.example").await;
    let b = app.create_site("b.example").await;
    let policy: Value = api(&app, &a, reqwest::Method::GET, "/policy", None).await.json().await.unwrap();
    assert_eq!(policy["decisions"], json!(["BLOCK"]));
    assert_eq!(policy["card_testing"], true);
    assert_eq!(policy["burst_subjects"], 5);
    assert_eq!(policy["traffic"], false);

    let mut bad = policy.clone();
    bad["burst_window_minutes"] = json!(0);
    let resp = api(&app, &a, reqwest::Method::PUT, "/policy", Some(bad)).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "burst_window_minutes");
    assert!(body["message"].as_str().unwrap().contains("between 1 and 1440"), "{body}");

    // Fields left out take their default; unknown fields are refused.
    let resp = api(&app, &a, reqwest::Method::PUT, "/policy", Some(json!({"burst_subjects": 3}))).await;
    assert_eq!(resp.status(), 200);
    let partial: Value = resp.json().await.unwrap();
    assert_eq!((partial["burst_subjects"].clone(), partial["cooldown_minutes"].clone()), (json!(3), json!(60)));
    let typo = api(&app, &a, reqwest::Method::PUT, "/policy", Some(json!({"burst_subject": 3}))).await;
    assert_eq!(typo.status(), 400);
    assert!(typo.text().await.unwrap().contains("burst_subject"));

    let mut tz = policy.clone();
    tz["quiet_hours"] = json!({"from": "22:00", "to": "7am"});
    let body: Value = api(&app, &a, reqwest::Method::PUT, "/policy", Some(tz)).await.json().await.unwrap();
    assert_eq!(body["field"], "quiet_hours.to");

    let resp = api(
        &app,
        &a,
        reqwest::Method::POST,
        "/channels",
        Some(json!({"kind": "slack", "name": "x", "url": "http://example.com/x"})),
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.json::<Value>().await.unwrap()["field"], "url");
    let resp = api(
        &app,
        &a,
        reqwest::Method::POST,
        "/channels",
        Some(json!({"kind": "email", "name": "x", "to": ["not-an-address"]})),
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["field"], "to[0]");

    // a's token naming b's site: not found; no token: 401; b cannot touch a's channel.
    let cross = app
        .client
        .get(app.url(&format!("/api/v1/alerts/policy?site={}", b.key)))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 404);
    let anon = app.client.get(app.url(&format!("/api/v1/alerts/policy?site={}", a.key))).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let ch = create_channel(&app, &a, json!({"kind": "email", "name": "x", "to": ["o@a.example"]})).await;
    let id = ch["channel"]["id"].as_i64().unwrap();
    assert_eq!(api(&app, &b, reqwest::Method::DELETE, &format!("/channels/{id}"), None).await.status(), 404);
    assert_eq!(api(&app, &b, reqwest::Method::POST, &format!("/channels/{id}/test"), None).await.status(), 404);
    assert_eq!(api(&app, &a, reqwest::Method::DELETE, &format!("/channels/{id}"), None).await.status(), 204);
}

#[tokio::test]
async fn channel_kinds_follow_the_plan_when_billing_is_enforced() {
    let port = free_port();
    let app = Spawn::default()
        .configure(move |s| {
            alert_settings(s, port);
            s.billing.enabled = true;
        })
        .start()
        .await;
    let site = app.create_site("shop.example").await;
    // Free includes email only.
    let slack = json!({ "kind": "slack", "name": "ops", "url": "http://127.0.0.1:9/hook" });
    let resp = api(&app, &site, reqwest::Method::POST, "/channels", Some(slack)).await;
    assert_eq!(resp.status(), 402);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_in_plan");
    create_channel(&app, &site, json!({ "kind": "email", "name": "owner", "to": ["owner@shop.example"] })).await;

    // Without enforcement (self-hosted default) every kind is allowed.
    let open = spawn(free_port(), TestDb::Sqlite).await;
    let site = open.create_site("shop.example").await;
    create_channel(&open, &site, json!({ "kind": "slack", "name": "ops", "url": "http://127.0.0.1:9/hook" })).await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_alerts_api_with_its_statuses() {
    let app = spawn(free_port(), TestDb::Sqlite).await;
    let doc: Value = app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let expect = [
        ("/v1/alerts/policy", "get", "get_alert_policy", &["200", "401", "404", "503"][..]),
        ("/v1/alerts/policy", "put", "put_alert_policy", &["200", "401", "404", "422", "503"]),
        ("/v1/alerts/channels", "get", "list_alert_channels", &["200", "401", "404"]),
        ("/v1/alerts/channels", "post", "create_alert_channel", &["201", "402", "409", "422"]),
        ("/v1/alerts/channels/{id}", "delete", "delete_alert_channel", &["204", "404"]),
        ("/v1/alerts/channels/{id}/test", "post", "send_test_alert", &["202", "404", "409"]),
        ("/v1/alerts/deliveries", "get", "list_alert_deliveries", &["200"]),
        ("/v1/alerts/deliveries/{id}/retry", "post", "retry_alert_delivery", &["202", "404", "409"]),
    ];
    for (path, method, id, statuses) in expect {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{path} {method}");
        assert_eq!(op["tags"], json!(["Alerts"]), "{path} {method}");
        for status in statuses {
            assert!(op["responses"].get(status).is_some(), "{id}: {status} documented");
        }
    }
}

#[tokio::test]
async fn with_smtp_down_alerts_are_retried_and_all_delivered_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app = spawn(port, TestDb::Sqlite).await;
    let site = app.create_site("shop.example").await;
    create_channel(&app, &site, json!({"kind": "email", "name": "Owner", "to": ["owner@shop.example"]})).await;
    let now = now_ms();
    let threats: Vec<NewThreat> = ["card/ct1-ip-failures-block", "card/ct2-distinct-cards", "card/ct3-distinct-bins"]
        .iter()
        .enumerate()
        .map(|(i, rule)| card_threat(site.id, &format!("session:{i}"), rule, now))
        .collect();
    assert_eq!(record_threats(&app.db, &threats, UnixMillis::now()).await.unwrap(), 3);

    // Nothing listens on the port: every delivery fails and is rescheduled.
    wait_for("failed attempts", || async {
        app.count("SELECT COUNT(*) FROM alert_outbox WHERE attempts >= 2 AND status = 'pending'").await == 3
    })
    .await;
    let deliveries: Value =
        api(&app, &site, reqwest::Method::GET, "/deliveries?status=pending", None).await.json().await.unwrap();
    assert!(deliveries[0]["last_error"].as_str().unwrap().contains("SMTP"), "{deliveries}");

    let sink = SmtpSink::start(port, dir.path(), None).await;
    wait_for("three delivered", || async { statuses(&app).await == ["delivered"; 3] }).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 3);
    let mut ids: Vec<&str> = messages.iter().map(|m| m["headers"]["message-id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    sink.stop().await;
}

#[tokio::test]
async fn a_refused_delivery_becomes_a_dead_letter_that_can_be_retried() {
    let (recv, base) = Receiver::start().await;
    recv.set_status(410);
    let app = spawn(free_port(), TestDb::Sqlite).await;
    let site = app.create_site("shop.example").await;
    let ch = create_channel(&app, &site, json!({"kind": "discord", "name": "D", "url": format!("{base}/d")})).await;
    let id = ch["channel"]["id"].as_i64().unwrap();
    let resp = api(&app, &site, reqwest::Method::POST, &format!("/channels/{id}/test"), None).await;
    assert_eq!(resp.status(), 202);

    wait_for("a dead letter", || async { statuses(&app).await == ["dead"] }).await;
    let dead: Value =
        api(&app, &site, reqwest::Method::GET, "/deliveries?status=dead", None).await.json().await.unwrap();
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["last_error"], "receiver answered 410 Gone");
    assert_eq!(dead[0]["title"], "Test alert");
    let delivery = dead[0]["id"].as_i64().unwrap();

    recv.set_status(204);
    assert_eq!(
        api(&app, &site, reqwest::Method::POST, &format!("/deliveries/{delivery}/retry"), None).await.status(),
        202
    );
    wait_for("delivered after retry", || async { statuses(&app).await == ["delivered"] }).await;
    assert_eq!(
        api(&app, &site, reqwest::Method::POST, &format!("/deliveries/{delivery}/retry"), None).await.status(),
        409
    );
    assert_eq!(recv.on("/d").len(), 2);
}

#[tokio::test]
async fn two_workers_on_one_sqlite_file_deliver_each_alert_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("shared.db").display());
    two_workers_on(url.clone(), url).await;
}

async fn two_workers_on(first_url: String, second_url: String) {
    // Spawn's SQLite default is a private file; point both servers at one database instead.
    let (recv, base) = Receiver::start().await;
    let start = |url: String| {
        Spawn::default()
            .configure(move |s| {
                alert_settings(s, free_port());
                s.database_url = Some(ghosttrack::settings::DatabaseUrl::new(url));
            })
            .start()
    };
    let first = start(first_url).await;
    let second = start(second_url).await;
    let site = first.create_site("shop.example").await;
    let ch = create_channel(&first, &site, json!({"kind": "webhook", "name": "W", "url": format!("{base}/w")})).await;
    let id = ch["channel"]["id"].as_i64().unwrap();
    for i in 0..40 {
        let app = if i % 2 == 0 { &first } else { &second };
        assert_eq!(api(app, &site, reqwest::Method::POST, &format!("/channels/{id}/test"), None).await.status(), 202);
    }
    wait_for("forty delivered", || async { statuses(&first).await.iter().filter(|s| *s == "delivered").count() == 40 })
        .await;
    let requests = recv.on("/w");
    let mut keys: Vec<String> = requests.iter().map(|(h, _)| header(h, "idempotency-key").to_owned()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((requests.len(), keys.len()), (40, 40));
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn two_workers_on_one_postgres_database_deliver_each_alert_exactly_once() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL alert test").await else { return };
    two_workers_on(url.clone(), url).await;
}

/// Two recorders (two pool connections, as two nodes would be) record halves of one burst at the
/// same time: the per-tenant lock makes them share one burst window, so exactly one alert.
async fn concurrent_recorders_share_one_burst_window(db: TestDb) {
    let app = spawn(free_port(), db).await;
    for round in 0..10 {
        let site = app.create_site(&format!("shop{round}.example")).await;
        put_policy(&app, &site, |p| p["burst_subjects"] = json!(4)).await;
        create_channel(&app, &site, json!({"kind": "email", "name": "Owner", "to": ["owner@shop.example"]})).await;
        let now = now_ms();
        let bot = |i: i64| NewThreat {
            reasons_json: json!([{"rule": "ua/automation-library", "sentence": "Automation."}]).to_string(),
            ..card_threat(site.id, &format!("session:{i}"), "", now + i)
        };
        let (a, b) = (vec![bot(1), bot(2)], vec![bot(3), bot(4)]);
        let (ra, rb) = tokio::join!(
            record_threats(&app.db, &a, UnixMillis::now()),
            record_threats(&app.db, &b, UnixMillis::now())
        );
        assert_eq!(ra.unwrap() + rb.unwrap(), 1, "round {round}: one burst alert");
    }
}

#[tokio::test]
async fn concurrent_recorders_on_sqlite_share_one_burst_window() {
    concurrent_recorders_share_one_burst_window(TestDb::Sqlite).await;
}

#[tokio::test]
async fn concurrent_recorders_on_postgres_share_one_burst_window() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL alert test").await else { return };
    concurrent_recorders_share_one_burst_window(TestDb::Postgres(url)).await;
}

#[tokio::test]
async fn a_storm_of_ten_thousand_threats_sends_a_handful_of_emails() {
    storm(TestDb::Sqlite).await;
}

#[tokio::test]
async fn a_storm_of_ten_thousand_threats_on_postgres_sends_a_handful_of_emails() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL alert test").await else { return };
    storm(TestDb::Postgres(url)).await;
}

async fn storm(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = SmtpSink::start(port, dir.path(), None).await;
    let app = spawn(port, db).await;
    let site = app.create_site("shop.example").await;
    put_policy(&app, &site, |p| {
        p["digest"] = json!(true);
        p["digest_hour"] = json!(0);
    })
    .await;
    create_channel(&app, &site, json!({"kind": "email", "name": "Owner", "to": ["owner@shop.example"]})).await;

    let start = now_ms() - 20 * 60_000;
    let threats: Vec<NewThreat> = (0..10_000i64)
        .map(|i| {
            let at = start + i * 100;
            if i % 2 == 0 {
                card_threat(site.id, &format!("session:{i}"), "card/ct1-ip-failures-block", at)
            } else {
                NewThreat {
                    reasons_json: json!([{"rule": "ua/automation-library", "sentence": "Automation."}]).to_string(),
                    ..card_threat(site.id, &format!("session:{i}"), "", at)
                }
            }
        })
        .collect();
    let mut queued = 0;
    for batch in threats.chunks(500) {
        queued += record_threats(&app.db, batch, UnixMillis::now()).await.unwrap();
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM threats").await, 10_000);
    // The periodic job (as the worker runs it): the daily digest sums the storm up.
    queued += tick_site(&app.db, SiteId(site.id), UnixMillis::now()).await.unwrap();
    assert_eq!(queued, 3);
    wait_for("three emails", || async { sink.messages().len() == 3 }).await;
    let mut subjects: Vec<String> =
        sink.messages().iter().map(|m| m["headers"]["subject"].as_str().unwrap().to_owned()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        vec![
            "[GhostTrack] 5 high-risk sessions within 10 minutes — shop.example",
            "[GhostTrack] Card testing detected (BLOCK, score 86) — shop.example",
            "[GhostTrack] Daily digest: 10000 alerting verdicts — shop.example",
        ]
    );
    sink.stop().await;
}

/// An owner's logged-in session on `domain`: (cookie, CSRF token).
async fn owner_session(app: &ghosttrack_tests::TestApp, domain: &str, email: &str) -> (String, String) {
    use ghosttrack::accounts::{self, Role, password::Password};
    const PASSWORD: &str = "correct horse battery staple";
    app.create_site(domain).await;
    accounts::create_user(&app.db, domain, email, Password::new(PASSWORD), Role::Owner).await.unwrap();
    let resp = app
        .client
        .post(app.url("/api/account/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn invite(app: &ghosttrack_tests::TestApp, session: &(String, String), email: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/api/account/invitations"))
        .header("cookie", &session.0)
        .header("x-csrf-token", &session.1)
        .json(&json!({ "email": email, "role": "analyst" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn an_invitation_email_with_the_accept_link_reaches_the_invitee_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = SmtpSink::start(port, dir.path(), None).await;
    let app = spawn(port, TestDb::Sqlite).await;
    let owner = owner_session(&app, "a.example", "ann@a.example").await;

    let created = invite(&app, &owner, "Dora@A.example").await;
    assert_eq!(created["email_sent"], true, "{created}");
    assert!(created.get("email_note").is_none_or(Value::is_null), "{created}");
    let accept_url = created["accept_url"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    wait_for("the invitation email", || async { sink.messages().len() == 1 }).await;

    let m = &sink.messages()[0];
    assert_eq!(m["rcpt_tos"], json!(["dora@a.example"]));
    let h = &m["headers"];
    assert_eq!(h["subject"], "You are invited to a.example on GhostTrack");
    assert_eq!(h["from"], "GhostTrack <alerts@ghosttrack.test>");
    assert_eq!(h["message-id"], format!("<gt-invitation-{}@ghosttrack.test>", created["id"]));
    let text = m["text"].as_str().unwrap();
    assert!(text.lines().any(|l| l.trim_end() == accept_url), "{text}");
    assert!(text.contains("as analyst"), "{text}");
    assert!(m["html"].as_str().unwrap().contains(&format!("<a href=\"{accept_url}\">")));
    // The stored outbox row is sealed: neither the token nor the address is readable. The worker
    // marks the row delivered after the SMTP server has the message, so wait for that too.
    let sql = format!(
        "SELECT COUNT(*) FROM alert_outbox WHERE kind = 'invitation' AND status = 'delivered' AND payload NOT LIKE '%{token}%' AND payload NOT LIKE '%dora%'"
    );
    wait_for("the sealed outbox row marked delivered", || async { app.count(&sql).await == 1 }).await;
    // The link in the email works.
    let emailed = text.lines().find(|l| l.contains("#token=")).unwrap().split("#token=").nth(1).unwrap().trim_end();
    let accepted = app
        .client
        .post(app.url("/api/account/invitations/accept"))
        .json(&json!({ "token": emailed, "password": "dora's long passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    sink.stop().await;
}

#[tokio::test]
async fn without_smtp_the_invitation_returns_the_link_and_says_no_email_was_sent() {
    let app = Spawn::default().start().await;
    let owner = owner_session(&app, "b.example", "bob@b.example").await;
    let created = invite(&app, &owner, "carl@b.example").await;
    assert_eq!(created["email_sent"], false, "{created}");
    assert!(created["email_note"].as_str().unwrap().contains("alerts.smtp_host"), "{created}");
    assert!(created["accept_url"].as_str().unwrap().contains("/app/accept-invitation#token="));
    assert_eq!(app.count("SELECT COUNT(*) FROM alert_outbox").await, 0);
}
