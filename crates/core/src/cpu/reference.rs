//! The reference sampler: DESIGN.md §3.2–3.4 written out directly, one Philox evaluation per
//! token, logits from f64 dot products. Slow and obviously right; the fast path is checked
//! against it token for token. Truncated rows are always cut from their complete ranked row (the
//! materialised path of DESIGN.md §3.6).

use super::{host_head, load_host_head};
use crate::backend::{Backend, BackendInfo, DeviceInfo, LmHead, RowOutputs};
use crate::candidate::{pack, EMPTY};
use crate::error::Result;
use crate::exact;
use crate::features::{Feature, Features};
use crate::logsumexp::LogSumExp;
use crate::noise::gumbel;
use crate::params::Request;
use crate::ranked::Ranked;
use crate::survivors::{finish_row, RowPlan, COMPLETE_LISTS_CERTIFY};
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

    fn features(&self) -> Features {
        Features::of(&Feature::ALL)
    }

    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        let norms = &mut vec![LogSumExp::EMPTY; req.rows.len()];
        self.launch_with_outputs(head, req, out, RowOutputs { norms, top: &mut [] })
    }

    fn launch_with_outputs(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        outputs: RowOutputs<'_>,
    ) -> Result<()> {
        let head = host_head(NAME, head)?;
        let samples = req.samples as usize;
        let transforms = validate::transforms(req, head.vocab_size)?;
        let plans = RowPlan::of_request(req);
        for (b, row) in req.rows.iter().enumerate() {
            let mut logits: Vec<f32> = exact::logits_f64(&head, &req.hidden, b).into_iter().map(|l| l as f32).collect();
            transforms[b].apply(head.vocab_offset, &mut logits);
            let inv_t = row.inv_temperature();
            let scaled: Vec<f32> = logits.iter().map(|&l| l * inv_t).collect();
            let total = LogSumExp::of(scaled.iter().copied());
            let slots = &mut out[b * samples..(b + 1) * samples];
            let plan = &plans[b];
            if plan.samples_in_pass() {
                for (s, slot) in slots.iter_mut().enumerate() {
                    let mut best = EMPTY;
                    for (i, &y) in scaled.iter().enumerate() {
                        let token = head.vocab_offset + i as u32;
                        let score = if row.is_greedy() { y } else { y + gumbel(row.seed, row.offset, s as u32, token) };
                        best = best.max(pack(score, token));
                    }
                    *slot = best;
                }
            }
            outputs.norms[b] = if plan.list_length == 0 {
                total
            } else {
                let top = &mut outputs.top[b * plan.top_n..(b + 1) * plan.top_n];
                let ranked = Ranked::all(&scaled, head.vocab_offset);
                finish_row(plan, row, &ranked, total, slots, top).expect(COMPLETE_LISTS_CERTIFY)
            };
        }
        Ok(())
    }
}
