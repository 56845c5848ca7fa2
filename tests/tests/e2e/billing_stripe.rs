//! Billing of standalone sites through Stripe (the fake Stripe: Checkout, portal, cancel, webhooks
//! signed like Stripe's), and a self-hosted server that enforces no plan. On SQLite, and on
//! PostgreSQL when `GHOSTTRACK_TEST_DATABASE_URL` is set.

use fake_stripe::FakeStripe;
use ghosttrack::settings::Secret;
use ghosttrack_tests::{Spawn, TestApp, TestDb, now_ms, pg};
use serde_json::Value;

async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::Sqlite];
    if let Some(server) = pg::server_url() {
        dbs.push(TestDb::Postgres(pg::fresh_database(&server).await));
    }
    dbs
}

async fn stripe_env(db: TestDb) -> (TestApp, FakeStripe) {
    let stripe =
        FakeStripe::start("sk_test_ghosttrack", "whsec_ghosttrack", &["price_pro", "price_business"]).await.unwrap();
    let base = stripe.base_url.clone();
    let app = Spawn::default()
        .database(db)
        .configure(move |s| {
            s.billing.enabled = true;
            s.billing.stripe_api_base = base;
            s.billing.stripe_secret_key = Some(Secret::new("sk_test_ghosttrack"));
            s.billing.stripe_webhook_secret = Some(Secret::new("whsec_ghosttrack"));
            s.billing.pro.stripe_price = Some("price_pro".into());
            s.billing.business.stripe_price = Some("price_business".into());
        })
        .start()
        .await;
    stripe.set_webhook_url(&app.url("/webhooks/stripe"));
    (app, stripe)
}

