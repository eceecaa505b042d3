//! The reference sampler: DESIGN.md §3.2–3.4 written out directly, one Philox evaluation per
//! token, logits from f64 dot products. Slow and obviously right; the fast path is checked
//! against it token for token.

use super::{host_head, load_host_head};
use crate::backend::{Backend, BackendInfo, DeviceInfo, LmHead};
use crate::candidate::{pack, EMPTY};
use crate::error::Result;
use crate::exact;
use crate::logsumexp::LogSumExp;
use crate::noise::gumbel;
use crate::params::Request;
use crate::tensor::LmHeadRef;
use crate::validate;

#[derive(Debug, Default, Clone, Copy)]
pub struct ReferenceBackend;

const NAME: &str = "cpu-reference";

impl Backend for ReferenceBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            backend: NAME,
            devices: vec![DeviceInfo {
                name: "host CPU, one thread, f64 dot products".into(),
                compute_units: Some(1),
                ..Default::default()
            }],
        }
    }

    fn load_lm_head(&self, head: LmHeadRef<'_>) -> Result<LmHead> {
        load_host_head(NAME, head)
    }

    fn supports_constraints(&self) -> bool {
        true
    }

    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        self.launch_with_normalizer(head, req, out, &mut vec![LogSumExp::EMPTY; req.rows.len()])
    }

    fn launch_with_normalizer(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        norms: &mut [LogSumExp],
    ) -> Result<()> {
        let head = host_head(NAME, head)?;
        let samples = req.samples as usize;
        let transforms = validate::transforms(req, head.vocab_size)?;
        for (b, row) in req.rows.iter().enumerate() {
            let mut logits: Vec<f32> = exact::logits_f64(&head, &req.hidden, b).into_iter().map(|l| l as f32).collect();
            transforms[b].apply(head.vocab_offset, &mut logits);
            let inv_t = row.inv_temperature();
            let scaled: Vec<f32> = logits.iter().map(|&l| l * inv_t).collect();
            norms[b] = LogSumExp::of(&scaled);
            for s in 0..samples {
                let mut best = EMPTY;
                for (i, &y) in scaled.iter().enumerate() {
                    let token = head.vocab_offset + i as u32;
                    let score = if row.is_greedy() { y } else { y + gumbel(row.seed, row.offset, s as u32, token) };
                    best = best.max(pack(score, token));
                }
                out[b * samples + s] = best;
            }
        }
        Ok(())
    }
}
