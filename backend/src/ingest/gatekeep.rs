//! The gatekeep step: which tenant a request is for. Site keys are public, so an unknown key
//! gets a plain 404 with no hint, and lookups are cached (negative answers briefly) so that
//! random keys cannot turn into database load.

use std::time::Duration;

use moka::sync::Cache;
use sea_orm::DatabaseConnection;

use crate::domain::SiteKey;
use crate::storage::{self, StorageError, sites::Site};

const KNOWN_TTL: Duration = Duration::from_secs(60);
const UNKNOWN_TTL: Duration = Duration::from_secs(5);

pub struct SiteDirectory {
    known: Cache<SiteKey, Site>,
    unknown: Cache<String, ()>,
}

impl Default for SiteDirectory {
    fn default() -> Self {
        SiteDirectory {
            known: Cache::builder().max_capacity(100_000).time_to_live(KNOWN_TTL).build(),
            unknown: Cache::builder().max_capacity(100_000).time_to_live(UNKNOWN_TTL).build(),
        }
    }
}

impl SiteDirectory {
    pub async fn resolve(&self, db: &DatabaseConnection, raw_key: &str) -> Result<Option<Site>, StorageError> {
        let Some(key) = SiteKey::parse(raw_key) else { return Ok(None) };
        if let Some(site) = self.known.get(&key) {
            return Ok(Some(site));
        }
        if self.unknown.contains_key(raw_key) {
            return Ok(None);
        }
        match storage::sites::find_by_key(db, &key).await? {
            Some(site) => {
                self.known.insert(key, site.clone());
                Ok(Some(site))
            }
            None => {
                self.unknown.insert(raw_key.to_owned(), ());
                Ok(None)
            }
        }
    }
}
