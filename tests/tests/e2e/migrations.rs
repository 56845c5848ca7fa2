//! One test per migration: each step applies on a database holding the previous steps, creates
//! what it promises, and reverts cleanly. Runs on SQLite, and on PostgreSQL when
//! `GHOSTTRACK_TEST_DATABASE_URL` is set.

use ghosttrack_tests::pg;
use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::{Database, DatabaseConnection};

/// (migration name suffix, table it creates, columns the code relies on)
const STEPS: &[(&str, &str, &[&str])] = &[
    ("create_sites", "sites", &["id", "public_key", "domain", "kind", "api_token_hash", "privacy_mode", "created_at"]),
    ("create_daily_salts", "daily_salts", &["day", "salt", "created_at"]),
    ("create_visitors", "visitors", &["site_id", "visitor_id", "first_seen_at", "last_seen_at", "sessions"]),
    (
        "create_sessions",
        "sessions",
        &[
            "id",
            "site_id",
            "visitor_id",
            "started_at",
            "last_seen_at",
            "pageviews",
            "country",
            "asn",
            "net_flags",
            "bot_family",
            "automated",
        ],
    ),
    ("create_events", "events", &["id", "site_id", "session_id", "visitor_id", "ts", "kind", "path", "props"]),
    ("create_drop_counters", "drop_counters", &["site_id", "day", "reason", "count"]),
    ("drop_events_site_fk_on_postgres", "events", &["site_id"]),
    (
        "create_threats",
        "threats",
        &["id", "site_id", "subject", "decision", "score", "reasons", "evidence", "ttl_secs", "at", "created_at"],
    ),
    (
        "create_shops",
        "shops",
        &[
            "id",
            "site_id",
            "domain",
            "status",
            "scope",
            "token_key_id",
            "access_token",
            "access_expires_at",
            "refresh_token",
            "refresh_expires_at",
            "token_version",
            "installed_at",
            "uninstalled_at",
            "updated_at",
        ],
    ),
    (
        "create_webhook_inbox",
        "webhook_inbox",
        &[
            "id",
            "webhook_id",
            "shop_domain",
            "topic",
            "api_version",
            "body",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
        ],
    ),
    ("create_shopify_audit_log", "shopify_audit_log", &["id", "shop_domain", "action", "detail", "created_at"]),
    (
        "create_shopify_orders",
        "shopify_orders",
        &[
            "site_id",
            "order_id",
            "customer_id",
            "checkout_token",
            "cart_token",
            "total_price",
            "financial_status",
            "paid",
        ],
    ),
    (
        "create_shopify_carts",
        "shopify_carts",
        &["site_id", "kind", "token", "cart_token", "tracked", "first_seen_at", "last_seen_at"],
    ),
    (
        "create_shopify_payment_attempts",
        "shopify_payment_attempts",
        &[
            "site_id",
            "transaction_id",
            "order_id",
            "status",
            "error_code",
            "card_bin",
            "avs_result_code",
            "cvv_result_code",
        ],
    ),
    (
        "create_shopify_setup",
        "shopify_setup",
        &[
            "site_id",
            "pixel_id",
            "pixel_state",
            "embed_state",
            "plan_name",
            "development_store",
            "last_error",
            "runs",
            "checked_at",
        ],
    ),
    ("link_shopify_orders", "shopify_orders", &["session_id", "ip_prefix"]),
    ("create_alert_policies", "alert_policies", &["site_id", "policy", "state", "updated_at"]),
    (
        "create_alert_channels",
        "alert_channels",
        &["id", "site_id", "kind", "name", "display", "key_id", "sealed", "enabled", "created_at"],
    ),
    (
        "create_alert_outbox",
        "alert_outbox",
        &[
            "id",
            "site_id",
            "channel_id",
            "alert_id",
            "kind",
            "payload",
            "idempotency_key",
            "status",
            "attempts",
            "next_attempt_at",
            "claim_token",
            "last_error",
            "created_at",
            "delivered_at",
        ],
    ),
    (
        "create_subscriptions",
        "subscriptions",
        &[
            "site_id",
            "provider",
            "external_id",
            "customer_id",
            "plan",
            "status",
            "test",
            "trial_ends_at",
            "current_period_end",
            "provider_updated_at",
            "updated_at",
        ],
    ),
    ("create_usage_counters", "usage_counters", &["site_id", "month", "sessions", "updated_at", "over_since"]),
    ("create_billing_notices", "billing_notices", &["site_id", "month", "kind", "detail", "created_at", "sent_at"]),
    ("create_users", "users", &["id", "site_id", "email", "password_hash", "role", "created_at", "updated_at"]),
    (
        "create_account_sessions",
        "account_sessions",
        &["id", "token_hash", "user_id", "site_id", "created_at", "last_seen_at", "expires_at", "revoked_at"],
    ),
    (
        "create_invitations",
        "invitations",
        &["id", "site_id", "email", "role", "token_hash", "invited_by", "created_at", "expires_at", "accepted_at"],
    ),
    ("create_login_attempts", "login_attempts", &["id", "key", "at"]),
    (
        "create_stats_rollups",
        "stats_rollups",
        &[
            "site_id",
            "hour",
            "dim",
            "value",
            "visitors",
            "sessions",
            "pageviews",
            "bounces",
            "duration_ms",
            "automated",
        ],
    ),
    ("create_stats_rollup_state", "stats_rollup_state", &["id", "rolled_until", "provisional_until"]),
    ("create_panel_audit_log", "panel_audit_log", &["id", "site_id", "actor", "action", "detail", "created_at"]),
    ("index_events_site_kind_ts", "events", &["site_id", "kind", "ts", "path"]),
    ("create_rule_settings", "rule_settings", &["site_id", "rules", "updated_at"]),
    (
        "partition_events_by_day",
        "events",
        &["id", "site_id", "session_id", "visitor_id", "ts", "kind", "path", "props"],
    ),
    (
        "create_event_data_keys",
        "event_data_keys",
        &["id", "site_id", "key_id", "wrapped_key", "master_key_id", "created_at", "retired_at"],
    ),
    ("judge_shopify_carts", "shopify_carts", &["judged_at", "ip_prefix"]),
    ("drop_sessions_last_seen_index", "sessions", &["id", "site_id", "last_seen_at"]),
    ("create_page_rollups", "page_rollups", &["site_id", "grain", "hour", "path", "clicks", "scroll_sessions"]),
    (
        "create_page_rollup_cells",
        "page_rollup_cells",
        &["site_id", "grain", "hour", "path", "kind", "cell", "n", "sum_width", "sum_height"],
    ),
    ("threat_read_paths", "threats", &["site_id", "at", "ttl_secs", "reasons"]),
];

