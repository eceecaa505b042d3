//! The device memory of one [`Backend`](flashsampling_core::Backend) call, laid out in one
//! allocation that the backend keeps and reuses: the call's host inputs travel in one upload, its
//! outputs in one download, its zeroed regions are cleared by one memset, and its scratch needs no
//! transfer. Each allocation, copy and event costs
//! microseconds of host time, and a pool's release of a large buffer at every synchronisation costs
//! its mapping again at the next call.

use std::sync::Arc;

use cudarc::driver::{sys, CudaContext, CudaEvent, CudaSlice, CudaStream, DevicePtr};
use flashsampling_core::Result;

use crate::driver::device_error;
use crate::staging::Staging;

/// Every region starts at a multiple of this (the kernels want 16 or 32 bytes).
const ALIGN: usize = 256;

/// A region of the arena: which part, where in it, how many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region {
    part: Part,
    offset: usize,
    pub len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Input,
    Output,
    Zeroed,
    Scratch,
}

/// The layout of one call, and its host inputs packed in the order of their regions.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    inputs: Staging,
    output_len: usize,
    zeroed_len: usize,
    scratch_len: usize,
}

fn aligned(n: usize) -> usize {
    n.next_multiple_of(ALIGN)
}

impl Layout {
    /// A region holding `bytes`, uploaded with the call's other inputs.
    pub fn input(&mut self, bytes: &[u8]) -> Region {
        let offset = self.inputs.len();
        self.inputs.extend(bytes);
        self.inputs.pad_to(aligned(self.inputs.len()));
        Region { part: Part::Input, offset, len: bytes.len() }
    }

    /// A region of `len` bytes the kernels write, downloaded with the call's other outputs.
    pub fn output(&mut self, len: usize) -> Region {
        let offset = self.output_len;
        self.output_len += aligned(len);
        Region { part: Part::Output, offset, len }
    }

    /// A region of `len` bytes that holds zeros when the call's launches begin (a memset: no bytes
    /// travel).
    pub fn zeroed(&mut self, len: usize) -> Region {
        let offset = self.zeroed_len;
        self.zeroed_len += aligned(len);
        Region { part: Part::Zeroed, offset, len }
    }

    /// A region of `len` bytes only the device reads and writes.
    pub fn scratch(&mut self, len: usize) -> Region {
        let offset = self.scratch_len;
        self.scratch_len += aligned(len);
        Region { part: Part::Scratch, offset, len }
    }

    fn total(&self) -> usize {
        self.inputs.len() + self.output_len + self.zeroed_len + self.scratch_len
    }
}

/// The backend's reusable memory: device memory that grows to the largest call seen, and the host
/// bytes the inputs are packed in (reused: fresh ones cost their allocation at every call).
#[derive(Default)]
pub(crate) struct Arena {
    memory: Option<CudaSlice<u8>>,
    inputs: Staging,
    /// Recorded after the last upload: page-locked inputs are read by the device after the upload
    /// is enqueued, so the next call packs its own only once this has passed.
    uploaded: Option<CudaEvent>,
}

/// One call's view of the arena, its inputs uploaded.
pub(crate) struct Call<'a> {
    arena: &'a mut Arena,
    base: sys::CUdeviceptr,
    layout: Layout,
}

impl Arena {
    /// An arena whose inputs are packed in page-locked memory of `ctx` (staging.rs).
    pub fn page_locked(ctx: Arc<CudaContext>) -> Self {
        Arena { inputs: Staging::page_locked(ctx), ..Arena::default() }
    }

    /// An empty layout whose inputs go to the arena's host bytes, once the last upload from them
    /// has finished.
    pub fn layout(&mut self) -> Result<Layout> {
        if let Some(uploaded) = &self.uploaded {
            uploaded.synchronize().map_err(|e| device_error("waiting for the last upload", e))?;
        }
        let mut inputs = std::mem::take(&mut self.inputs);
        inputs.clear();
        Ok(Layout { inputs, ..Layout::default() })
    }

