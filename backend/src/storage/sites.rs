//! Sites (tenants): creation, lookup by public key and by API token.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::sites;
use super::{StorageError, TenantScope};
use crate::domain::{ApiToken, PrivacyMode, SiteId, SiteKey, UnixMillis};

/// A tenant as the rest of the app sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub id: SiteId,
    pub key: SiteKey,
    pub domain: String,
    pub kind: SiteKind,
    pub privacy: PrivacyMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteKind {
    Standalone,
    Shopify,
}

impl SiteKind {
    fn as_str(self) -> &'static str {
        match self {
            SiteKind::Standalone => "standalone",
            SiteKind::Shopify => "shopify",
        }
    }
}

impl From<sites::Model> for Site {
    fn from(m: sites::Model) -> Self {
        Site {
            id: m.id,
            key: m.public_key,
            domain: m.domain,
            kind: if m.kind == "shopify" { SiteKind::Shopify } else { SiteKind::Standalone },
            privacy: PrivacyMode::parse(&m.privacy_mode).unwrap_or_default(),
        }
    }
}

/// Creates a standalone site and returns it with its API token (shown once, stored hashed).
pub async fn create(db: &impl ConnectionTrait, domain: &str, kind: SiteKind) -> Result<(Site, ApiToken), StorageError> {
    let token = ApiToken::generate();
    let model = sites::ActiveModel {
        public_key: Set(SiteKey::generate()),
        domain: Set(domain.to_owned()),
        kind: Set(kind.as_str().to_owned()),
        api_token_hash: Set(token.hash()),
        privacy_mode: Set(PrivacyMode::default().as_str().to_owned()),
        created_at: Set(UnixMillis::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((model.into(), token))
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: SiteId) -> Result<Option<Site>, StorageError> {
    Ok(sites::Entity::find_by_id(id).one(db).await?.map(Site::from))
}

pub async fn find_by_key(db: &impl ConnectionTrait, key: &SiteKey) -> Result<Option<Site>, StorageError> {
    Ok(sites::Entity::find().filter(sites::Column::PublicKey.eq(key.clone())).one(db).await?.map(Site::from))
}

/// Resolves an API token to the tenant it was issued for: the only way the stats API gets a scope.
pub async fn authenticate_token(
    db: &impl ConnectionTrait,
    token: &ApiToken,
) -> Result<Option<(TenantScope, Site)>, StorageError> {
    // Lookup by hash: equal hashes of a high-entropy token are as good as a constant-time
    // comparison of the token itself, and the index keeps it O(log n).
    Ok(sites::Entity::find().filter(sites::Column::ApiTokenHash.eq(token.hash())).one(db).await?.map(|m| {
        let site = Site::from(m);
        (TenantScope::verified(site.id), site)
    }))
}

pub async fn find_by_domain(db: &impl ConnectionTrait, domain: &str) -> Result<Option<Site>, StorageError> {
    Ok(sites::Entity::find()
        .filter(sites::Column::Domain.eq(domain))
        .order_by_asc(sites::Column::Id)
        .one(db)
        .await?
        .map(Site::from))
}
