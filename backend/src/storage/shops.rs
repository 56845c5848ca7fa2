//! Shopify shops (tenants). Installing a shop creates its `sites` row (kind `shopify`) in the
//! same transaction, so a shop always has a site and the collect/stats paths work per shop.
//! Token columns hold sealed ciphertexts only (`shopify::token_cipher`); this module never
//! sees a plain token.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait,
};

use super::entities::{shopify_audit_log, shops, sites};
use super::sites::{Site, SiteKind};
use super::{StorageError, TenantScope};
use crate::domain::{SiteId, UnixMillis};
use crate::shopify::shop_domain::ShopDomain;

/// A shop row as the Shopify flows see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Shop {
    pub id: i64,
    pub site_id: SiteId,
    pub domain: ShopDomain,
    pub active: bool,
    pub scope: Option<String>,
    pub tokens: Option<StoredTokens>,
    pub token_version: i64,
}

impl Shop {
    /// The tenant scope of a shop whose domain came from a verified credential.
    pub fn scope(&self) -> TenantScope {
        TenantScope::verified(self.site_id)
    }
}

/// Sealed tokens and their expiries, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTokens {
    pub key_id: String,
    pub access_token: String,
    pub access_expires_at: Option<UnixMillis>,
    pub refresh_token: Option<String>,
    pub refresh_expires_at: Option<UnixMillis>,
}

fn from_model(m: shops::Model) -> Option<Shop> {
    let domain = ShopDomain::parse(&m.domain)?;
    let tokens = match (m.token_key_id, m.access_token) {
        (Some(key_id), Some(access_token)) => Some(StoredTokens {
            key_id,
            access_token,
            access_expires_at: m.access_expires_at,
            refresh_token: m.refresh_token,
            refresh_expires_at: m.refresh_expires_at,
        }),
        _ => None,
    };
    Some(Shop {
        id: m.id,
        site_id: m.site_id,
        domain,
        active: m.status == "active",
        scope: m.scope,
        tokens,
        token_version: m.token_version,
    })
}

pub async fn find(db: &impl ConnectionTrait, domain: &ShopDomain) -> Result<Option<Shop>, StorageError> {
    Ok(shops::Entity::find().filter(shops::Column::Domain.eq(domain.as_str())).one(db).await?.and_then(from_model))
}

/// The site of an active shop (the app-proxy collect path resolves its tenant with it).
pub async fn active_site(db: &impl ConnectionTrait, domain: &ShopDomain) -> Result<Option<Site>, StorageError> {
    let Some(shop) = find(db, domain).await?.filter(|s| s.active) else { return Ok(None) };
    Ok(sites::Entity::find_by_id(shop.site_id).one(db).await?.map(Site::from))
}

/// Records a (re)install with fresh tokens: creates the shop and its site on first install,
/// reactivates an uninstalled shop, bumps `token_version`. One transaction.
pub async fn install(
    db: &DatabaseConnection,
    domain: &ShopDomain,
    scope: Option<&str>,
    tokens: &StoredTokens,
) -> Result<Shop, StorageError> {
    let txn = db.begin().await?;
    let now = UnixMillis::now();
    let existing = shops::Entity::find().filter(shops::Column::Domain.eq(domain.as_str())).one(&txn).await?;
    let model = match existing {
        Some(row) => {
            let version = row.token_version + 1;
            let mut active: shops::ActiveModel = row.into();
            active.status = Set("active".into());
            active.scope = Set(scope.map(str::to_owned));
            set_tokens(&mut active, Some(tokens));
            active.token_version = Set(version);
            active.uninstalled_at = Set(None);
            active.installed_at = Set(now);
            active.updated_at = Set(now);
            active.update(&txn).await?
        }
        None => {
            let (site, _token) = super::sites::create(&txn, domain.as_str(), SiteKind::Shopify).await?;
            let mut active = shops::ActiveModel {
                site_id: Set(site.id),
                domain: Set(domain.as_str().to_owned()),
                status: Set("active".into()),
                scope: Set(scope.map(str::to_owned)),
                token_version: Set(1),
                installed_at: Set(now),
                uninstalled_at: Set(None),
                updated_at: Set(now),
                ..Default::default()
            };
            set_tokens(&mut active, Some(tokens));
            active.insert(&txn).await?
        }
    };
    audit(&txn, domain, "install", &serde_json::json!({ "token_version": model.token_version })).await?;
    txn.commit().await?;
    Ok(from_model(model).expect("domain was parsed before storing"))
}