/// Steps that change an existing table instead of creating one (checked by their own test).
const ALTERS: &[&str] = &[
    "drop_events_site_fk_on_postgres",
    "link_shopify_orders",
    "index_events_site_kind_ts",
    "partition_events_by_day",
    "judge_shopify_carts",
    "drop_sessions_last_seen_index",
    "threat_read_paths",
];

fn alters(suffix: &str) -> bool {
    ALTERS.contains(&suffix)
}

async fn each_step_applies_and_reverts(db: &DatabaseConnection) {
    let migrations = Migrator::migrations();
    assert_eq!(migrations.len(), STEPS.len(), "a migration without a test step");
    let manager = SchemaManager::new(db);
    for (i, (suffix, table, columns)) in STEPS.iter().enumerate() {
        assert!(migrations[i].name().ends_with(suffix), "step {i} is {}", migrations[i].name());
        assert_eq!(manager.has_table(*table).await.unwrap(), alters(suffix), "{table} before {suffix}");
        Migrator::up(db, Some(1)).await.unwrap_or_else(|e| panic!("{suffix} up: {e}"));
        assert!(manager.has_table(*table).await.unwrap(), "{suffix} did not create {table}");
        for column in *columns {
            assert!(manager.has_column(*table, *column).await.unwrap(), "{table}.{column} missing after {suffix}");
        }
    }
    // Every step reverts, newest first, leaving no table behind.
    for (suffix, table, _) in STEPS.iter().rev() {
        Migrator::down(db, Some(1)).await.unwrap_or_else(|e| panic!("{suffix} down: {e}"));
        assert_eq!(manager.has_table(*table).await.unwrap(), alters(suffix), "{table} after {suffix} down");
    }
    // And the whole chain applies again from scratch.
    Migrator::up(db, None).await.unwrap();
    assert!(Migrator::get_pending_migrations(db).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_migration_applies_and_reverts_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(format!("sqlite://{}/m.db?mode=rwc", dir.path().display())).await.unwrap();
    each_step_applies_and_reverts(&db).await;
}

#[tokio::test]
async fn each_migration_applies_and_reverts_on_postgres() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL migration test").await else { return };
    let db = Database::connect(url).await.unwrap();
    each_step_applies_and_reverts(&db).await;
}

