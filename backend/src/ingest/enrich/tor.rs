//! The Tor exit list (`detect.tor_exit_list`): a file of exit-node IPs, loaded at start and
//! reloaded when its modification time changes (checked every `detect.tor_exit_list_refresh_secs`),
//! so a cron job that downloads <https://check.torproject.org/torbulkexitlist> keeps it fresh
//! without a restart. A listed IP carries the Tor exit flag (`geo::net_flags::TOR_EXIT`), the same
//! bit MaxMind's Anonymous-IP database sets, so `ip/tor` fires on either source.
//!
//! Formats: one IP per line with `#` comments (torbulkexitlist), or Tor's exit-addresses
//! document, whose `ExitAddress <ip> <date> <time>` lines are read and whose other keywords
//! (`ExitNode`, `Published`, `LastStatus`) are skipped. Any other line is counted as bad and
//! reported once per load, never fatal.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashSet;
use tokio::sync::watch;

/// A parsed list.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub ips: FxHashSet<IpAddr>,
    /// Lines that were neither an address, a comment nor a known exit-addresses keyword.
    pub bad_lines: usize,
    /// 1-based number of the first bad line (for the report; the line itself is not logged).
    pub first_bad_line: Option<usize>,
}

/// Keywords of the exit-addresses format that carry no address.
const SKIPPED_KEYWORDS: [&str; 3] = ["ExitNode", "Published", "LastStatus"];

/// Parses either format (see the module docs).
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let address = match first {
            "ExitAddress" => words.next(),
            k if SKIPPED_KEYWORDS.contains(&k) => continue,
            ip => Some(ip).filter(|_| words.next().is_none()),
        };
        match address.and_then(|a| a.parse::<IpAddr>().ok()) {
            Some(ip) => {
                parsed.ips.insert(ip);
            }
            None => {
                parsed.bad_lines += 1;
                parsed.first_bad_line.get_or_insert(n + 1);
            }
        }
    }
    parsed
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the Tor exit list {path}: {source} (set detect.tor_exit_list to a readable file, or unset it)")]
pub struct TorListError {
    path: String,
    source: std::io::Error,
}

/// The loaded list; lookups take a shared lock and one hash probe, reloads swap the whole set.
pub struct TorExitList {
    path: PathBuf,
    ips: RwLock<Arc<FxHashSet<IpAddr>>>,
    /// Modification time and length of the file last loaded.
    loaded: Mutex<Option<(SystemTime, u64)>>,
}

impl TorExitList {
    /// Loads `path`; an unreadable file is an error (a configured list must exist at start).
    pub fn open(path: &Path) -> Result<Self, TorListError> {
        let list = TorExitList { path: path.to_owned(), ips: RwLock::default(), loaded: Mutex::new(None) };
        list.reload_if_changed()?;
        Ok(list)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ips.read().contains(&ip)
    }

    pub fn len(&self) -> usize {
        self.ips.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reloads the file when its modification time or length changed since the last load.
    /// Returns the new list's size when it reloaded. On error the previous list stays.
    pub fn reload_if_changed(&self) -> Result<Option<usize>, TorListError> {
        let error = |source| TorListError { path: self.path.display().to_string(), source };
        let meta = std::fs::metadata(&self.path).map_err(error)?;
        let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
        if *self.loaded.lock() == Some(stamp) {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&self.path).map_err(error)?;
        let parsed = parse(&text);
        if parsed.bad_lines > 0 {
            tracing::warn!(
                path = %self.path.display(),
                bad_lines = parsed.bad_lines,
                first_bad_line = parsed.first_bad_line,
                "Tor exit list: lines that are not IP addresses were skipped"
            );
        }
        let size = parsed.ips.len();
        *self.ips.write() = Arc::new(parsed.ips);
        *self.loaded.lock() = Some(stamp);
        tracing::info!(path = %self.path.display(), addresses = size, "Tor exit list loaded");
        Ok(Some(size))
    }
}

/// Checks the file every `interval` until `stopped` flips.
pub async fn run_refresh(list: Arc<TorExitList>, interval: Duration, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => break,
        }
        let list = list.clone();
        match tokio::task::spawn_blocking(move || list.reload_if_changed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "Tor exit list not reloaded; the previous list stays"),
            Err(error) => tracing::warn!(error = %error, "Tor exit list reload task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tor-exit-list.txt")
    }

    #[test]
    fn the_bulk_list_and_exit_addresses_formats_parse_and_bad_lines_are_counted() {
        let parsed = parse(&std::fs::read_to_string(fixture()).unwrap());
        assert!(parsed.ips.contains(&"185.220.101.1".parse().unwrap()));
        assert!(parsed.ips.contains(&"2a0b:f4c2::1".parse().unwrap()));
        // From an `ExitAddress` line of the exit-addresses format.
        assert!(parsed.ips.contains(&"171.25.193.77".parse().unwrap()));
        assert_eq!(parsed.ips.len(), 5);
        assert_eq!((parsed.bad_lines, parsed.first_bad_line), (2, Some(9)));
        // Comments, blanks and exit-addresses keywords are not bad lines.
        let clean = parse("# header\n\nExitNode ABC\nPublished 2026-11-21 10:00:00\n1.2.3.4 # trailing\n");
        assert_eq!((clean.ips.len(), clean.bad_lines), (1, 0));
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_vanished_one_keeps_the_previous_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exits");
        std::fs::write(&path, "192.0.2.1\n").unwrap();
        let list = TorExitList::open(&path).unwrap();
        assert!(list.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(list.reload_if_changed().unwrap(), None, "unchanged file: no reload");

        // A new download (other length, so the change is seen even within the mtime's resolution).
        std::fs::write(&path, "192.0.2.7\n198.51.100.9\n").unwrap();
        assert_eq!(list.reload_if_changed().unwrap(), Some(2));
        assert!(!list.contains("192.0.2.1".parse().unwrap()));
        assert!(list.contains("198.51.100.9".parse().unwrap()));

        std::fs::remove_file(&path).unwrap();
        assert!(list.reload_if_changed().is_err());
        assert!(list.contains("198.51.100.9".parse().unwrap()), "the previous list stays");
    }

    #[test]
    fn a_missing_list_at_start_is_a_clear_error() {
        let e = TorExitList::open(Path::new("/nonexistent/tor-exits")).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/tor-exits") && e.contains("detect.tor_exit_list"), "{e}");
    }
}
