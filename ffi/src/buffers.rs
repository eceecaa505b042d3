//! Checked views of the caller's buffers.

use crate::error::{fs_status, non_null, Failure};

pub(crate) fn shape(msg: String) -> Failure {
    Failure::new(fs_status::FS_ERROR_SHAPE, msg)
}

/// A caller's typed buffer as a slice, after NULL, alignment and length checks.
///
/// # Safety
/// `ptr` must be NULL or valid for `len` reads of `T`.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, expected: usize, name: &str) -> Result<&'a [T], Failure> {
    non_null(ptr, name)?;
    if !ptr.is_aligned() {
        return Err(shape(format!("{name} at {ptr:p} is not aligned to {} bytes", align_of::<T>())));
    }
    if len != expected {
        return Err(shape(format!("{name} holds {len} elements, expected {expected}")));
    }
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An output buffer, checked as [`slice`] and written only later (nothing is written on failure).
pub(crate) struct Output<T> {
    ptr: *mut T,
    len: usize,
}

impl<T: Copy> Output<T> {
    /// # Safety
    /// `ptr` must be NULL or valid for `len` writes of `T`.
    pub(crate) unsafe fn new(ptr: *mut T, len: usize, expected: usize, name: &str) -> Result<Self, Failure> {
        unsafe { slice(ptr.cast_const(), len, expected, name) }?;
        Ok(Output { ptr, len })
    }

    /// `None` when `ptr` is NULL (an output not asked for), else as [`Output::new`].
    ///
    /// # Safety
    /// As [`Output::new`].
    pub(crate) unsafe fn optional(
        ptr: *mut T,
        len: usize,
        expected: usize,
        name: &str,
    ) -> Result<Option<Self>, Failure> {
        if ptr.is_null() {
            return Ok(None);
        }
        Ok(Some(unsafe { Output::new(ptr, len, expected, name) }?))
    }

    /// Copies `values`, which hold exactly the checked length.
    pub(crate) fn write(self, values: &[T]) {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }.copy_from_slice(values);
    }
}
