//! Standalone accounts through the real server: login cookie and CSRF token, the login rate
//! limit, logout, invitations, roles and tenancy. Each scenario runs on SQLite and, when
//! `GHOSTTRACK_TEST_DATABASE_URL` is set, on PostgreSQL.

use ghosttrack::accounts::password::Password;
use ghosttrack::accounts::{self, Role};
use ghosttrack_tests::{Spawn, TestApp, TestDb, pg};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// Runs `scenario` on SQLite, and on PostgreSQL when a server is configured.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name(super::TestDb::Sqlite).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some(server) = super::pg::server_url() else {
                    eprintln!("GHOSTTRACK_TEST_DATABASE_URL not set: PostgreSQL accounts test not run");
                    return;
                };
                super::$name(super::TestDb::Postgres(super::pg::fresh_database(&server).await)).await;
            }
        }
    };
}

async fn start(db: TestDb) -> TestApp {
    Spawn::default().database(db).start().await
}

/// A site with one user of `role`.
async fn site_with_user(app: &TestApp, domain: &str, email: &str, role: Role) {
    app.create_site(domain).await;
    accounts::create_user(&app.db, domain, email, Password::new(PASSWORD), role).await.expect("create user");
}

/// A logged-in browser: the session cookie and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login_as(app: &TestApp, email: &str, password: &str, ip: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/account/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn login(app: &TestApp, email: &str) -> Session {
    let resp = login_as(app, email, PASSWORD, "198.51.100.7").await;
    assert_eq!(resp.status(), 200);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    Session { cookie, csrf: body["csrf_token"].as_str().unwrap().to_owned() }
}

