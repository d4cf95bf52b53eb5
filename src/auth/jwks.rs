//! The JWKS in force, read from `[auth.jwt] jwks_file`, and swapped for a new one while the service runs: an
//! identity provider rotates its signing keys (publishes the new key, signs with it, later drops the old one), and
//! the service must follow without a restart.
//!
//! The file is read again every `reload_interval_ms` (only a change of its content counts) and on SIGHUP (always),
//! like the policies ([`super::reload`]). A new key set is checked whole ([`JwtAuthenticator::new`]) and only then
//! swapped in; a file that cannot be read or holds no usable key is refused with an error in the log, and the keys
//! in force stay (a half-written file must not lock every caller out).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use super::jwt::{JwksError, JwtAuthenticator};
use super::settings::JwtSettings;
use super::{AuthError, Principal};
use crate::shutdown::Shutdown;

pub struct JwksStore {
    settings: JwtSettings,
    current: RwLock<Arc<JwtAuthenticator>>,
    /// The digest of the file as last read, loaded or refused: an unchanged file is not checked again at every poll.
    last_read: Mutex<[u8; 32]>,
    /// Key sets put in force (the one read at start-up included), and refused: what a test or an operator waits on.
    reloads: watch::Sender<(u64, u64)>,
}

impl JwksStore {
    /// Reads and checks the key set; refuses to start without a usable one.
    pub fn load(settings: &JwtSettings) -> Result<Arc<JwksStore>, JwksError> {
        let (digest, text) = read(settings);
        let keys = JwtAuthenticator::checked(settings, text)?;
        let (reloads, _) = watch::channel((1, 0));
        Ok(Arc::new(JwksStore {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(keys)),
            last_read: Mutex::new(digest),
            reloads,
        }))
    }

    /// Checks `token` against the keys in force.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let current = self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        current.verify(token)
    }

    /// Follows the reloads: (key sets loaded, refused) so far.
    pub fn reloads(&self) -> watch::Receiver<(u64, u64)> {
        self.reloads.subscribe()
    }

    /// Reads the file and, if it changed since last read (or `force`), checks it and swaps the new keys in.
    pub fn reload(&self, force: bool) -> bool {
        let mut last_read = self.last_read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (digest, text) = read(&self.settings);
        if digest == *last_read && !force {
            return false;
        }
        *last_read = digest;
        let file = self.settings.jwks_file.display();
        match JwtAuthenticator::checked(&self.settings, text) {
            Ok(keys) => {
                *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
                info!(jwks_file = %file, "JWKS reloaded");
                self.reloads.send_modify(|(loaded, _)| *loaded += 1);
                true
            }
            Err(err) => {
                error!(jwks_file = %file, %err, "new JWKS refused; the keys in force stay");
                self.reloads.send_modify(|(_, refused)| *refused += 1);
                false
            }
        }
    }

    /// Reloads on SIGHUP and, unless `reload_interval_ms` is 0, whenever the file's content changes, until shutdown.
    pub fn watch(self: &Arc<Self>, shutdown: Shutdown) -> JoinHandle<()> {
        let interval =
            (self.settings.reload_interval_ms > 0).then(|| Duration::from_millis(self.settings.reload_interval_ms));
        let store = self.clone();
        super::reload::keep_reloading("jwks", interval, shutdown, move |force| {
            store.reload(force);
        })
    }
}

/// The file's text (or why it cannot be read), and a digest of either, so that the same unreadable file is refused
/// once, not at every poll.
fn read(settings: &JwtSettings) -> ([u8; 32], Result<String, String>) {
    let path = &settings.jwks_file;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read jwks_file {}: {e}", path.display()));
    let digest = match &text {
        Ok(text) => Sha256::digest(text.as_bytes()),
        Err(err) => Sha256::digest(err.as_bytes()),
    };
    (digest.into(), text)
}