fn set_tokens(active: &mut shops::ActiveModel, tokens: Option<&StoredTokens>) {
    active.token_key_id = Set(tokens.map(|t| t.key_id.clone()));
    active.access_token = Set(tokens.map(|t| t.access_token.clone()));
    active.access_expires_at = Set(tokens.and_then(|t| t.access_expires_at));
    active.refresh_token = Set(tokens.and_then(|t| t.refresh_token.clone()));
    active.refresh_expires_at = Set(tokens.and_then(|t| t.refresh_expires_at));
}

/// Replaces the tokens only if nobody else did since `expected_version` was read (a refresh
/// racing another node). Returns whether this write won.
pub async fn replace_tokens_if_version(
    db: &impl ConnectionTrait,
    shop_id: i64,
    expected_version: i64,
    tokens: &StoredTokens,
) -> Result<bool, StorageError> {
    use shops::Column as C;
    let update = Query::update()
        .table(shops::Entity)
        .values([
            (C::TokenKeyId, tokens.key_id.clone().into()),
            (C::AccessToken, tokens.access_token.clone().into()),
            (C::AccessExpiresAt, tokens.access_expires_at.map(|t| t.0).into()),
            (C::RefreshToken, tokens.refresh_token.clone().into()),
            (C::RefreshExpiresAt, tokens.refresh_expires_at.map(|t| t.0).into()),
            (C::TokenVersion, (expected_version + 1).into()),
            (C::UpdatedAt, UnixMillis::now().0.into()),
        ])
        .and_where(Expr::col(C::Id).eq(shop_id))
        .and_where(Expr::col(C::TokenVersion).eq(expected_version))
        .to_owned();
    Ok(db.execute(&update).await?.rows_affected() == 1)
}

/// `app/uninstalled`: the shop stays (its data is purged by `shop/redact` 48 h later), its
/// tokens are dropped. Idempotent; returns whether the shop was known.
pub async fn mark_uninstalled(db: &DatabaseConnection, domain: &ShopDomain) -> Result<bool, StorageError> {
    let txn = db.begin().await?;
    let Some(row) = shops::Entity::find().filter(shops::Column::Domain.eq(domain.as_str())).one(&txn).await? else {
        return Ok(false);
    };
    let was_active = row.status == "active";
    let version = row.token_version + 1;
    let now = UnixMillis::now();
    let mut active: shops::ActiveModel = row.into();
    active.status = Set("uninstalled".into());
    set_tokens(&mut active, None);
    active.token_version = Set(version);
    if was_active {
        active.uninstalled_at = Set(Some(now));
    }
    active.updated_at = Set(now);
    active.update(&txn).await?;
    audit(&txn, domain, "uninstall", &serde_json::json!({ "was_active": was_active })).await?;
    txn.commit().await?;
    Ok(true)
}

/// Updates the granted scopes (`app/scopes_update`).
pub async fn set_scope(db: &impl ConnectionTrait, domain: &ShopDomain, scope: &str) -> Result<bool, StorageError> {
    let res = shops::Entity::update_many()
        .col_expr(shops::Column::Scope, Expr::value(scope))
        .col_expr(shops::Column::UpdatedAt, Expr::value(UnixMillis::now().0))
        .filter(shops::Column::Domain.eq(domain.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Appends an audit record (ids and counts only in `detail`).
pub async fn audit(
    db: &impl ConnectionTrait,
    domain: &ShopDomain,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), StorageError> {
    shopify_audit_log::ActiveModel {
        shop_domain: Set(domain.as_str().to_owned()),
        action: Set(action.to_owned()),
        detail: Set(detail.to_string()),
        created_at: Set(UnixMillis::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Shops whose stored tokens were sealed with a key other than `key_id` (what a change of
/// `GHOSTTRACK_SECRET_KEY` leaves for `ghosttrack keys rotate` to re-seal).
pub async fn sealed_with_other_key(db: &impl ConnectionTrait, key_id: &str) -> Result<Vec<Shop>, StorageError> {
    Ok(shops::Entity::find()
        .filter(shops::Column::TokenKeyId.is_not_null())
        .filter(shops::Column::TokenKeyId.ne(key_id))
        .all(db)
        .await?
        .into_iter()
        .filter_map(from_model)
        .collect())
}
