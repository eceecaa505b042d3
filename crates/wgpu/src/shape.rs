//! The launch geometry of pass 1, shared by the host and (as constants prefixed to its source)
//! shaders/sample.wgsl, whose header comment explains the tiling.

/// Vocabulary rows per workgroup tile (the shader's `TILE`): row groups of 4 rows.
pub(crate) const TILE: usize = 64;
const ROW_GROUPS: usize = TILE / 4;
/// Invocations sharing one weight row, each reading 16 bytes per step (the shader's `LANES`). 8
/// measured fastest on the H100 at every batch tile, against 4 and 16 (docs/PERFORMANCE.md,
/// eleventh session): fewer lanes read fewer staged hidden bytes per multiply-add, but a register
/// tile of 4 × 16 with 4 lanes took all 255 registers.
const LANES: usize = 8;
/// Invocations per workgroup (the shader's `THREADS`): `LANES` per row group.
pub(crate) const THREADS: usize = ROW_GROUPS * LANES;
/// f32 of workgroup memory for staged hidden rows: 8 KiB, which with the shader's other arrays
/// (6 KiB at most) fits WebGPU's guaranteed 16 KiB, so every adapter runs the same variants.
const STAGE_FLOATS: usize = 2048;
/// Weight rows are padded to this many bytes: the shader reads them as `vec4<u32>`.
pub(crate) const ROW_ALIGN: usize = 16;

/// Hidden rows per workgroup: each weight word read feeds this many rows (a register tile of 4 ×
/// 16 f32 at most). Larger batches take several workgroups per tile, numbered next to each other so
/// that they read the same weights at about the same time, the second from L2.
pub(crate) const BATCH_TILES: [usize; 5] = [1, 2, 4, 8, 16];

/// One pass-1 pipeline variant: the weight dtype (the shader's `DTYPE`) and the batch tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleShape {
    pub dtype: usize,
    pub batch_tile: usize,
}

impl SampleShape {
    /// The smallest batch tile holding `batch` rows, or the largest.
    pub fn for_batch(dtype: usize, batch: usize) -> Self {
        let batch_tile =
            BATCH_TILES.iter().copied().find(|&t| t >= batch).unwrap_or(BATCH_TILES[BATCH_TILES.len() - 1]);
        SampleShape { dtype, batch_tile }
    }

    /// Index of this variant among the pipelines of its dtype.
    pub fn batch_tile_index(&self) -> usize {
        BATCH_TILES.iter().position(|&t| t == self.batch_tile).expect("a batch tile of BATCH_TILES")
    }

    /// Weights per `vec4<u32>` word.
    fn per_word4(&self) -> usize {
        if self.dtype == 0 {
            4
        } else {
            8
        }
    }

    /// Lane steps per staged hidden chunk: as many as fit the staging for all rows of the tile.
    fn chunk_steps(&self) -> usize {
        (STAGE_FLOATS / self.batch_tile / (LANES * self.per_word4())).max(1)
    }

    /// Lane steps over a weight row of `words` `vec4<u32>` words.
    pub fn steps(&self, words: usize) -> usize {
        words.div_ceil(LANES)
    }

    /// f32 per staged hidden row: whole chunks covering every step, zeros past the row's end.
    pub fn hidden_stride(&self, words: usize) -> usize {
        let chunk = self.chunk_steps() * LANES * self.per_word4();
        self.steps(words).div_ceil(self.chunk_steps()) * chunk
    }

    /// The constants sample.wgsl expects before its source.
    pub fn wgsl_constants(&self) -> String {
        format!(
            "const DTYPE: u32 = {}u;\nconst BATCH_TILE: u32 = {}u;\nconst STAGE_FLOATS: u32 = {}u;\n\
             const CHUNK_STEPS: u32 = {}u;\nconst LANES: u32 = {LANES}u;\nconst THREADS: u32 = {THREADS}u;\n",
            self.dtype,
            self.batch_tile,
            STAGE_FLOATS,
            self.chunk_steps()
        )
    }
}
