//! One sample for each of many series of a pool: the bank's tick.

use super::{Pool, Ring};
use crate::detect::TickSummary;

impl Pool {
    /// Observes `value` for series (`slot`, `generation`) as
    /// [`observe`](Self::observe) does, recording the verdict in `out` at
    /// `position` instead of returning it: only an anomaly's full verdict is
    /// kept. `false` if the series is not live.
    #[inline(always)]
    pub(crate) fn observe_into(
        &mut self,
        slot: u32,
        generation: u32,
        at_ms: i64,
        value: f64,
        position: usize,
        out: &mut TickSummary,
    ) -> bool {
        let (chunk, lane) = self.locate(slot);
        let lanes = self.lanes();
        let params = &self.params;
        let Some(chunk) = self.chunks.get_mut(chunk) else {
            return false;
        };
        let Some(state) = chunk.states.get_mut(lane) else {
            return false;
        };
        if state.generation != generation {
            return false;
        }
        if at_ms > state.last_seen_ms {
            state.last_seen_ms = at_ms;
        }
        let ring = Ring { lanes, lane };
        let detection = if state.len < params.min_samples {
            super::warm_up(state, &mut chunk.values, ring, value, params);
            return true;
        } else {
            let inverse_len = params.inverse_len(state.len);
            let centred = super::recompute_if_due(state, &chunk.values, ring, params);
            let detection = crate::detect::zscore::judge(&crate::detect::zscore::VerdictInputs {
                value,
                mean: state.sums.mean(inverse_len),
                variance: centred * inverse_len,
                sensitivity: params.sensitivity,
            });
            super::push_unchecked(state, &mut chunk.values, ring, value, params);
            detection
        };
        out.judged += 1;
        if detection.is_anomaly {
            out.anomalies.push((position, detection));
        }
        true
    }
}
