//! The standalone panel's sign-in in a real browser (tests/browser/login.mjs): an invitation
//! link sets a password and signs the invitee (an analyst) in, whose Privacy page shows the
//! payload-encryption switch disabled with the reason; the login page passes axe-core; a wrong
//! password says so; the right one opens the panel on a cookie session; sign-out ends it; the
//! login rate limit's message says when to retry.

use ghosttrack::accounts::password::Password;
use ghosttrack::accounts::{self, Role};
use ghosttrack_tests::{Spawn, TestDb};
use serde_json::{Value, json};

const OWNER: &str = "owner@shop.example";
const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn the_standalone_login_invitation_and_rate_limit_work_in_a_real_browser() {
    let root = ghosttrack_tests::workspace_root();
    let dist = root.join("web/dist");
    assert!(dist.join("index.html").exists(), "the browser test needs the built panel: run `cargo xtask dist`");
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/axe-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian chromium and tests/browser/node_modules: run `scripts/test`"
    );
    let app = Spawn::default().database(TestDb::Sqlite).configure(move |s| s.panel.dist_dir = dist).start().await;
    app.create_site("shop.example").await;
    // What `ghosttrack admin create --site shop.example --email … --role owner` does.
    accounts::create_user(&app.db, "shop.example", OWNER, Password::new(PASSWORD), Role::Owner).await.unwrap();

    // The owner invites an analyst; the link's token is in the fragment.
    let login = app.client.post(app.url("/api/account/login")).json(&json!({ "email": OWNER, "password": PASSWORD }));
    let resp = login.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let csrf = resp.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let invite = app
        .client
        .post(app.url("/api/account/invitations"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({ "email": "analyst@shop.example", "role": "analyst" }))
        .send()
        .await
        .unwrap();
    assert_eq!(invite.status(), 201);
    let token = invite.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();

    // Browsers keep `Secure` cookies over plain HTTP only for localhost.
    let base = app.url("").replace("127.0.0.1", "localhost");
    let invitation = format!("{base}/app/accept-invitation#token={token}");
    let shots = root.join("target/screenshots");
    let args = [base, OWNER.to_owned(), PASSWORD.to_owned(), invitation, shots.display().to_string()];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("login.mjs")
            .args(args)
            .current_dir(browser_dir)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or_default();
    assert!(output.status.success(), "browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(summary["serious"], json!([]), "{summary}");
    assert_eq!(summary["invitationSignedIn"], true, "{summary}");
    assert_eq!(
        summary["analystEncryption"],
        json!({
            "disabled": true,
            "checked": "false",
            "reason": "Only an owner of this site can turn encryption on or off.",
        }),
        "{summary}"
    );
    assert_eq!(summary["wrongPassword"], "The email or password is wrong.");
    assert_eq!(
        (summary["cookie"]["httpOnly"].as_bool(), summary["cookie"]["sameSite"].as_str()),
        (Some(true), Some("Strict"))
    );
    assert!(
        summary["rateLimited"].as_str().is_some_and(|t| t.starts_with("Too many attempts. Try again in")),
        "{summary}"
    );
    for page in ["accept-invitation", "privacy-analyst", "login", "standalone-overview", "login-rate-limited"] {
        assert!(shots.join(format!("panel-{page}.png")).exists(), "{page} screenshot");
    }
    // The invitee's account exists with the invited role.
    let analysts = app.count("SELECT COUNT(*) FROM users WHERE role = 'analyst'").await;
    assert_eq!(analysts, 1);
    println!("standalone login page first render: {} ms", summary["loginRenderMs"]);
    app.stop().await;
}
