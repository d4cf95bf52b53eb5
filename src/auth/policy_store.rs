//! The policies in force, read from their files, and swapped for new ones while the service runs.
//!
//! The files are read again every `reload_interval_ms` (only a change of their content counts) and on SIGHUP
//! (always). A new set is compiled whole ([`Policies::compile`]) and only then swapped in, in one step: a call is
//! decided by the old set or the new one, never by a mixture. A set that does not compile, or files that cannot
//! be read, are refused with an error in the log, and the policies in force stay. [`PolicyStore::status`] tells
//! what happened (sets loaded, sets refused, the last error), so that a test or an operator can wait for a reload
//! instead of guessing how long it takes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use super::policies::{PolicyError, PolicySource, BUILT_IN_SCHEMA};
use super::settings::AuthzSettings;
use super::{Action, Authorizer, AuthzDecision, Policies, Principal, Resource};
use crate::shutdown::Shutdown;

/// What the store has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Policy sets put in force, the one read at start-up included.
    pub loaded: u64,
    /// Sets (or unreadable files) refused since start-up.
    pub refused: u64,
    /// Why the latest refusal happened; cleared when a set is loaded.
    pub last_error: Option<String>,
    /// The ids of the policies in force.
    pub policy_ids: Vec<String>,
}

pub struct PolicyStore {
    /// The policy file or directory: there is always one, since [`PolicyStore::load`] refuses to start without.
    policies: PathBuf,
    schema: Option<PathBuf>,
    reload_interval: Option<Duration>,
    current: RwLock<Arc<Policies>>,
    /// The digest of the files as last read, loaded or refused: an unchanged file is neither compiled nor refused
    /// again at every poll.
    last_read: Mutex<[u8; 32]>,
    status: watch::Sender<ReloadStatus>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore").field("policies", &self.policies).field("schema", &self.schema).finish()
    }
}

impl PolicyStore {
    /// Reads and compiles the configured policies; refuses to start without valid ones.
    pub fn load(settings: &AuthzSettings) -> Result<Arc<PolicyStore>, PolicyError> {
        let Some(policies) = settings.policies.clone() else {
            return Err(PolicyError(
                "no policies configured: set [authz] policies to a .cedar file or a directory of them \
                 (MODELCOPY_AUTHZ__POLICIES); every call is denied unless a policy permits it. \
                 deploy/policies/dev.cedar permits everything, for development only"
                    .into(),
            ));
        };
        let files = Files { policies: &policies, schema: settings.schema.as_deref() };
        let (digest, read) = files.read();
        let compiled =
            read.and_then(|(schema_name, schema, sources)| Policies::compile(&schema_name, &schema, &sources))?;
        let ids = compiled.ids();
        info!(policies = %policies.display(), ids = ?ids, "authorization policies loaded");
        let (status, _) = watch::channel(ReloadStatus { loaded: 1, refused: 0, last_error: None, policy_ids: ids });
        Ok(Arc::new(PolicyStore {
            policies,
            schema: settings.schema.clone(),
            reload_interval: (settings.reload_interval_ms > 0)
                .then(|| Duration::from_millis(settings.reload_interval_ms)),
            current: RwLock::new(Arc::new(compiled)),
            last_read: Mutex::new(digest),
            status,
        }))
    }

    /// The policies in force now.
    pub fn current(&self) -> Arc<Policies> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Follows what the store does: `changed().await` wakes at every load or refusal.
    pub fn status(&self) -> watch::Receiver<ReloadStatus> {
        self.status.subscribe()
    }

    /// Reads the files and, if they changed since last read (or `force`), compiles them and swaps the new set in.
    /// Returns whether a new set is in force; a refused set leaves the old one and is counted in [`Self::status`].
    pub fn reload(&self, force: bool) -> bool {
        let policies = &self.policies;
        let files = Files { policies, schema: self.schema.as_deref() };
        let mut last_read = self.last_read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (digest, read) = files.read();
        if digest == *last_read && !force {
            return false;
        }
        *last_read = digest;
        match read.and_then(|(schema_name, schema, sources)| Policies::compile(&schema_name, &schema, &sources)) {
            Ok(compiled) => {
                let ids = compiled.ids();
                *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(compiled);
                info!(policies = %policies.display(), ids = ?ids, "authorization policies reloaded");
                self.status.send_modify(|s| {
                    s.loaded += 1;
                    s.last_error = None;
                    s.policy_ids = ids;
                });
                true
            }
            Err(err) => {
                let path = policies.display();
                error!(policies = %path, %err, "new authorization policies refused; the previous ones stay in force");
                self.status.send_modify(|s| {
                    s.refused += 1;
                    s.last_error = Some(err.0);
                });
                false
            }
        }
    }

