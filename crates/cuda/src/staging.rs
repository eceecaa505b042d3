//! The host bytes a call's inputs are packed in before their one upload. With a context they live
//! in page-locked memory, grown (never shrunk) to the largest call: an upload from it is a DMA that
//! returns at once, where an upload from pageable memory first goes through the driver's own
//! staging copies, on the host's clock (15–67 µs of a call with 1 MB of hidden rows on an H100,
//! docs/PERFORMANCE.md, twentieth session). Without one (a layout alone, or when the driver refuses
//! page-locked memory) they live in an ordinary vector.

use std::sync::Arc;

use cudarc::driver::{CudaContext, PinnedHostSlice};

/// Page-locked capacity allocated first: a call of a few rows fits.
const MIN_PINNED: usize = 64 << 10;

#[derive(Debug)]
enum Buffer {
    Pageable(Vec<u8>),
    /// `ptr` is `memory`'s first byte, taken once: the slice's accessors wait on an event of its
    /// own, which is never recorded here (uploads name its bytes, not the slice).
    Pinned {
        memory: PinnedHostSlice<u8>,
        ptr: *mut u8,
    },
}

// SAFETY: `ptr` points into `memory`, which is Send, and moves with it.
unsafe impl Send for Buffer {}

/// Growable host bytes, page-locked where a context allows.
#[derive(Debug)]
pub(crate) struct Staging {
    buffer: Buffer,
    len: usize,
    /// Where page-locked memory comes from; None once the driver has refused it.
    ctx: Option<Arc<CudaContext>>,
}

impl Default for Staging {
    fn default() -> Self {
        Staging { buffer: Buffer::Pageable(Vec::new()), len: 0, ctx: None }
    }
}

impl Staging {
    /// Bytes that move to page-locked memory of `ctx` at their first growth.
    pub fn page_locked(ctx: Arc<CudaContext>) -> Self {
        Staging { ctx: Some(ctx), ..Staging::default() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Whether the bytes are page-locked.
    pub fn is_page_locked(&self) -> bool {
        matches!(self.buffer, Buffer::Pinned { .. })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.whole()[..self.len]
    }

    /// Appends `bytes`.
    pub fn extend(&mut self, bytes: &[u8]) {
        let start = self.len;
        self.set_len(start + bytes.len());
        self.whole_mut()[start..start + bytes.len()].copy_from_slice(bytes);
    }

    /// Appends zeros up to `len` bytes.
    pub fn pad_to(&mut self, len: usize) {
        let start = self.len;
        if len > start {
            self.set_len(len);
            self.whole_mut()[start..len].fill(0);
        }
    }

    fn set_len(&mut self, len: usize) {
        if len > self.capacity() {
            self.grow(len);
        }
        self.len = len;
    }

    fn capacity(&self) -> usize {
        match &self.buffer {
            Buffer::Pageable(v) => v.len(),
            Buffer::Pinned { memory, .. } => memory.len(),
        }
    }

    /// Moves the bytes to a buffer of at least `len` bytes: page-locked while the context gives it.
    fn grow(&mut self, len: usize) {
        let capacity = len.next_power_of_two().max(MIN_PINNED);
        // SAFETY: the new memory is zeroed before any slice covers it.
        let pinned = self.ctx.as_ref().map(|ctx| unsafe { ctx.alloc_pinned_with_flags::<u8>(capacity, 0) });
        let mut buffer = match pinned.map(|p| p.and_then(|mut memory| Ok((memory.as_mut_ptr()?, memory)))) {
            Some(Ok((ptr, memory))) => {
                // SAFETY: `ptr` starts `capacity` bytes of host memory that nothing else uses yet;
                // zeroed, every byte a slice covers is initialised.
                unsafe { ptr.write_bytes(0, capacity) };
                Buffer::Pinned { memory, ptr }
            }
            Some(Err(_)) | None => {
                self.ctx = None;
                Buffer::Pageable(vec![0; capacity])
            }
        };
        let kept = self.len;
        slice_mut(&mut buffer)[..kept].copy_from_slice(&self.whole()[..kept]);
        self.buffer = buffer;
    }

    fn whole(&self) -> &[u8] {
        match &self.buffer {
            Buffer::Pageable(v) => v,
            // SAFETY: `memory` holds `memory.len()` bytes from `ptr`, zeroed when allocated.
            Buffer::Pinned { memory, ptr } => unsafe { std::slice::from_raw_parts(*ptr, memory.len()) },
        }
    }

    fn whole_mut(&mut self) -> &mut [u8] {
        slice_mut(&mut self.buffer)
    }
}

fn slice_mut(buffer: &mut Buffer) -> &mut [u8] {
    match buffer {
        Buffer::Pageable(v) => v,
        // SAFETY: as in `whole`; `&mut` on the buffer makes this the only view.
        Buffer::Pinned { memory, ptr } => unsafe { std::slice::from_raw_parts_mut(*ptr, memory.len()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_pads_across_growth() {
        let mut s = Staging::default();
        s.extend(&[7; 10]);
        s.pad_to(16);
        let big: Vec<u8> = (0..MIN_PINNED + 5).map(|i| i as u8).collect();
        s.extend(&big);
        assert_eq!(s.len(), 16 + big.len());
        assert_eq!(&s.bytes()[..10], &[7; 10]);
        assert_eq!(&s.bytes()[10..16], &[0; 6]);
        assert_eq!(&s.bytes()[16..], &big[..]);
        assert!(!s.is_page_locked());
        s.clear();
        s.extend(&[1, 2]);
        assert_eq!(s.bytes(), &[1, 2]);
    }
}
