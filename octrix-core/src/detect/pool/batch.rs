//! A batch of samples of one series: short batches one by one, long ones
//! through the block kernel, with the series state rebuilt exactly.

use std::sync::{Mutex, PoisonError};

use super::{Pool, PoolParams, Ring, SlotState, push_unchecked, recompute_if_due, warm_up};

use crate::detect::kernel::{RejectedValue, group_len, window_zscores};
use crate::detect::zscore::{VerdictInputs, judge};
use crate::detect::{BatchSummary, Detection, MAX_ABS_VALUE};

/// Outputs below this many per thread are not worth a thread.
const MIN_OUTPUTS_PER_THREAD: usize = 1 << 16;

impl Pool {
    /// Judges and learns every sample of `samples`, in order, for series
    /// (`slot`, `generation`) at `at_ms`, writing each sample's z-score
    /// into `z` (NaN when not judged or rejected) and the rest into `out`.
    /// Returns how many samples were rejected, `None` if the series is not
    /// live.
    ///
    /// Short batches take the steps of [`observe`](Self::observe), so the
    /// same results bit for bit. Long ones (at least two periodic
    /// recomputes long) are judged by the block kernel (see
    /// `detect::kernel`) on up to `threads` threads: the same decisions,
    /// z-scores within about `1e-9` relative. The series state afterwards is
    /// exactly the one-by-one state: it is rebuilt at the batch's last
    /// periodic recompute and the samples after it are replayed.
    pub(crate) fn observe_many_into(
        &mut self,
        (slot, generation): (u32, u32),
        at_ms: i64,
        samples: &[f64],
        z: &mut [f64],
        threads: usize,
        out: &mut BatchSummary,
    ) -> Option<u64> {
        debug_assert_eq!(samples.len(), z.len());
        let (chunk, lane) = self.locate(slot);
        let ring = Ring {
            lanes: self.lanes(),
            lane,
        };
        let params = &self.params;
        let chunk = self.chunks.get_mut(chunk)?;
        let state = chunk.states.get_mut(lane)?;
        if state.generation != generation {
            return None;
        }
        if at_ms > state.last_seen_ms {
            state.last_seen_ms = at_ms;
        }
        let mut series = Series {
            state,
            values: &mut chunk.values,
            ring,
            params,
        };
        // Most batches hold no rejected sample: judge them as if so (the
        // kernel checks the values as it reads them), and only when one
        // shows up, start over from there without the rejected samples.
        let observed = match series.observe_accepted(samples, z, threads, &mut out.anomalies) {
            Ok(()) => return Some(0),
            Err(Unobserved { from }) => from,
        };
        let (samples, z) = (&samples[observed..], &mut z[observed..]);
        let mut valid = Vec::with_capacity(samples.len());
        let mut positions = Vec::with_capacity(samples.len());
        for (index, (&value, z)) in samples.iter().zip(z.iter_mut()).enumerate() {
            if accepted(value) {
                valid.push(value);
                positions.push(observed + index);
            } else {
                *z = f64::NAN;
                out.rejected.push(observed + index);
            }
        }
        let mut valid_z = vec![f64::NAN; valid.len()];
        let first_anomaly = out.anomalies.len();
        let all_observed =
            series.observe_accepted(&valid, &mut valid_z, threads, &mut out.anomalies);
        debug_assert!(all_observed.is_ok(), "only accepted samples are left");
        for (&position, &z_value) in positions.iter().zip(&valid_z) {
            z[position - observed] = z_value;
        }
        for (index, _) in &mut out.anomalies[first_anomaly..] {
            *index = positions[*index];
        }
        Some(out.rejected.len() as u64)
    }
}

/// Whether the detector accepts `value` (NaN fails the comparison too).
#[inline]
fn accepted(value: f64) -> bool {
    value.abs() <= MAX_ABS_VALUE
}

/// A batch met a rejected sample: the samples before `from` were observed,
/// nothing from `from` on was (their z-scores and anomalies are not set).
struct Unobserved {
    from: usize,
}

/// One series of a pool, borrowed for a batch.
struct Series<'a> {
    state: &'a mut SlotState,
    values: &'a mut [f64],
    ring: Ring,
    params: &'a PoolParams,
}

