//! The registry of live handles: what lets a call refuse a destroyed or foreign pointer
//! (best effort: an address reused by a later handle of the same kind cannot be told apart).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::{fs_status, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Context,
    LmHead,
}

static LIVE: Mutex<BTreeMap<usize, Kind>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<usize, Kind>> {
    // A panic never happens while the lock is held; recover the map regardless.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves `value` to the heap and registers it; the pointer is the caller's handle.
pub(crate) fn register<T>(value: T, kind: Kind) -> *mut T {
    let ptr = Box::into_raw(Box::new(value));
    live().insert(ptr as usize, kind);
    ptr
}

fn invalid(kind: Kind) -> Failure {
    Failure::new(
        fs_status::FS_ERROR_INVALID_HANDLE,
        format!("the {kind:?} handle is not live (already destroyed, never created, or another kind)"),
    )
}

/// Borrows a registered handle.
///
/// # Safety
/// `ptr` must be NULL or a pointer this module registered as `kind` for a `T`.
pub(crate) unsafe fn borrow<'a, T>(ptr: *const T, kind: Kind, name: &str) -> Result<&'a T, Failure> {
    crate::error::non_null(ptr, name)?;
    if live().get(&(ptr as usize)) != Some(&kind) {
        return Err(invalid(kind));
    }
    Ok(unsafe { &*ptr })
}

/// Unregisters and frees a handle; a second destroy of the same pointer is refused.
///
/// # Safety
/// As for [`borrow`]; no other thread may use the handle meanwhile.
pub(crate) unsafe fn destroy<T>(ptr: *mut T, kind: Kind, name: &str) -> Result<(), Failure> {
    crate::error::non_null(ptr, name)?;
    let mut live = live();
    if live.get(&(ptr as usize)) != Some(&kind) {
        return Err(invalid(kind));
    }
    live.remove(&(ptr as usize));
    drop(live);
    drop(unsafe { Box::from_raw(ptr) });
    Ok(())
}