    /// Lays `layout` over the arena (growing it when needed) and enqueues the upload of its inputs
    /// and the clearing of its zeroed regions.
    pub fn bind(&mut self, stream: &Arc<CudaStream>, layout: Layout) -> Result<Call<'_>> {
        let total = layout.total().max(ALIGN);
        if self.memory.as_ref().is_none_or(|m| m.len() < total) {
            // Drop the old memory first: the pool can hand it back.
            self.memory = None;
            // SAFETY: every region is written before it is read: inputs by the upload below,
            // outputs and scratch by the kernels (or zeroed by their launches).
            let memory = unsafe { stream.alloc::<u8>(total) }.map_err(|e| device_error("alloc", e))?;
            self.memory = Some(memory);
        }
        let base = self.memory.as_ref().expect("allocated above").device_ptr(stream).0;
        if !layout.inputs.is_empty() {
            // SAFETY: the arena holds `total` bytes from `base`; the inputs are its first bytes. They
            // go back to the arena with the call, and are packed again only after `uploaded`.
            unsafe { cudarc::driver::result::memcpy_htod_async(base, layout.inputs.bytes(), stream.cu_stream()) }
                .map_err(|e| device_error("upload", e))?;
            if layout.inputs.is_page_locked() {
                match &self.uploaded {
                    Some(event) => event.record(stream),
                    None => stream.record_event(None).map(|event| self.uploaded = Some(event)),
                }
                .map_err(|e| device_error("recording the upload", e))?;
            }
        }
        if layout.zeroed_len > 0 {
            let zeroed = base + (layout.inputs.len() + layout.output_len) as u64;
            // SAFETY: the zeroed part lies inside the arena's `total` bytes.
            unsafe { cudarc::driver::result::memset_d8_async(zeroed, 0, layout.zeroed_len, stream.cu_stream()) }
                .map_err(|e| device_error("zeroing", e))?;
        }
        Ok(Call { arena: self, base, layout })
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.arena.inputs = std::mem::take(&mut self.layout.inputs);
    }
}

impl Call<'_> {
    fn memory(&self) -> &CudaSlice<u8> {
        self.arena.memory.as_ref().expect("bound calls have memory")
    }

    /// The device address of `region`.
    pub fn ptr(&self, region: Region) -> sys::CUdeviceptr {
        let part = match region.part {
            Part::Input => 0,
            Part::Output => self.layout.inputs.len(),
            Part::Zeroed => self.layout.inputs.len() + self.layout.output_len,
            Part::Scratch => self.layout.inputs.len() + self.layout.output_len + self.layout.zeroed_len,
        };
        self.base + (part + region.offset) as u64
    }

    /// Waits for the stream, downloading the bytes of any `region`.
    pub fn read(&self, region: Region, stream: &Arc<CudaStream>) -> Result<Vec<u8>> {
        let start = (self.ptr(region) - self.base) as usize;
        let mut bytes = vec![0u8; region.len];
        stream
            .memcpy_dtoh(&self.memory().slice(start..start + region.len), &mut bytes)
            .map_err(|e| device_error("download", e))?;
        Ok(bytes)
    }

    /// Waits for the stream, downloading every output region: their bytes, in one buffer.
    pub fn download(&self, stream: &Arc<CudaStream>) -> Result<Outputs> {
        let mut bytes = vec![0u8; self.layout.output_len];
        if !bytes.is_empty() {
            let start = self.layout.inputs.len();
            let outputs = self.memory().slice(start..start + bytes.len());
            stream.memcpy_dtoh(&outputs, &mut bytes).map_err(|e| device_error("download", e))?;
        }
        stream.synchronize().map_err(|e| device_error("synchronize", e))?;
        Ok(Outputs { bytes })
    }
}

/// The downloaded output regions of a call.
pub(crate) struct Outputs {
    bytes: Vec<u8>,
}

impl Outputs {
    /// The bytes of output `region`.
    pub fn get(&self, region: Region) -> &[u8] {
        debug_assert_eq!(region.part, Part::Output);
        &self.bytes[region.offset..region.offset + region.len]
    }

    /// Output `region` as little-endian `u64` values.
    pub fn u64s(&self, region: Region) -> Vec<u64> {
        self.get(region).chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
    }

    /// Output `region` as little-endian `u32` values.
    pub fn u32s(&self, region: Region) -> Vec<u32> {
        self.get(region).chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
    }
}

/// Little-endian bytes of `u32` values, for a region.
pub(crate) fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of `f32` values, for a region.
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_aligned_and_disjoint() {
        let mut layout = Layout::default();
        let a = layout.input(&[1; 10]);
        let b = layout.input(&[2; 300]);
        let c = layout.output(8);
        let d = layout.output(513);
        let e = layout.scratch(1);
        let f = layout.zeroed(300);
        let g = layout.zeroed(4);
        assert_eq!((a.offset, b.offset, c.offset, d.offset, e.offset), (0, 256, 0, 256, 0));
        assert_eq!((f.offset, g.offset), (0, 512));
        assert_eq!(layout.inputs.len(), 768);
        assert_eq!(&layout.inputs.bytes()[256..556], &[2; 300][..]);
        assert_eq!(layout.total(), 768 + 1024 + 768 + 256);
    }
}