    /// Reloads on SIGHUP and, unless configured off, whenever the files' content changes, until shutdown (see
    /// [`super::reload`]).
    pub fn watch(self: &Arc<Self>, shutdown: Shutdown) -> JoinHandle<()> {
        let store = self.clone();
        super::reload::keep_reloading("policies", self.reload_interval, shutdown, move |force| {
            store.reload(force);
        })
    }
}

impl Authorizer for PolicyStore {
    fn authorize(&self, principal: &Principal, action: Action, resource: &Resource) -> AuthzDecision {
        self.current().decide(principal, action, resource)
    }
}

/// The files a policy set is read from.
struct Files<'a> {
    policies: &'a Path,
    schema: Option<&'a Path>,
}

type Read = (String, String, Vec<PolicySource>);

impl Files<'_> {
    /// The schema (name, text) and policy sources, with a digest of all of it — or of the error, so that the same
    /// unreadable file is refused once, not at every poll.
    fn read(&self) -> ([u8; 32], Result<Read, PolicyError>) {
        let read = self.read_all();
        let mut digest = Sha256::new();
        match &read {
            Ok((schema_name, schema, sources)) => {
                for (name, text) in
                    std::iter::once((schema_name, schema)).chain(sources.iter().map(|s| (&s.name, &s.text)))
                {
                    for part in [name, text] {
                        digest.update((part.len() as u64).to_be_bytes());
                        digest.update(part.as_bytes());
                    }
                }
            }
            Err(err) => digest.update(format!("error: {err}").as_bytes()),
        }
        (digest.finalize().into(), read)
    }

    fn read_all(&self) -> Result<Read, PolicyError> {
        let (schema_name, schema) = match self.schema {
            Some(path) => (display_name(path), read_text(path)?),
            None => ("built-in modelcopy.cedarschema".to_owned(), BUILT_IN_SCHEMA.to_owned()),
        };
        let paths = if self.policies.is_dir() {
            let entries = std::fs::read_dir(self.policies)
                .map_err(|err| PolicyError(format!("{}: {err}", self.policies.display())))?;
            let mut paths = Vec::new();
            for entry in entries {
                let path = entry.map_err(|err| PolicyError(format!("{}: {err}", self.policies.display())))?.path();
                if path.extension().is_some_and(|e| e == "cedar") && path.is_file() {
                    paths.push(path);
                }
            }
            paths.sort();
            paths
        } else {
            vec![self.policies.to_path_buf()]
        };
        let sources = paths
            .iter()
            .map(|path| Ok(PolicySource { name: display_name(path), text: read_text(path)? }))
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok((schema_name, schema, sources))
    }
}

/// A file's name, as errors and generated policy ids show it.
fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
}

