//! `ghosttrack keys status|rotate`: re-wrap data keys and re-seal shop tokens (and alert channel
//! destinations) under the current
//! master key after `GHOSTTRACK_SECRET_KEY` changed (the old secret given as
//! `GHOSTTRACK_SECRET_KEY_PREVIOUS`), issue new data keys, and re-encrypt stored payloads under
//! each tenant's active key.
//!
//! Everything here is safe while servers run: every write is a compare-and-set on the value
//! read (a row changed meanwhile is left for the next run), servers read with both master keys,
//! and they pick up a new active data key within `ACTIVE_KEY_TTL`. The re-encrypt pass works in
//! bounded batches in event-id order and only touches rows not yet under the active key, so an
//! interrupted run resumes where it stopped when started again.

use std::collections::BTreeMap;

use sea_orm::DatabaseConnection;
use serde::Serialize;

use super::events::{EventKeys, KeyError};
use crate::domain::SiteId;
use crate::shopify::token_cipher::{CipherError, Sealed};
use crate::storage::shops::{self, StoredTokens};
use crate::storage::{StorageError, TenantScope, alerts, data_keys};

/// Events re-encrypted per batch (one read and up to this many single-row updates).
pub const REENCRYPT_BATCH: u64 = 500;

/// What `keys status` prints.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Id of the master key derived from `GHOSTTRACK_SECRET_KEY`.
    pub master_key_id: String,
    pub previous_master_key_id: Option<String>,
    pub tenants: Vec<TenantKeys>,
    /// Shops whose tokens are sealed with another master key (re-sealed by `keys rotate`).
    pub shops_on_other_master_keys: usize,
    /// Alert channels whose destination is sealed with another master key.
    pub alert_channels_on_other_master_keys: usize,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TenantKeys {
    pub site_id: i64,
    /// The key new events are sealed with (`None`: encryption off).
    pub active_key_id: Option<String>,
    pub keys: usize,
    /// Keys wrapped by a master key other than the current one.
    pub keys_on_other_master_keys: usize,
}

/// What `keys rotate` did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Rotated {
    pub data_keys_rewrapped: usize,
    pub shops_resealed: usize,
    pub alert_channels_resealed: usize,
    /// Rows another writer changed meanwhile (run again to finish them).
    pub skipped_concurrent: usize,
    /// `site id → new key id` when `--data-keys` issued new keys.
    pub new_data_keys: BTreeMap<i64, String>,
    pub events_reencrypted: u64,
}

fn master_ids(keys: &EventKeys) -> Result<(String, Option<String>), KeyError> {
    let master = keys.master().ok_or(KeyError::NoSecretKey)?;
    Ok((master.current().key_id().to_owned(), master.previous().map(|p| p.key_id().to_owned())))
}

pub async fn status(db: &DatabaseConnection, keys: &EventKeys) -> Result<Status, KeyError> {
    let (current, previous) = master_ids(keys)?;
    let mut tenants: BTreeMap<SiteId, TenantKeys> = BTreeMap::new();
    for row in data_keys::all(db).await? {
        let t = tenants.entry(row.site_id).or_insert(TenantKeys {
            site_id: row.site_id.0,
            active_key_id: None,
            keys: 0,
            keys_on_other_master_keys: 0,
        });
        t.keys += 1;
        if row.retired_at.is_none() {
            t.active_key_id = Some(row.key_id.clone());
        }
        if row.master_key_id != current {
            t.keys_on_other_master_keys += 1;
        }
    }
    let shops = shops::sealed_with_other_key(db, &current).await?.len();
    let channels = alerts::channels_sealed_with_other_key(db, &current).await.map_err(StorageError::from)?.len();
    Ok(Status {
        master_key_id: current,
        previous_master_key_id: previous,
        tenants: tenants.into_values().collect(),
        shops_on_other_master_keys: shops,
        alert_channels_on_other_master_keys: channels,
    })
}

