//! One sample for each of many series of a pool: the bank's tick.

use super::{Pool, Ring};
use crate::detect::zscore::{VerdictInputs, judge};
use crate::detect::{TickSummary, check_value};

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
            let detection = judge(&VerdictInputs {
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

impl Pool {
    /// Observes `values[i]` for the series in slot `first_slot + i`, all
    /// live (the caller checked their generations), at `at_ms`, as
    /// [`observe_into`](Self::observe_into) does; `values[0]` is at
    /// `first_position` of the tick. Rejected values are listed in `out`
    /// and still count as a sign of life.
    pub(crate) fn observe_run(
        &mut self,
        first_slot: u32,
        values: &[f64],
        at_ms: i64,
        first_position: usize,
        out: &mut TickSummary,
    ) {
        let lanes = self.lanes();
        let params = &self.params;
        let mut done = 0;
        while done < values.len() {
            let (chunk, first_lane) = self.locate(first_slot + done as u32);
            let count = (lanes - first_lane).min(values.len() - done);
            let chunk = &mut self.chunks[chunk];
            let states = &mut chunk.states[first_lane..first_lane + count];
            let run_values = &values[done..done + count];
            for (offset, (state, &value)) in states.iter_mut().zip(run_values).enumerate() {
                let position = first_position + done + offset;
                if at_ms > state.last_seen_ms {
                    state.last_seen_ms = at_ms;
                }
                if check_value(value).is_err() {
                    out.rejected.push(position);
                    continue;
                }
                let ring = Ring {
                    lanes,
                    lane: first_lane + offset,
                };
                if state.len < params.min_samples {
                    super::warm_up(state, &mut chunk.values, ring, value, params);
                    continue;
                }
                let inverse_len = params.inverse_len(state.len);
                let centred = super::recompute_if_due(state, &chunk.values, ring, params);
                let detection = judge(&VerdictInputs {
                    value,
                    mean: state.sums.mean(inverse_len),
                    variance: centred * inverse_len,
                    sensitivity: params.sensitivity,
                });
                super::push_unchecked(state, &mut chunk.values, ring, value, params);
                out.judged += 1;
                if detection.is_anomaly {
                    out.anomalies.push((position, detection));
                }
            }
            done += count;
        }
    }

    /// Whether series (`slot`, `generation`) is live.
    pub(crate) fn is_live(&self, slot: u32, generation: u32) -> bool {
        self.live_state(slot, generation).is_some()
    }
}
