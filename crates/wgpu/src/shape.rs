//! The launch geometry of pass 1, shared by the host and (as constants prefixed to its source)
//! shaders/sample.wgsl, whose header comment explains the tiling.

/// Vocabulary rows per workgroup tile (the shader's `TILE`).
pub(crate) const TILE: usize = 64;
/// Invocations sharing one weight row, each reading 16 bytes per step (the shader's `LANES`).
const LANES: usize = 16;
/// f32 of workgroup memory for staged hidden rows: 8 KiB fits WebGPU's 16 KiB guarantee beside
/// the shader's other arrays (4 KiB at most); 16 KiB where the adapter allows, for fewer barriers.
const STAGE_FLOATS: [usize; 1] = [2048];
const OTHER_WORKGROUP_BYTES: usize = 4 * 1024;
/// Weight rows are padded to this many bytes: the shader reads them as `vec4<u32>`.
pub(crate) const ROW_ALIGN: usize = 16;

/// Hidden rows per workgroup: each weight word read feeds this many rows (a register tile).
/// Larger batches take several workgroups per tile, which read the weights together (through L2):
/// a larger register tile would cost occupancy.
pub(crate) const BATCH_TILES: [usize; 4] = [1, 2, 4, 8];

/// Pass-1 pipeline variants per dtype.
pub(crate) const VARIANTS: usize = BATCH_TILES.len() * STAGE_FLOATS.len();

/// One pass-1 pipeline variant: the weight dtype (the shader's `DTYPE`) and the batch tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleShape {
    pub dtype: usize,
    pub batch_tile: usize,
    /// f32 of workgroup memory for staging.
    stage_floats: usize,
}

impl SampleShape {
    /// The smallest batch tile holding `batch` rows, or the largest; staging as large as
    /// `workgroup_bytes` (the adapter's limit) allows.
    pub fn for_batch(dtype: usize, batch: usize, workgroup_bytes: u32) -> Self {
        let batch_tile =
            BATCH_TILES.iter().copied().find(|&t| t >= batch).unwrap_or(BATCH_TILES[BATCH_TILES.len() - 1]);
        let fits = |floats: usize| floats * 4 + OTHER_WORKGROUP_BYTES <= workgroup_bytes as usize;
        let stage_floats = STAGE_FLOATS.iter().copied().rfind(|&f| fits(f)).unwrap_or(STAGE_FLOATS[0]);
        SampleShape { dtype, batch_tile, stage_floats }
    }

    /// Index of this variant among the pipelines of its dtype.
    pub fn variant_index(&self) -> usize {
        let tile = BATCH_TILES.iter().position(|&t| t == self.batch_tile).expect("a batch tile of BATCH_TILES");
        let stage = STAGE_FLOATS.iter().position(|&f| f == self.stage_floats).expect("a size of STAGE_FLOATS");
        tile * STAGE_FLOATS.len() + stage
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
        (self.stage_floats / self.batch_tile / (LANES * self.per_word4())).max(1)
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
             const CHUNK_STEPS: u32 = {}u;\n",
            self.dtype,
            self.batch_tile,
            self.stage_floats,
            self.chunk_steps()
        )
    }
}