fn read_text(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|err| PolicyError(format!("cannot read {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::resource::CopyResource;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir() -> Dir {
        let dir = std::env::temp_dir().join(format!("modelcopy-policies-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    const PERMIT_GET: &str = "@id(\"get\") permit(principal, action == ModelCopy::Action::\"GetCopy\", resource);";
    const PERMIT_LIST: &str = "@id(\"list\") permit(principal, action == ModelCopy::Action::\"ListCopies\", resource);";

    fn settings(policies: &Path) -> AuthzSettings {
        AuthzSettings { policies: Some(policies.to_path_buf()), ..AuthzSettings::default() }
    }

    fn allows(store: &PolicyStore, action: Action) -> bool {
        let copy = Resource::Copy(CopyResource {
            id: None,
            owner: "alice".into(),
            source_account: "111111111111".into(),
            destination_account: "222222222222".into(),
            region: "us-east-1".into(),
            source_project: "p".into(),
            destination_project: "q".into(),
        });
        store.authorize(&Principal::new("alice", vec![], "test"), action, &copy).allowed
    }

    #[test]
    fn without_policies_there_is_no_start() {
        let err = PolicyStore::load(&AuthzSettings::default()).unwrap_err();
        assert!(err.0.contains("[authz] policies"), "{err}");
    }

    #[test]
    fn an_invalid_file_at_start_up_is_refused() {
        let dir = dir();
        let file = dir.0.join("p.cedar");
        std::fs::write(&file, "permit(principal, action, resource").unwrap();
        assert!(PolicyStore::load(&settings(&file)).unwrap_err().0.starts_with("p.cedar:"));
        assert!(PolicyStore::load(&settings(&dir.0.join("missing.cedar"))).unwrap_err().0.contains("cannot read"));
    }

    #[test]
    fn an_invalid_change_is_refused_and_the_old_policies_stay() {
        let dir = dir();
        let file = dir.0.join("p.cedar");
        std::fs::write(&file, PERMIT_GET).unwrap();
        let store = PolicyStore::load(&settings(&file)).unwrap();
        assert!(allows(&store, Action::GetCopy));
        assert!(!store.reload(false), "nothing changed");

        std::fs::write(&file, "permit(principal, action, resource) when { resource.nope };").unwrap();
        assert!(!store.reload(false));
        let status = store.status().borrow().clone();
        assert_eq!((status.loaded, status.refused), (1, 1));
        assert!(status.last_error.as_deref().unwrap().contains("p.cedar"), "{status:?}");
        assert!(allows(&store, Action::GetCopy));
        assert!(!store.reload(false), "the same bad file is refused once");
        assert_eq!(store.status().borrow().refused, 1);

        std::fs::write(&file, PERMIT_LIST).unwrap();
        assert!(store.reload(false));
        assert!(!allows(&store, Action::GetCopy));
        assert!(allows(&store, Action::ListCopies));
        let status = store.status().borrow().clone();
        assert_eq!((status.loaded, status.refused, status.last_error), (2, 1, None));
        assert_eq!(status.policy_ids, ["list"]);
        assert!(store.reload(true), "a forced reload compiles even unchanged files");
    }

    #[test]
    fn a_directory_is_every_cedar_file_in_it() {
        let dir = dir();
        std::fs::write(dir.0.join("a.cedar"), PERMIT_GET).unwrap();
        std::fs::write(dir.0.join("b.cedar"), PERMIT_LIST).unwrap();
        std::fs::write(dir.0.join("notes.txt"), "not a policy").unwrap();
        let store = PolicyStore::load(&settings(&dir.0)).unwrap();
        assert_eq!(store.current().ids(), ["get", "list"]);
        std::fs::remove_file(dir.0.join("b.cedar")).unwrap();
        assert!(store.reload(false));
        assert!(!allows(&store, Action::ListCopies));
    }

    #[test]
    fn a_schema_file_replaces_the_built_in_one() {
        let dir = dir();
        let file = dir.0.join("p.cedar");
        std::fs::write(&file, PERMIT_GET).unwrap();
        let schema = dir.0.join("s.cedarschema");
        std::fs::write(&schema, BUILT_IN_SCHEMA.replace("action GetCopy, ", "action ")).unwrap();
        let settings = AuthzSettings { schema: Some(schema), ..settings(&file) };
        let err = PolicyStore::load(&settings).unwrap_err();
        assert!(err.0.contains("p.cedar"), "GetCopy is not in that schema: {err}");
    }

    #[tokio::test]
    async fn the_watcher_picks_up_a_change() {
        let dir = dir();
        let file = dir.0.join("p.cedar");
        std::fs::write(&file, PERMIT_GET).unwrap();
        let store = PolicyStore::load(&AuthzSettings { reload_interval_ms: 20, ..settings(&file) }).unwrap();
        let (trigger, shutdown) = crate::shutdown::channel();
        let watcher = store.watch(shutdown);
        let mut status = store.status();
        std::fs::write(&file, PERMIT_LIST).unwrap();
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.loaded == 2))
            .await
            .expect("reloaded within 10 s")
            .unwrap();
        assert!(allows(&store, Action::ListCopies));
        trigger.fire();
        watcher.await.unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sighup_reloads_even_with_polling_off() {
        let dir = dir();
        let file = dir.0.join("p.cedar");
        std::fs::write(&file, PERMIT_GET).unwrap();
        let store = PolicyStore::load(&AuthzSettings { reload_interval_ms: 0, ..settings(&file) }).unwrap();
        let (trigger, shutdown) = crate::shutdown::channel();
        let watcher = store.watch(shutdown);
        let mut status = store.status();
        std::fs::write(&file, PERMIT_LIST).unwrap();
        let sent = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status();
        assert!(sent.unwrap().success());
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.loaded >= 2))
            .await
            .expect("reloaded within 10 s of SIGHUP")
            .unwrap();
        assert!(allows(&store, Action::ListCopies));
        trigger.fire();
        watcher.await.unwrap();
    }
}