/// Re-wraps every data key and re-seals every shop's tokens and every alert channel's
/// destination that are not under the current master key.
pub async fn rewrap_all(db: &DatabaseConnection, keys: &EventKeys, out: &mut Rotated) -> Result<(), KeyError> {
    let (current, _) = master_ids(keys)?;
    for row in data_keys::all(db).await?.into_iter().filter(|r| r.master_key_id != current) {
        let raw = keys.unwrap_row(&row)?;
        let sealed = keys.wrap(row.site_id, &row.key_id, &raw)?;
        if data_keys::rewrap(db, &row, &sealed.ciphertext, &sealed.key_id).await? {
            out.data_keys_rewrapped += 1;
        } else {
            out.skipped_concurrent += 1;
        }
    }
    let master = keys.master().ok_or(KeyError::NoSecretKey)?;
    for shop in shops::sealed_with_other_key(db, &current).await? {
        let Some(tokens) = &shop.tokens else { continue };
        let reseal = |kind: &str, ciphertext: &str| -> Result<Sealed, KeyError> {
            let context = format!("{}/{kind}", shop.domain);
            let sealed = Sealed { key_id: tokens.key_id.clone(), ciphertext: ciphertext.to_owned() };
            let plain = master.open(&context, &sealed).map_err(|e| match e {
                CipherError::UnknownKey(m) => {
                    KeyError::UnknownMasterKey { key_id: format!("shop {} tokens", shop.domain), master_key_id: m }
                }
                _ => KeyError::Corrupt,
            })?;
            Ok(master.current().seal(&context, &plain))
        };
        let access = reseal("access", &tokens.access_token)?;
        let refresh = tokens.refresh_token.as_deref().map(|r| reseal("refresh", r)).transpose()?;
        let resealed = StoredTokens {
            key_id: access.key_id,
            access_token: access.ciphertext,
            access_expires_at: tokens.access_expires_at,
            refresh_token: refresh.map(|r| r.ciphertext),
            refresh_expires_at: tokens.refresh_expires_at,
        };
        if shops::replace_tokens_if_version(db, shop.id, shop.token_version, &resealed).await? {
            out.shops_resealed += 1;
        } else {
            out.skipped_concurrent += 1;
        }
    }
    let channels = alerts::channels_sealed_with_other_key(db, &current).await.map_err(StorageError::from)?;
    for row in channels {
        let context = crate::alerts::service::destination_context(row.site_id.0);
        let sealed = Sealed { key_id: row.key_id.clone(), ciphertext: row.sealed.clone() };
        let plain = master.open(&context, &sealed).map_err(|e| match e {
            CipherError::UnknownKey(m) => {
                KeyError::UnknownMasterKey { key_id: format!("alert channel {}", row.id.0), master_key_id: m }
            }
            _ => KeyError::Corrupt,
        })?;
        let resealed = master.current().seal(&context, &plain);
        if alerts::reseal_channel(db, &row, &resealed.key_id, &resealed.ciphertext).await.map_err(StorageError::from)? {
            out.alert_channels_resealed += 1;
        } else {
            out.skipped_concurrent += 1;
        }
    }
    Ok(())
}

/// A new data key for every tenant with encryption on; old keys stay for reading.
pub async fn new_data_keys(db: &DatabaseConnection, keys: &EventKeys, out: &mut Rotated) -> Result<(), KeyError> {
    for site in encrypted_tenants(db).await? {
        if let Some(row) = keys.rotate(db, TenantScope::verified(site)).await? {
            out.new_data_keys.insert(site.0, row.key_id);
        }
    }
    Ok(())
}

async fn encrypted_tenants(db: &DatabaseConnection) -> Result<Vec<SiteId>, StorageError> {
    let mut sites: Vec<SiteId> =
        data_keys::all(db).await?.into_iter().filter(|r| r.retired_at.is_none()).map(|r| r.site_id).collect();
    sites.dedup();
    Ok(sites)
}

/// Re-seals every stored payload of every encrypted tenant that is not under the tenant's
/// active key (older keys, and plain rows from before encryption was turned on), in batches of
/// `batch`. Returns the rows rewritten.
pub async fn reencrypt(db: &DatabaseConnection, keys: &EventKeys, batch: u64) -> Result<u64, KeyError> {
    let mut total = 0;
    for site in encrypted_tenants(db).await? {
        total += reencrypt_tenant(db, keys, TenantScope::verified(site), batch).await?;
    }
    Ok(total)
}

/// [`reencrypt`] for one tenant.
pub async fn reencrypt_tenant(
    db: &DatabaseConnection,
    keys: &EventKeys,
    scope: TenantScope,
    batch: u64,
) -> Result<u64, KeyError> {
    let Some(row) = data_keys::active(db, scope).await? else { return Ok(0) };
    let key = keys.key(db, scope, &row.key_id).await?;
    let (mut after, mut total) = (i64::MIN, 0);
    loop {
        let rows = data_keys::events_to_reseal(db, scope, key.prefix(), after, batch).await?;
        for (id, stored) in &rows {
            let plain = keys.open(db, scope, stored).await?;
            if data_keys::replace_props(db, scope, *id, stored, &key.seal_with_join_tokens(&plain)).await? {
                total += 1;
            }
        }
        match rows.last() {
            Some((id, _)) if rows.len() as u64 == batch => after = *id,
            _ => return Ok(total),
        }
    }
}
