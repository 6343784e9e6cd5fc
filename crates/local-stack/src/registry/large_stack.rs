//! The store's work runs on a thread of its own with a large stack: parsing a schema with its
//! references written out, checking compatibility, cloning and dropping parsed schemas all
//! recurse once per level of nesting, and a chain of references nests up to
//! [`MAX_NESTING`](super::references::MAX_NESTING) levels, more than a runtime thread's stack
//! holds (a debug build overflowed 2 MiB at about 93 levels).

use super::error::ApiError;

/// The stack of the thread the store's work runs on: room for
/// [`MAX_NESTING`](super::references::MAX_NESTING) levels with a wide margin (the memory is
/// reserved, only what is used is committed).
const STACK_BYTES: usize = 64 << 20;

/// Runs `f` on a thread with a [`STACK_BYTES`] stack and waits for it (the store's
/// operations take milliseconds; the caller holds the store's lock meanwhile anyway).
///
/// # Errors
/// 50001 when the thread cannot be started.
///
/// # Panics
/// When `f` panics, with its panic.
pub(crate) fn run<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R, ApiError> {
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