async fn site_status(app: &TestApp, token: &str) -> Value {
    let resp = app.client.get(app.url("/api/billing")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn stripe_checkout_then_signed_webhook_activates_pro_and_bad_or_stale_signatures_change_nothing() {
    for db in databases().await {
        let (app, stripe) = stripe_env(db).await;
        let site = app.create_site("store.example.com").await;
        assert_eq!(site_status(&app, &site.token).await["plan"], "free");

        // The fake Stripe refuses a wrong key like Stripe.
        let resp = app
            .client
            .post(format!("{}/v1/checkout/sessions", stripe.base_url))
            .bearer_auth("sk_test_wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.text().await.unwrap().contains("Invalid API Key provided"));

        let resp = app
            .client
            .post(app.url("/api/billing/subscription"))
            .bearer_auth(&site.token)
            .json(&serde_json::json!({ "plan": "pro" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["provider"], "stripe");
        let session = stripe.session_by_url(body["url"].as_str().unwrap()).expect("a checkout session");
        assert_eq!(session.price, "price_pro");
        assert_eq!(session.client_reference_id, Some(site.id.to_string()));
        assert_eq!(session.metadata["plan"], "pro");
        assert_eq!(session.subscription_metadata["site_id"], site.id.to_string());
        assert_eq!(session.trial_period_days, Some(7));
        assert_eq!(site_status(&app, &site.token).await["plan"], "free", "an open checkout is not paid");

        // Forged and stale deliveries of a completed checkout change nothing.
        let forged = serde_json::json!({ "id": "evt_forged", "object": "event", "type": "checkout.session.completed",
            "created": now_ms() / 1000, "data": { "object": { "id": session.id, "object": "checkout.session",
            "mode": "subscription", "client_reference_id": site.id.to_string(), "customer": "cus_x",
            "subscription": "sub_x", "metadata": { "plan": "business" }, "livemode": false } } })
        .to_string();
        let now = now_ms() / 1000;
        let wrong_secret = fake_stripe::signature_header("whsec_other", now, forged.as_bytes());
        let stale = fake_stripe::signature_header(stripe.webhook_secret(), now - 301, forged.as_bytes());
        let tampered = fake_stripe::signature_header(stripe.webhook_secret(), now, b"{}");
        for header in [wrong_secret.as_str(), stale.as_str(), tampered.as_str(), "", "t=1"] {
            assert_eq!(stripe.deliver_raw(&forged, header).await.unwrap(), 400, "{header}");
        }
        assert_eq!(app.count("SELECT COUNT(*) FROM subscriptions").await, 0);
        assert_eq!(site_status(&app, &site.token).await["plan"], "free");

        // The customer pays: checkout.session.completed + customer.subscription.created.
        let (sub, statuses) = stripe.complete_checkout(&session.id).await.unwrap();
        assert_eq!(statuses, vec![200, 200]);
        let status = site_status(&app, &site.token).await;
        assert_eq!(status["plan"], "pro");
        assert_eq!(status["provider"], "stripe");
        assert_eq!(status["subscription_status"], "trialing");
        assert!(status["trial_ends_at"].is_string());

        let resp = app.client.post(app.url("/api/billing/portal")).bearer_auth(&site.token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let portal: Value = resp.json().await.unwrap();
        assert!(portal["url"].as_str().unwrap().starts_with("https://billing.stripe.com/"), "{portal}");

        // Payment trouble and recovery.
        assert_eq!(stripe.fail_invoice(&sub).await.unwrap(), 200);
        assert_eq!(site_status(&app, &site.token).await["plan"], "free");
        assert_eq!(stripe.set_subscription_status(&sub, "active").await.unwrap(), 200);
        assert_eq!(site_status(&app, &site.token).await["plan"], "pro");

        // Cancel from the panel: Stripe cancels now, the tenant is on Free.
        let resp =
            app.client.delete(app.url("/api/billing/subscription")).bearer_auth(&site.token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["plan"], "free", "{body}");
        assert_eq!(stripe.subscription(&sub).unwrap().status, "canceled");

        // Out of order: a newer cancellation, then an older "active" that must not revive it.
        let later = stripe.subscription_event(&sub, "customer.subscription.deleted", "canceled", now + 100).unwrap();
        let earlier = stripe.subscription_event(&sub, "customer.subscription.updated", "active", now + 50).unwrap();
        let sign =
            |body: &str| fake_stripe::signature_header(stripe.webhook_secret(), now_ms() / 1000, body.as_bytes());
        assert_eq!(stripe.deliver_raw(&later, &sign(&later)).await.unwrap(), 200);
        assert_eq!(stripe.deliver_raw(&earlier, &sign(&earlier)).await.unwrap(), 200);
        assert_eq!(site_status(&app, &site.token).await["plan"], "free");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_self_hosted_server_does_not_enforce_plans_or_quotas() {
    let app = ghosttrack_tests::spawn_app().await;
    let site = app.create_site("self-hosted.example.com").await;
    let status = site_status(&app, &site.token).await;
    assert_eq!(status["enforced"], false);
    assert!(status["quota"]["limit"].is_null(), "{status}");
    assert_eq!(status["quota"]["over"], false);
    assert_eq!(status["entitlements"]["features"].as_array().unwrap().len(), 8, "every feature");
    let resp = app
        .client
        .post(app.url("/api/billing/subscription"))
        .bearer_auth(&site.token)
        .json(&serde_json::json!({ "plan": "pro" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    // A wrong token is refused whatever the billing mode.
    let resp = app.client.get(app.url("/api/billing")).bearer_auth("gtk_not_a_token").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn the_evaluate_api_answers_402_until_the_plan_includes_it() {
    let (app, stripe) = stripe_env(TestDb::Sqlite).await;
    let site = app.create_site("api.example.com").await;
    let evaluate = || async {
        let body = serde_json::json!({ "site": site.key, "ip": "198.51.100.7", "method": "GET", "path": "/" });
        app.client.post(app.url("/v1/evaluate")).bearer_auth(&site.token).json(&body).send().await.unwrap()
    };
    let resp = evaluate().await;
    assert_eq!(resp.status(), 402);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_in_plan");
    assert!(body["message"].as_str().unwrap().contains("business"), "{body}");

    let resp = app
        .client
        .post(app.url("/api/billing/subscription"))
        .bearer_auth(&site.token)
        .json(&serde_json::json!({ "plan": "business" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let url: Value = resp.json().await.unwrap();
    let session = stripe.session_by_url(url["url"].as_str().unwrap()).expect("a checkout session");
    let (_, statuses) = stripe.complete_checkout(&session.id).await.unwrap();
    assert_eq!(statuses, vec![200, 200]);
    let resp = evaluate().await;
    assert_eq!(resp.status(), 200);
    let verdict: Value = resp.json().await.unwrap();
    assert_eq!(verdict["decision"], "ALLOW");
    app.stop().await;
}

#[tokio::test]
async fn exports_need_a_plan_that_includes_them_and_page_through_every_verdict() {
    let (app, stripe) = stripe_env(TestDb::Sqlite).await;
    let site = app.create_site("export.example.com").await;
    let now = now_ms();
    // Three recorded verdict changes of this site and one of another site.
    let other = app.create_site("other.example.com").await;
    for (site_id, subject) in
        [(site.id, "session:1"), (site.id, "session:2"), (other.id, "session:9"), (site.id, "ip:203.0.113.0/24")]
    {
        sea_orm::ConnectionTrait::execute_unprepared(
            &app.db,
            &format!(
                "INSERT INTO threats (site_id, subject, decision, score, reasons, evidence, ttl_secs, at, created_at) \
                 VALUES ({site_id}, '{subject}', 'BLOCK', 90, '[]', '[{{\"rule\":\"ua/automation-library\",\"count\":1}}]', 60, {now}, {now})"
            ),
        )
        .await
        .unwrap();
    }
    let range = |from: i64, to: i64| {
        let iso = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        format!("/v1/export?site={}&from={}&to={}", site.key, iso(from), iso(to))
    };
    let (client, token) = (app.client.clone(), site.token.clone());
    let base = app.url("");
    let get = |path: String| {
        let (client, token, url) = (client.clone(), token.clone(), format!("{}{path}", base.trim_end_matches('/')));
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };

    let resp = get(range(now - 60_000, now + 60_000)).await;
    assert_eq!(resp.status(), 402, "Free has no exports");
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_in_plan");

    let resp = app
        .client
        .post(app.url("/api/billing/subscription"))
        .bearer_auth(&site.token)
        .json(&serde_json::json!({ "plan": "business" }))
        .send()
        .await
        .unwrap();
    let url: Value = resp.json().await.unwrap();
    let session = stripe.session_by_url(url["url"].as_str().unwrap()).expect("a checkout session");
    stripe.complete_checkout(&session.id).await.unwrap();

    let body: Value = get(range(now - 60_000, now + 60_000)).await.json().await.unwrap();
    let subjects: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, vec!["session:1", "session:2", "ip:203.0.113.0/24"], "only this site's, in id order");
    assert_eq!(body["items"][0]["evidence"][0]["rule"], "ua/automation-library");
    assert!(body["next_after"].is_null(), "one page");
    // Outside the range: nothing; a reversed range: 400.
    let empty: Value = get(range(now + 60_000, now + 120_000)).await.json().await.unwrap();
    assert_eq!(empty["items"].as_array().unwrap().len(), 0);
    assert_eq!(get(range(now, now - 1)).await.status(), 400);
    app.stop().await;
}