/// A request with the session cookie and (when `csrf`) its CSRF token.
async fn call(
    app: &TestApp,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).header("cookie", &s.cookie);
    if csrf {
        req = req.header("x-csrf-token", &s.csrf);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn login_sets_a_protected_cookie_and_me_returns_the_user(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "Ann@A.example", Role::Owner).await;

    let resp = login_as(&app, " ann@a.example ", PASSWORD, "198.51.100.7").await;

    assert_eq!(resp.status(), 200);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("gt_session="), "{set_cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set_cookie.split("; ").any(|a| a == attr), "{set_cookie} lacks {attr}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"], json!({ "email": "ann@a.example", "role": "owner", "site_domain": "a.example" }));
    let csrf = body["csrf_token"].as_str().unwrap();
    assert!(csrf.len() >= 40);
    // Only the hash of the cookie's secret is stored.
    let secret = set_cookie.split(';').next().unwrap().trim_start_matches("gt_session=");
    let stored = app.count(&format!("SELECT COUNT(*) FROM account_sessions WHERE token_hash = '{secret}'")).await;
    assert_eq!(stored, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM account_sessions").await, 1);

    let session = Session { cookie: set_cookie.split(';').next().unwrap().to_owned(), csrf: csrf.to_owned() };
    let me = call(&app, &session, Method::GET, "/api/account/me", None, false).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["email"], "ann@a.example");
    assert_eq!(me["csrf_token"], csrf, "the same session keeps its CSRF token");

    let anonymous = app.client.get(app.url("/api/account/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}
on_both_backends!(login_sets_a_protected_cookie_and_me_returns_the_user);

async fn wrong_password_and_unknown_email_get_the_same_401(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;

    let wrong = login_as(&app, "ann@a.example", "not the password at all", "198.51.100.7").await;
    let unknown = login_as(&app, "bob@a.example", PASSWORD, "198.51.100.7").await;

    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let (wrong, unknown): (Value, Value) = (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"], "invalid_credentials");
    assert_eq!(app.count("SELECT COUNT(*) FROM account_sessions").await, 0);
}
on_both_backends!(wrong_password_and_unknown_email_get_the_same_401);

async fn repeated_failures_are_refused_with_429_and_retry_after(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;

    for _ in 0..5 {
        assert_eq!(login_as(&app, "ann@a.example", "wrong password guess", "198.51.100.7").await.status(), 401);
    }
    // The sixth attempt is refused even with the right password, and from another network.
    let locked = login_as(&app, "ann@a.example", PASSWORD, "203.0.113.50").await;

    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body: Value = locked.json().await.unwrap();
    assert_eq!(body["error"], "too_many_attempts");
    // The table holds hashed keys only.
    assert_eq!(app.count("SELECT COUNT(*) FROM login_attempts WHERE key LIKE '%ann%' OR key LIKE '%198.51%'").await, 0);

    // Another email is not locked by Ann's failures.
    site_with_user(&app, "b.example", "bob@b.example", Role::Owner).await;
    assert_eq!(login_as(&app, "bob@b.example", PASSWORD, "203.0.113.50").await.status(), 200);
}
on_both_backends!(repeated_failures_are_refused_with_429_and_retry_after);

#[tokio::test]
async fn many_failures_from_one_network_lock_it_for_every_email() {
    let app = start(TestDb::Sqlite).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;
    for i in 0..20 {
        let ip = format!("192.0.2.{}", i + 1);
        assert_eq!(login_as(&app, &format!("guess{i}@a.example"), "wrong password guess", &ip).await.status(), 401);
    }

    let same_net = login_as(&app, "ann@a.example", PASSWORD, "192.0.2.200").await;
    let other_net = login_as(&app, "ann@a.example", PASSWORD, "192.0.3.1").await;

    assert_eq!(same_net.status(), 429);
    assert!(same_net.headers().contains_key("retry-after"));
    assert_eq!(other_net.status(), 200);
}

async fn unsafe_requests_need_the_csrf_token(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;
    let s = login(&app, "ann@a.example").await;
    let invite = json!({ "email": "carl@a.example", "role": "viewer" });

    let without = call(&app, &s, Method::POST, "/api/account/invitations", Some(invite.clone()), false).await;
    let wrong = app
        .client
        .post(app.url("/api/account/invitations"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", "forged-token")
        .json(&invite)
        .send()
        .await
        .unwrap();
    let logout_without = call(&app, &s, Method::POST, "/api/account/logout", None, false).await;
    let with = call(&app, &s, Method::POST, "/api/account/invitations", Some(invite), true).await;

    assert_eq!(without.status(), 403);
    assert_eq!(without.json::<Value>().await.unwrap()["error"], "csrf_token_invalid");
    assert_eq!(wrong.status(), 403);
    assert_eq!(logout_without.status(), 403);
    assert_eq!(with.status(), 201);
    assert_eq!(app.count("SELECT COUNT(*) FROM invitations").await, 1);
    // Safe methods need no token.
    assert_eq!(call(&app, &s, Method::GET, "/api/account/users", None, false).await.status(), 200);
}
on_both_backends!(unsafe_requests_need_the_csrf_token);

async fn logout_revokes_the_session_server_side(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;
    let s = login(&app, "ann@a.example").await;
    assert_eq!(call(&app, &s, Method::GET, "/api/account/me", None, false).await.status(), 200);

    let out = call(&app, &s, Method::POST, "/api/account/logout", None, true).await;

    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    // The old cookie, replayed, is dead even though the browser would have dropped it.
    assert_eq!(call(&app, &s, Method::GET, "/api/account/me", None, false).await.status(), 401);
    assert_eq!(call(&app, &s, Method::POST, "/api/account/logout", None, true).await.status(), 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM account_sessions WHERE revoked_at IS NOT NULL").await, 1);
}
on_both_backends!(logout_revokes_the_session_server_side);

async fn accept(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/account/invitations/accept"))
        .json(&json!({ "token": token, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn an_invitation_works_once_and_expired_ones_are_rejected(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;
    let s = login(&app, "ann@a.example").await;
    let invite = |email: &str| json!({ "email": email, "role": "analyst" });
    let created: Value = call(&app, &s, Method::POST, "/api/account/invitations", Some(invite("Dora@A.example")), true)
        .await
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["email"], "dora@a.example");
    assert!(created["accept_url"].as_str().unwrap().ends_with(&format!("/app/accept-invitation#token={token}")));
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM invitations WHERE token_hash = '{token}'")).await, 0);

    let weak = accept(&app, &token, "short").await;
    let first = accept(&app, &token, "dora's long passphrase").await;
    let second = accept(&app, &token, "dora's long passphrase").await;

    assert_eq!(weak.status(), 422, "a weak password does not use up the link");
    assert_eq!(first.status(), 201);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({ "email": "dora@a.example", "role": "analyst", "site_domain": "a.example" })
    );
    assert_eq!(second.status(), 400);
    assert_eq!(second.json::<Value>().await.unwrap()["error"], "invitation_invalid");
    assert_eq!(login_as(&app, "dora@a.example", "dora's long passphrase", "198.51.100.8").await.status(), 200);

    // An invitation past its 7 days is rejected.
    let late: Value = call(&app, &s, Method::POST, "/api/account/invitations", Some(invite("eve@a.example")), true)
        .await
        .json()
        .await
        .unwrap();
    app.db
        .execute_unprepared(&format!("UPDATE invitations SET expires_at = 1 WHERE id = {}", late["id"]))
        .await
        .unwrap();
    assert_eq!(accept(&app, late["token"].as_str().unwrap(), "eve's long passphrase").await.status(), 400);
    assert_eq!(accept(&app, "not-a-token", "eve's long passphrase").await.status(), 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 2);
}
on_both_backends!(an_invitation_works_once_and_expired_ones_are_rejected);

async fn roles_limit_user_management_and_the_last_owner_stays(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;
    accounts::create_user(&app.db, "a.example", "vic@a.example", Password::new(PASSWORD), Role::Viewer).await.unwrap();
    let owner = login(&app, "ann@a.example").await;
    let viewer = login(&app, "vic@a.example").await;

    assert_eq!(call(&app, &viewer, Method::GET, "/api/account/users", None, false).await.status(), 403);
    let invite = json!({ "email": "x@a.example", "role": "owner" });
    assert_eq!(call(&app, &viewer, Method::POST, "/api/account/invitations", Some(invite), true).await.status(), 403);

    let users: Value = call(&app, &owner, Method::GET, "/api/account/users", None, false).await.json().await.unwrap();
    let id_of = |email: &str| users.as_array().unwrap().iter().find(|u| u["email"] == email).unwrap()["id"].clone();
    let (ann, vic) = (id_of("ann@a.example"), id_of("vic@a.example"));

    let demote_self =
        call(&app, &owner, Method::PATCH, &format!("/api/account/users/{ann}"), Some(json!({"role": "viewer"})), true)
            .await;
    let remove_self = call(&app, &owner, Method::DELETE, &format!("/api/account/users/{ann}"), None, true).await;
    assert_eq!(demote_self.status(), 409);
    assert_eq!(demote_self.json::<Value>().await.unwrap()["error"], "last_owner");
    assert_eq!(remove_self.status(), 409);

    let promote =
        call(&app, &owner, Method::PATCH, &format!("/api/account/users/{vic}"), Some(json!({"role": "owner"})), true)
            .await;
    assert_eq!(promote.status(), 200);
    assert_eq!(promote.json::<Value>().await.unwrap()["role"], "owner");
    // Two owners now: Ann may step down, and the role applies to Vic's existing session at once.
    assert_eq!(call(&app, &viewer, Method::GET, "/api/account/users", None, false).await.status(), 200);
    let step_down =
        call(&app, &owner, Method::PATCH, &format!("/api/account/users/{ann}"), Some(json!({"role": "analyst"})), true)
            .await;
    assert_eq!(step_down.status(), 200);

    // Vic removes Ann: her session ends with her.
    let removed = call(&app, &viewer, Method::DELETE, &format!("/api/account/users/{ann}"), None, true).await;
    assert_eq!(removed.status(), 204);
    assert_eq!(call(&app, &owner, Method::GET, "/api/account/me", None, false).await.status(), 401);
}
on_both_backends!(roles_limit_user_management_and_the_last_owner_stays);

async fn a_user_of_one_site_never_acts_on_another(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Owner).await;
    site_with_user(&app, "b.example", "bea@b.example", Role::Owner).await;
    accounts::create_user(&app.db, "b.example", "bob@b.example", Password::new(PASSWORD), Role::Viewer).await.unwrap();
    let ann = login(&app, "ann@a.example").await;
    let bea = login(&app, "bea@b.example").await;
    let b_users: Value = call(&app, &bea, Method::GET, "/api/account/users", None, false).await.json().await.unwrap();
    let bob = b_users.as_array().unwrap().iter().find(|u| u["email"] == "bob@b.example").unwrap()["id"].clone();

    let listed: Value = call(&app, &ann, Method::GET, "/api/account/users", None, false).await.json().await.unwrap();
    let promote =
        call(&app, &ann, Method::PATCH, &format!("/api/account/users/{bob}"), Some(json!({"role": "owner"})), true)
            .await;
    let remove = call(&app, &ann, Method::DELETE, &format!("/api/account/users/{bob}"), None, true).await;
    // Bea's CSRF token does not work with Ann's cookie.
    let mixed = app
        .client
        .delete(app.url(&format!("/api/account/users/{bob}")))
        .header("cookie", &ann.cookie)
        .header("x-csrf-token", &bea.csrf)
        .send()
        .await
        .unwrap();

    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["email"], "ann@a.example");
    assert_eq!(promote.status(), 404);
    assert_eq!(remove.status(), 404);
    assert_eq!(mixed.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'bob@b.example' AND role = 'viewer'").await, 1);

    // The same email may exist on both sites; each password opens its own site.
    accounts::create_user(
        &app.db,
        "a.example",
        "bob@b.example",
        Password::new("bob's other passphrase"),
        Role::Analyst,
    )
    .await
    .unwrap();
    let resp = login_as(&app, "bob@b.example", "bob's other passphrase", "198.51.100.9").await;
    assert_eq!(resp.json::<Value>().await.unwrap()["user"]["site_domain"], "a.example");
}
on_both_backends!(a_user_of_one_site_never_acts_on_another);

#[tokio::test]
async fn the_openapi_document_describes_the_account_endpoints_and_their_statuses() {
    let app = start(TestDb::Sqlite).await;
    let doc: Value = app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();

    let login = &doc["paths"]["/account/login"]["post"];
    assert_eq!(login["operationId"], "create_account_session");
    assert_eq!(login["tags"][0], "Account");
    for status in ["200", "401", "429", "503"] {
        assert!(login["responses"].get(status).is_some(), "login {status} documented");
    }
    assert!(login["responses"]["200"]["headers"].get("SET-COOKIE").is_some());
    assert!(login["responses"]["429"]["headers"].get("RETRY-AFTER").is_some());
    let accept = &doc["paths"]["/account/invitations/accept"]["post"];
    for status in ["201", "400", "409", "422"] {
        assert!(accept["responses"].get(status).is_some(), "accept {status} documented");
    }
    assert!(doc["paths"]["/account/users/{id}"].get("delete").is_some());
}

/// The standalone panel: the session cookie is a panel credential for its own site only.
async fn the_session_cookie_opens_the_panel_api_of_its_own_site_only(db: TestDb) {
    let app = start(db).await;
    site_with_user(&app, "a.example", "ann@a.example", Role::Viewer).await;
    site_with_user(&app, "b.example", "bob@b.example", Role::Owner).await;
    let ann = login(&app, "ann@a.example").await;

    let setup = call(&app, &ann, Method::GET, "/api/panel/setup", None, false).await;
    assert_eq!(setup.status(), 200);
    let setup: Value = setup.json().await.unwrap();
    assert_eq!((setup["domain"].as_str(), setup["kind"].as_str()), (Some("a.example"), Some("standalone")));
    let bob = login(&app, "bob@b.example").await;
    let theirs: Value = call(&app, &bob, Method::GET, "/api/panel/setup", None, false).await.json().await.unwrap();
    assert_eq!(theirs["domain"], "b.example");
    let overview = call(&app, &ann, Method::GET, "/api/panel/overview", None, false).await;
    assert_eq!(overview.status(), 200, "{:?}", overview.text().await);
    // No cookie: 401 with the reason; a forged cookie: 401 without a Shopify retry header.
    let anonymous = app.client.get(app.url("/api/panel/overview")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let forged = Session { cookie: "gt_session=not-a-session".into(), csrf: String::new() };
    let resp = call(&app, &forged, Method::GET, "/api/panel/overview", None, false).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("x-shopify-retry-invalid-session-request").is_none());
    // After logout the cookie opens nothing.
    assert_eq!(call(&app, &ann, Method::POST, "/api/account/logout", None, true).await.status(), 204);
    assert_eq!(call(&app, &ann, Method::GET, "/api/panel/overview", None, false).await.status(), 401);
}
on_both_backends!(the_session_cookie_opens_the_panel_api_of_its_own_site_only);