/// PostgreSQL events carry no foreign key after `drop_events_site_fk_on_postgres` (and get it
/// back on down); SQLite keeps its key.
#[tokio::test]
async fn events_site_key_is_dropped_on_postgres_only() {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL migration test").await else { return };
    let db = Database::connect(url).await.unwrap();
    let keys = || async {
        let sql = "SELECT COUNT(*) AS n FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'f'";
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    let step =
        Migrator::migrations().iter().position(|m| m.name().ends_with("drop_events_site_fk_on_postgres")).unwrap();
    Migrator::up(&db, Some(step as u32)).await.unwrap();
    assert_eq!(keys().await, 1, "create_events made the key");
    Migrator::up(&db, Some(1)).await.unwrap();
    assert_eq!(keys().await, 0);
    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(keys().await, 1);

    let dir = tempfile::tempdir().unwrap();
    let lite = Database::connect(format!("sqlite://{}/m.db?mode=rwc", dir.path().display())).await.unwrap();
    Migrator::up(&lite, None).await.unwrap();
    let row = lite
        .query_one_raw(Statement::from_string(
            lite.get_database_backend(),
            "SELECT COUNT(*) AS n FROM pragma_foreign_key_list('events')",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i32>("", "n").unwrap(), 1, "SQLite keeps its key");
}

/// Whether `index` exists before the step `suffix`, after its `up`, and after its `down`.
async fn index_around_step(db: &DatabaseConnection, suffix: &str, index: &str) -> [bool; 3] {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!("SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = '{index}'"),
        _ => format!("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' AND name = '{index}'"),
    };
    let exists = || async {
        let row = db.query_one_raw(Statement::from_string(backend, sql.clone())).await.unwrap().unwrap();
        row.try_get_by_index::<i64>(0).unwrap() == 1
    };
    let step = Migrator::migrations().iter().position(|m| m.name().ends_with(suffix)).unwrap();
    Migrator::up(db, Some(step as u32)).await.unwrap();
    let before = exists().await;
    Migrator::up(db, Some(1)).await.unwrap();
    let after_up = exists().await;
    Migrator::down(db, Some(1)).await.unwrap();
    [before, after_up, exists().await]
}

/// `index_events_site_kind_ts` adds the Pages maps' index on both backends and removes it on
/// down; `drop_sessions_last_seen_index` removes the sessions' last-seen index and restores it
/// on down; `threat_read_paths` adds the verdicts' expiry and card-testing indexes.
#[tokio::test]
async fn the_index_steps_apply_and_revert() {
    let steps = [
        ("index_events_site_kind_ts", "idx_events_site_kind_ts_path", [false, true, false]),
        ("drop_sessions_last_seen_index", "idx_sessions_site_last_seen", [true, false, true]),
        ("threat_read_paths", "idx_threats_site_expires", [false, true, false]),
        ("threat_read_paths", "idx_threats_site_card_at", [false, true, false]),
    ];
    for (suffix, index, expected) in steps {
        let dir = tempfile::tempdir().unwrap();
        let lite = Database::connect(format!("sqlite://{}/m.db?mode=rwc", dir.path().display())).await.unwrap();
        assert_eq!(index_around_step(&lite, suffix, index).await, expected, "{suffix} on SQLite");
        if let Some(server) = pg::server_url() {
            let db = Database::connect(pg::fresh_database(&server).await).await.unwrap();
            assert_eq!(index_around_step(&db, suffix, index).await, expected, "{suffix} on PostgreSQL");
        }
    }
}

/// On PostgreSQL `partition_events_by_day` turns `events` into a partitioned table (a default
/// partition and one per day) keeping its rows and ids, and `down` folds it back; SQLite's
/// `events` stays a plain table.
#[tokio::test]
async fn events_are_partitioned_by_day_on_postgres_only() {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL migration test").await else { return };
    let db = Database::connect(url).await.unwrap();
    let one = |sql: &'static str| {
        let db = &db;
        async move {
            let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    let partitioned = "SELECT COUNT(*) FROM pg_class WHERE relname = 'events' AND relkind = 'p'";
    let step = Migrator::migrations().iter().position(|m| m.name().ends_with("partition_events_by_day")).unwrap();
    Migrator::up(&db, Some(step as u32)).await.unwrap();
    // (events have no foreign key on PostgreSQL since drop_events_site_fk_on_postgres)
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for ts in [now_ms, now_ms - 3 * 86_400_000, 1_000] {
        db.execute_unprepared(&format!(
            "INSERT INTO events (site_id, session_id, visitor_id, ts, received_at, kind, path) VALUES (1, 1, 1, {ts}, {ts}, 'pv', '/')"
        ))
        .await
        .unwrap();
    }
    let max_id = one("SELECT MAX(id) FROM events").await;

    Migrator::up(&db, Some(1)).await.unwrap();
    assert_eq!(one(partitioned).await, 1);
    assert_eq!(one("SELECT COUNT(*) FROM events").await, 3, "rows moved");
    assert_eq!(one("SELECT COUNT(*) FROM events_default").await, 1, "1970 is older than any day partition");
    let days = "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'";
    assert_eq!(one(days).await, 1 + 4 + 7, "default + the 4 days with rows up to today + a week ahead");
    db.execute_unprepared(&format!(
        "INSERT INTO events (site_id, session_id, visitor_id, ts, received_at, kind, path) VALUES (1, 1, 1, {now_ms}, {now_ms}, 'pv', '/')"
    ))
    .await
    .unwrap();
    assert!(one("SELECT MAX(id) FROM events").await > max_id, "ids continue their sequence");
    let kind_index = "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'idx_events_site_kind_ts_path'";
    assert_eq!(one(kind_index).await, 1, "the Pages maps' index is kept");

    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(one(partitioned).await, 0);
    assert_eq!(one("SELECT COUNT(*) FROM events").await, 4, "rows folded back");
    assert_eq!(one(kind_index).await, 1, "and on the plain table again");

    let dir = tempfile::tempdir().unwrap();
    let lite = Database::connect(format!("sqlite://{}/m.db?mode=rwc", dir.path().display())).await.unwrap();
    Migrator::up(&lite, None).await.unwrap();
    let row = lite
        .query_one_raw(Statement::from_string(
            lite.get_database_backend(),
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'events_p%' OR name = 'events_default'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<i32>(0).unwrap(), 0, "SQLite keeps one plain table");
}