impl Series<'_> {
    fn window(&self) -> usize {
        self.params.window as usize
    }

    /// The ring's `k`-th oldest value of a full ring.
    fn oldest(&self, k: usize) -> f64 {
        let position = (self.state.head as usize + k) % self.window();
        self.values[position * self.ring.lanes + self.ring.lane]
    }

    /// Observes `samples` (indices into `samples` in `anomalies`), which
    /// must all be accepted: the first rejected one stops it with the
    /// position from which nothing was observed.
    fn observe_accepted(
        &mut self,
        samples: &[f64],
        z: &mut [f64],
        threads: usize,
        anomalies: &mut Vec<(usize, Detection)>,
    ) -> Result<(), Unobserved> {
        let window = self.window();
        // Until the ring is full, one by one.
        let filling = (window - self.state.len as usize).min(samples.len());
        if !samples[..filling].iter().all(|&value| accepted(value)) {
            return Err(Unobserved { from: 0 });
        }
        self.observe_one_by_one(&samples[..filling], &mut z[..filling], 0, anomalies);
        let (samples, z) = (&samples[filling..], &mut z[filling..]);
        let period = self.params.recompute_period as usize;
        if samples.len() < 2 * (period + window) {
            if !samples.iter().all(|&value| accepted(value)) {
                return Err(Unobserved { from: filling });
            }
            self.observe_one_by_one(samples, z, filling, anomalies);
            return Ok(());
        }
        // Windows that start in the ring: judged over a copy of the ring
        // followed by the first samples.
        let mut head: Vec<f64> = (0..window).map(|k| self.oldest(k)).collect();
        head.extend_from_slice(&samples[..window]);
        let sensitivity = self.params.sensitivity;
        let before = anomalies.len();
        let judged = window_zscores(
            &head,
            window,
            sensitivity,
            &mut z[..window],
            anomalies,
            filling,
        )
        .and_then(|()| {
            judge_in_parallel(
                samples,
                window,
                sensitivity,
                &mut z[window..],
                anomalies,
                filling + window,
                threads,
            )
        });
        if judged.is_err() {
            anomalies.truncate(before);
            return Err(Unobserved { from: filling });
        }
        self.rebuild_state(&head[..window], samples);
        Ok(())
    }

    /// The steps of `Pool::observe`, sample after sample; `index_offset` is
    /// the position of `samples[0]` in the batch.
    fn observe_one_by_one(
        &mut self,
        samples: &[f64],
        z: &mut [f64],
        index_offset: usize,
        anomalies: &mut Vec<(usize, Detection)>,
    ) {
        let (state, params, ring) = (&mut *self.state, self.params, self.ring);
        for (index, (&value, z)) in samples.iter().zip(z.iter_mut()).enumerate() {
            if state.len < params.min_samples {
                warm_up(state, self.values, ring, value, params);
                *z = f64::NAN;
                continue;
            }
            let inverse_len = params.inverse_len(state.len);
            let centred = recompute_if_due(state, self.values, ring, params);
            let detection = judge(&VerdictInputs {
                value,
                mean: state.sums.mean(inverse_len),
                variance: centred * inverse_len,
                sensitivity: params.sensitivity,
            });
            *z = detection.z;
            if detection.is_anomaly {
                anomalies.push((index + index_offset, detection));
            }
            push_unchecked(state, self.values, ring, value, params);
        }
    }

    /// Leaves the state as observing `samples` one by one from the full
    /// ring `history` (oldest first) would have: periodic recomputes fall
    /// every `period` updates whatever the data, so the state after the
    /// batch depends only on the window at the last one and the samples
    /// after it. The ring is rewritten as of that recompute (physical
    /// positions included, since the recompute sums in physical order) and
    /// the rest is replayed.
    fn rebuild_state(&mut self, history: &[f64], samples: &[f64]) {
        let window = self.window();
        let period = self.params.recompute_period as usize;
        // The due-check before sample j sees a count of `updates + j` until
        // it reaches the period, then the count restarts.
        let first = period - self.state.updates_since_recompute as usize;
        let last = first + (samples.len() - 1 - first) / period * period;
        let value_at = |i: usize| {
            if i < window {
                history[i]
            } else {
                samples[i - window]
            }
        };
        let head = (self.state.head as usize + last) % window;
        for k in 0..window {
            let position = (head + k) % window;
            self.values[position * self.ring.lanes + self.ring.lane] = value_at(last + k);
        }
        self.state.head = head as u32;
        self.state.updates_since_recompute = self.params.recompute_period;
        let (state, params, ring) = (&mut *self.state, self.params, self.ring);
        for &value in &samples[last..] {
            recompute_if_due(state, self.values, ring, params);
            push_unchecked(state, self.values, ring, value, params);
        }
    }
}

/// Outputs in one piece of a batch judged on several threads (rounded up
/// to whole kernel groups).
const OUTPUTS_PER_PIECE: usize = 1 << 15;

/// [`window_zscores`] of `data` on up to `threads` threads, the calling one
/// included. The batch is cut into pieces of whole kernel groups, so that
/// the z-scores are bit for bit those of one thread, and each thread takes
/// the next piece when it is free: a thread the OS leaves waiting (other
/// processes on the cores) delays nothing, the others do its share.
fn judge_in_parallel(
    data: &[f64],
    window: usize,
    sensitivity: f64,
    z: &mut [f64],
    anomalies: &mut Vec<(usize, Detection)>,
    index_offset: usize,
    threads: usize,
) -> Result<(), RejectedValue> {
    let threads = threads.clamp(1, (z.len() / MIN_OUTPUTS_PER_THREAD).max(1));
    if threads == 1 {
        return window_zscores(data, window, sensitivity, z, anomalies, index_offset);
    }
    let group = group_len(window);
    let piece = OUTPUTS_PER_PIECE.div_ceil(group) * group;
    let pieces = Mutex::new(z.chunks_mut(piece).enumerate());
    let judge_pieces = || {
        let mut judged = Vec::new();
        loop {
            let next = pieces.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((index, z)) = next else {
                return judged;
            };
            let start = index * piece;
            let mut found = Vec::new();
            let result = window_zscores(
                &data[start..start + z.len() + window],
                window,
                sensitivity,
                z,
                &mut found,
                index_offset + start,
            );
            judged.push((index, result.map(|()| found)));
        }
    };
    let judge_pieces = &judge_pieces;
    let mut judged = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(judge_pieces)).collect();
        let mut judged = judge_pieces();
        for helper in helpers {
            let theirs = helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            judged.extend(theirs);
        }
        judged
    });
    judged.sort_unstable_by_key(|(index, _)| *index);
    for (_, found) in judged {
        anomalies.extend(found?);
    }
    Ok(())
}
