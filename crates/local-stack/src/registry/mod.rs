//! A Confluent-compatible Schema Registry for local development and tests.
//!
//! It speaks Confluent's REST API (subjects, versions, global schema ids, soft and permanent
//! deletes, compatibility configuration and checks) for Avro schemas, with the compatibility
//! rules of [`avro_events_compat`]. State lives in memory, optionally persisted to a JSON
//! file that is rewritten atomically on every change, so a restart keeps ids and versions.
//! As in Confluent's registry, a schema is identified by its canonical text, the one Java
//! Avro's `Schema.toString()` writes (`"string"` and `{"type":"string"}` are one schema with one
//! id; a `doc`, a default or another property makes another), together with its references,
//! metadata and rule set, and that text is what is stored and served. The global mode
//! (`GET`/`PUT /mode`) is READWRITE or READONLY; in READONLY registrations and deletions are
//! refused with 42205, as a deployment whose clients may only read subjects needs them refused
//! (not persisted).
//!
//! Beyond the basics, as Confluent's registry serves them:
//! - **Schema references** (`references: [{name, subject, version}]` on `POST
//!   /subjects/{s}/versions`, `POST /subjects/{s}` and the compatibility checks; version `-1`
//!   is the latest, stored as its number). A schema may use the named types its references
//!   define (recursively); it is parsed and checked for compatibility with them written out,
//!   and stored as Java Avro writes it after its references (the referenced schemas'
//!   top-level types by name; a type nested in one of them, used directly, written out).
//!   Lookups by id, GUID, version and schema return the references (`GET
//!   /schemas/ids/{id}/subjects` and `/versions` list where an id is registered);
//!   `GET /subjects/{s}/versions/{v}/referencedby` lists the ids referring to a version. A
//!   reference to a missing subject or version is refused with 42201 ("No schema reference
//!   found for subject …"); deleting a version (or subject) another schema refers to with
//!   42206. A request without references that is a stored schema with its references written
//!   out (same metadata and rule set) finds that version, as Confluent's `canLookup` does.
//!   A schema that, its references written out, nests types more than 128 levels deep (a
//!   chain of 129 schemas each holding the previous one) is refused with 42201 naming the
//!   bound, as is a closure of more than 1,000 referenced schemas; the store's work runs on a
//!   thread of its own with a 64 MiB stack, so what is accepted never overflows it.
//! - **Schema GUIDs**: each schema's GUID is the MD5 of its canonical text, references,
//!   metadata and rule set as Confluent computes it, written as a UUID (the same schema has the
//!   same GUID anywhere). Registrations and lookups return it (`guid`), and
//!   `GET /schemas/guids/{guid}` serves the schema.
//! - **Metadata and rule sets** (`metadata: {properties, tags, sensitive}`, `ruleSet:
//!   {domainRules, migrationRules, encodingRules}`) are validated as Confluent validates rule
//!   sets (42210), stored normalized and served back; they are part of the schema's identity
//!   (other metadata, another id). A registration or lookup without either takes those of the
//!   subject's latest version, as Confluent's does. `GET /subjects/{s}/metadata?key=k&value=v`
//!   answers the latest version whose metadata properties include every pair. The registry
//!   stores rules; it does not run them.
//!
//! Not supported: schema types other than Avro, contexts, config-level `defaultMetadata` /
//! `overrideMetadata` / rule sets, and the automatic `confluent:version` property.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use local_stack::registry::SchemaRegistry;
//!
//! let registry = SchemaRegistry::start("127.0.0.1:0".parse().unwrap(), None).await?;
//! println!("schema.registry.url={}", registry.url());
//! registry.shutdown().await
//! # }
//! ```

mod candidate;
mod canonical;
mod contract;
mod error;
mod references;
mod routes;
mod store;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use routes::{CONTENT_TYPE, router};
use store::Store;

/// The registry's shared state: what [`router`] serves. Cheap to clone.
#[derive(Clone)]
pub struct RegistryState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    persist: Option<PathBuf>,
    /// The global mode is READONLY (`PUT /mode`): registrations and deletions are refused, as
    /// a Confluent registry refuses them in that mode (not persisted).
    read_only: AtomicBool,
}

impl std::fmt::Debug for RegistryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryState")
            .field("persist", &self.inner.persist)
            .finish_non_exhaustive()
    }
}

impl RegistryState {
    /// An empty registry kept in memory only.
    pub fn in_memory() -> Self {
        Self::with(Store::default(), None)
    }

