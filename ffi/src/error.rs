//! Status codes, the thread-local last-error message and the panic boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use flashsampling::Error;

/// The result of every fallible call. `FS_OK` is 0; any other value leaves a message that
/// `flashsampling_last_error` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fs_status {
    FS_OK = 0,
    /// A required pointer argument was NULL.
    FS_ERROR_NULL_POINTER = 1,
    /// A handle is not live: never created, already destroyed, or of another kind.
    FS_ERROR_INVALID_HANDLE = 2,
    /// A buffer length or dimension does not match the shape it is declared with.
    FS_ERROR_SHAPE = 3,
    /// A parameter is out of its domain (temperature NaN or negative, unknown dtype code ...).
    FS_ERROR_PARAM = 4,
    /// The backend cannot run in this build or on this machine.
    FS_ERROR_UNAVAILABLE = 5,
    /// The backend runs, but not with these inputs or not through this entry point.
    FS_ERROR_UNSUPPORTED = 6,
    /// The LM head was loaded by another context's backend.
    FS_ERROR_FOREIGN_HEAD = 7,
    /// The device or its driver failed while running.
    FS_ERROR_DEVICE = 8,
    /// A bug in the library: a panic was caught at the ABI boundary.
    FS_ERROR_PANIC = 9,
}

/// A failure on its way to the caller: a status and its message.
pub(crate) struct Failure(pub fs_status, pub String);

impl Failure {
    pub(crate) fn new(status: fs_status, msg: impl Into<String>) -> Self {
        Failure(status, msg.into())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let status = match e {
            Error::Shape(_) => fs_status::FS_ERROR_SHAPE,
            Error::Param { .. } => fs_status::FS_ERROR_PARAM,
            Error::Unavailable { .. } => fs_status::FS_ERROR_UNAVAILABLE,
            Error::Unsupported { .. } => fs_status::FS_ERROR_UNSUPPORTED,
            Error::ForeignLmHead { .. } => fs_status::FS_ERROR_FOREIGN_HEAD,
            Error::Device { .. } => fs_status::FS_ERROR_DEVICE,
        };
        Failure(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    // An interior NUL would truncate the message; replace it rather than lose the message.
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// The message of the last failed call on this thread, or "" after a call that succeeded.
///
/// The string is owned by the library and stays valid until the next `flashsampling_*` call on
/// the same thread; copy it to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn flashsampling_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Runs the body of an export: catches panics and records the message of a failure.
pub(crate) fn boundary(body: impl FnOnce() -> Result<(), Failure>) -> fs_status {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Failure::new(fs_status::FS_ERROR_PANIC, format!("internal error (panic): {what}")))
    });
    match result {
        Ok(()) => {
            set_last_error("");
            fs_status::FS_OK
        }
        Err(Failure(status, msg)) => {
            set_last_error(&msg);
            status
        }
    }
}

/// A NULL check with a message naming the argument.
pub(crate) fn non_null<T>(ptr: *const T, name: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(Failure::new(fs_status::FS_ERROR_NULL_POINTER, format!("{name} is NULL")))
    } else {
        Ok(())
    }
}