    /// A registry persisted to `path` (a JSON file): loaded from it if it exists, rewritten
    /// atomically after every change.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let store = match std::fs::read(&path) {
            Ok(bytes) => {
                let mut store: Store = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                let rebuilt = on_large_stack(|| store.rebuild().map(|()| store))
                    .map_err(|e| io::Error::other(e.message))?;
                let store = rebuilt.map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                tracing::info!(path = %path.display(), "loaded schema registry state");
                store
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Store::default(),
            Err(e) => return Err(e),
        };
        Ok(Self::with(store, Some(path)))
    }

    fn with(store: Store, persist: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                persist,
                read_only: AtomicBool::new(false),
            }),
        }
    }

    /// Sets the global mode: `true` is READONLY (registrations and deletions answered with
    /// 42205, as Confluent answers them), `false` READWRITE. `PUT /mode` sets it too.
    pub fn set_read_only(&self, read_only: bool) {
        self.inner.read_only.store(read_only, Ordering::SeqCst);
    }

    /// Whether the global mode is READONLY.
    pub fn read_only(&self) -> bool {
        self.inner.read_only.load(Ordering::SeqCst)
    }

    /// Refuses a change of `subject` in READONLY mode.
    pub(crate) fn writable(&self, subject: &str) -> Result<(), ApiError> {
        if self.read_only() {
            return Err(ApiError::read_only(subject));
        }
        Ok(())
    }

    pub(crate) async fn read<T: Send>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, ApiError> + Send,
    ) -> Result<T, ApiError> {
        let store = self.inner.store.lock().await;
        let store: &Store = &store;
        on_large_stack(|| f(store))?
    }

    /// Applies a change to a copy of the store, persists the copy if the change says so, and
    /// only then makes it current: a failed write leaves the registry as it was. Reads and
    /// changes run on the store's own thread ([`on_large_stack`]), so do the copy and dropping
    /// the store replaced.
    pub(crate) async fn write<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<(T, bool), ApiError> + Send,
    ) -> Result<T, ApiError>
    where
        T: Send,
    {
        let mut store = self.inner.store.lock().await;
        let current: &Store = &store;
        let (out, changed, next) = on_large_stack(|| {
            let mut next = current.clone();
            let (out, changed) = f(&mut next)?;
            Ok::<_, ApiError>((out, changed, next))
        })??;
        let persisted = match &self.inner.persist {
            Some(_) if !changed => Ok(()),
            Some(path) => match serde_json::to_vec_pretty(&next) {
                Ok(bytes) => {
                    let path = path.clone();
                    tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
                        .await
                        .map_err(ApiError::store)
                        .and_then(|written| written.map_err(ApiError::store))
                }
                Err(e) => Err(ApiError::store(e)),
            },
            None => Ok(()),
        };
        let (unused, result) = match persisted {
            Ok(()) => (std::mem::replace(&mut *store, next), Ok(out)),
            Err(e) => (next, Err(e)),
        };
        // Without a thread the store is dropped here (the work is done either way).
        if let Err(e) = on_large_stack(move || drop(unused)) {
            tracing::warn!(error = %e.message, "the replaced store was dropped in place");
        }
        result
    }
}

/// The stack of the thread the store's work runs on: room for
/// [`MAX_NESTING`](references::MAX_NESTING) levels with a wide margin (the memory is
/// reserved, only what is used is committed).
const STACK_BYTES: usize = 64 << 20;

/// Runs `f` on a thread with a [`STACK_BYTES`] stack and waits for it (the store's
/// operations take milliseconds; the caller holds the store's lock meanwhile anyway). The
/// store's work runs there: parsing a schema with its references written out, checking
/// compatibility, cloning and dropping parsed schemas all recurse once per level of nesting,
/// and a chain of references nests up to [`MAX_NESTING`](references::MAX_NESTING) levels,
/// more than a runtime thread's stack holds (a debug build overflowed 2 MiB at about 93).
///
/// # Errors
/// 50001 when the thread cannot be started.
///
/// # Panics
/// When `f` panics, with its panic.
fn on_large_stack<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R, ApiError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("registry-store".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, f)
            .map_err(|e| ApiError::store(format!("cannot start the store's thread: {e}")))?;
        thread
            .join()
            .map_err(|panic| std::panic::resume_unwind(panic))
    })
}

/// Writes `bytes` to a sibling temporary file, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Starts registries.
#[derive(Debug)]
pub struct SchemaRegistry;

impl SchemaRegistry {
    /// Serves a registry on `addr` (`127.0.0.1:0` picks a free port), persisted to `persist`
    /// if given. Returns once the socket is bound.
    pub async fn start(addr: SocketAddr, persist: Option<PathBuf>) -> io::Result<RegistryHandle> {
        let state = match persist {
            Some(path) => RegistryState::open(path)?,
            None => RegistryState::in_memory(),
        };
        Self::serve(addr, state).await
    }

    /// Serves `state` on `addr`.
    pub async fn serve(addr: SocketAddr, state: RegistryState) -> io::Result<RegistryHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        tracing::info!(%addr, "schema registry listening");
        Ok(RegistryHandle {
            addr,
            stop: Some(tx),
            task: Some(task),
        })
    }
}

/// A running registry. Dropping it stops the server (without waiting for it).
#[derive(Debug)]
pub struct RegistryHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RegistryHandle {
    /// The base URL, e.g. `http://127.0.0.1:41234` (Confluent's `schema.registry.url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for the server.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RegistryHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
