//! Contiguous storage for the series of a [`super::DetectorBank`] that share
//! one detector configuration.
//!
//! Series live in chunks of `lanes` series each. Within a chunk the ring
//! buffers are laid out *slot-major*: position `p` of the ring of lane `l` is
//! at `values[p * lanes + l]`. Series that receive one sample per scrape move
//! their ring heads together, so a tick over all series writes consecutive
//! memory, which is what makes a 100,000-series tick cheap. Chunks are never
//! moved or resized: growth allocates a new chunk and wastes at most one
//! partly used chunk per configuration.

mod batch;
mod tick;

use super::rolling::{ShiftedSums, recompute_period};
use super::zscore::{VerdictInputs, judge};
use super::{Detection, WindowedZScoreConfig};

/// Values per chunk the lane count aims for: 1024 lanes at window 20.
const TARGET_CHUNK_VALUES: usize = 20 * 1024;
/// Most series per chunk.
const MAX_LANES: usize = 1024;

/// The per-series state kept next to its ring buffer: 56 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SlotState {
    sums: ShiftedSums,
    /// Last time the series received a sample, in Unix milliseconds.
    last_seen_ms: i64,
    /// Odd while the slot holds a series, even while free; bumped on every
    /// allocation and release so that ids of evicted series go stale.
    generation: u32,
    /// Next ring position to write; the oldest value once the ring is full.
    head: u32,
    len: u32,
    updates_since_recompute: u32,
}

#[derive(Debug)]
struct Chunk {
    /// `window × lanes` values, slot-major.
    values: Box<[f64]>,
    states: Box<[SlotState]>,
}

/// What every series of a pool needs to know about its configuration.
#[derive(Debug)]
struct PoolParams {
    window: u32,
    inverse_window: f64,
    recompute_period: u32,
    sensitivity: f64,
    min_samples: u32,
}

/// The series that run one [`WindowedZScoreConfig`].
#[derive(Debug)]
pub(crate) struct Pool {
    config: WindowedZScoreConfig,
    /// Copied from `params` for the hot path.
    window: u32,
    params: PoolParams,
    /// `lanes = 1 << lane_shift` series per chunk.
    lane_shift: u32,
    chunks: Vec<Chunk>,
    /// Slots handed out at least once; slots below this are live or free.
    allocated: u32,
    free: Vec<u32>,
}

impl Pool {
    /// An empty pool; `config` must have been validated.
    pub(crate) fn new(config: &WindowedZScoreConfig) -> Self {
        let window = config.window;
        let lanes = (TARGET_CHUNK_VALUES / window).clamp(1, MAX_LANES);
        // A power of two turns slot → (chunk, lane) into a shift and a mask.
        let lane_shift = lanes.ilog2();
        // Validation bounds window (and so min_samples) below 2^16.
        let window = window as u32;
        Self {
            config: config.clone(),
            window,
            params: PoolParams {
                window,
                inverse_window: 1.0 / f64::from(window),
                recompute_period: recompute_period(window),
                sensitivity: config.sensitivity,
                min_samples: config.min_samples() as u32,
            },
            lane_shift,
            chunks: Vec::new(),
            allocated: 0,
            free: Vec::new(),
        }
    }

    pub(crate) fn config(&self) -> &WindowedZScoreConfig {
        &self.config
    }

    fn lanes(&self) -> usize {
        1 << self.lane_shift
    }

    /// Chunk index and lane of `slot`.
    #[inline]
    fn locate(&self, slot: u32) -> (usize, usize) {
        let slot = slot as usize;
        (slot >> self.lane_shift, slot & (self.lanes() - 1))
    }

    /// Takes a free slot for a new series first seen at `now_ms`; returns the
    /// slot and its generation.
    pub(crate) fn allocate(&mut self, now_ms: i64) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.allocated;
                self.allocated += 1;
                if slot as usize >> self.lane_shift == self.chunks.len() {
                    let lanes = self.lanes();
                    self.chunks.push(Chunk {
                        values: vec![0.0; self.window as usize * lanes].into_boxed_slice(),
                        states: vec![SlotState::default(); lanes].into_boxed_slice(),
                    });
                }
                slot
            }
        };
        let (chunk, lane) = self.locate(slot);
        let state = &mut self.chunks[chunk].states[lane];
        let generation = state.generation.wrapping_add(1);
        *state = SlotState {
            last_seen_ms: now_ms,
            generation,
            ..SlotState::default()
        };
        (slot, generation)
    }

    /// Frees `slot`, making ids that point at it stale.
    pub(crate) fn release(&mut self, slot: u32) {
        let (chunk, lane) = self.locate(slot);
        let state = &mut self.chunks[chunk].states[lane];
        state.generation = state.generation.wrapping_add(1);
        self.free.push(slot);
    }

    /// The live state of series (`slot`, `generation`), if it is live.
    #[inline]
    fn live_state(&self, slot: u32, generation: u32) -> Option<&SlotState> {
        let (chunk, lane) = self.locate(slot);
        let state = self.chunks.get(chunk)?.states.get(lane)?;
        (state.generation == generation).then_some(state)
    }

    /// When the live series (`slot`, `generation`) last received a sample.
    pub(crate) fn last_seen_ms(&self, slot: u32, generation: u32) -> Option<i64> {
        self.live_state(slot, generation)
            .map(|state| state.last_seen_ms)
    }

    /// Records that the live series (`slot`, `generation`) was heard from at
    /// `at_ms` without learning a value; `false` if it is not live.
    pub(crate) fn touch(&mut self, slot: u32, generation: u32, at_ms: i64) -> bool {
        if self.live_state(slot, generation).is_none() {
            return false;
        }
        let (chunk, lane) = self.locate(slot);
        let state = &mut self.chunks[chunk].states[lane];
        state.last_seen_ms = state.last_seen_ms.max(at_ms);
        true
    }

    /// Judges the finite `value` for series (`slot`, `generation`) at
    /// `at_ms` against its window, then adds `value` to the window and
    /// records `at_ms` as the series' last sample; `None` if the series is
    /// not live.
    ///
    /// The steps and their order are those of [`super::WindowedZScore`], so
    /// that a series of the bank gives the same results, bit for bit.
    #[inline]
    pub(crate) fn observe(
        &mut self,
        slot: u32,
        generation: u32,
        at_ms: i64,
        value: f64,
    ) -> Option<Detection> {
        let (chunk, lane) = self.locate(slot);
        let ring = Ring {
            lanes: self.lanes(),
            lane,
        };
        let params = &self.params;
        let chunk = self.chunks.get_mut(chunk)?;
        let state = chunk.states.get_mut(lane)?;
        // Ids are only made by `allocate`; a stale id differs from its
        // slot's current generation.
        if state.generation != generation {
            return None;
        }
        if at_ms > state.last_seen_ms {
            state.last_seen_ms = at_ms;
        }
        if state.len < params.min_samples {
            warm_up(state, &mut chunk.values, ring, value, params);
            return Some(Detection::NOT_JUDGED);
        }
        let inverse_len = params.inverse_len(state.len);
        let centred = recompute_if_due(state, &chunk.values, ring, params);
        let detection = judge(&VerdictInputs {
            value,
            mean: state.sums.mean(inverse_len),
            variance: centred * inverse_len,
            sensitivity: params.sensitivity,
        });
        push_unchecked(state, &mut chunk.values, ring, value, params);
        Some(detection)
    }

    /// Bytes of storage held by this pool (rings and states of every chunk,
    /// used or not).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.chunks.len() * self.lanes() * Self::bytes_per_slot(self.window as usize)
    }

    /// Bytes one series occupies at `window`: its ring and its state.
    pub(crate) fn bytes_per_slot(window: usize) -> usize {
        window * size_of::<f64>() + size_of::<SlotState>()
    }
}

/// Where a series' ring lives in its chunk: position `p` is at
/// `values[p * lanes + lane]`.
#[derive(Debug, Clone, Copy)]
struct Ring {
    lanes: usize,
    lane: usize,
}

impl PoolParams {
    /// `1 / len` for a non-empty ring, without dividing once it is full.
    #[inline]
    fn inverse_len(&self, len: u32) -> f64 {
        if len == self.window {
            self.inverse_window
        } else {
            inverse_of_filling_len(len)
        }
    }
}

/// `1 / len` while a ring fills. Out of line so that the compiler does not
/// turn the branch above into a division computed on every sample.
#[cold]
#[inline(never)]
fn inverse_of_filling_len(len: u32) -> f64 {
    1.0 / f64::from(len)
}

/// Adds `value` to a series' ring, leaving the recompute decision to the
/// next read (as `RollingStats::push_unchecked`).
#[inline]
fn push_unchecked(
    state: &mut SlotState,
    values: &mut [f64],
    ring: Ring,
    value: f64,
    params: &PoolParams,
) {
    // Cannot overflow: every observation checks the count first.
    state.updates_since_recompute += 1;
    if state.len != params.window {
        push_while_filling(state, values, ring, value, params);
        return;
    }
    let head = state.head as usize;
    let old = std::mem::replace(&mut values[head * ring.lanes + ring.lane], value);
    state.sums.replace(old, value);
    state.head = if state.head + 1 == params.window {
        0
    } else {
        state.head + 1
    };
}

/// Learns `value` without judging it, while the ring is shorter than
/// `min_samples` (as `WindowedZScore` does).
#[cold]
#[inline(never)]
fn warm_up(state: &mut SlotState, values: &mut [f64], ring: Ring, value: f64, params: &PoolParams) {
    push_unchecked(state, values, ring, value, params);
    recompute_if_due(state, values, ring, params);
}

#[cold]
#[inline(never)]
fn push_while_filling(
    state: &mut SlotState,
    values: &mut [f64],
    ring: Ring,
    value: f64,
    params: &PoolParams,
) {
    if state.len == 0 {
        state.sums = ShiftedSums::starting_at(value);
    } else {
        state.sums.add(value);
    }
    // While filling, the ring holds positions 0..len and head == len.
    values[state.len as usize * ring.lanes + ring.lane] = value;
    state.len += 1;
    state.head = if state.len == params.window {
        0
    } else {
        state.len
    };
}

/// Recomputes a series' sums exactly when due (as
/// `RollingStats::recompute_if_due`); returns the centred sum of squares.
#[inline]
fn recompute_if_due(state: &mut SlotState, values: &[f64], ring: Ring, params: &PoolParams) -> f64 {
    let inverse_len = params.inverse_len(state.len);
    let centred = state.sums.centred_sum_sq(inverse_len);
    if state.updates_since_recompute >= params.recompute_period
        || state.sums.needs_recompute(centred)
    {
        recompute(state, values, ring, params);
        state.sums.centred_sum_sq(inverse_len)
    } else {
        centred
    }
}

/// Recomputes a series' sums exactly from its ring.
#[cold]
fn recompute(state: &mut SlotState, values: &[f64], ring: Ring, params: &PoolParams) {
    let window = (0..state.len as usize).map(|position| values[position * ring.lanes + ring.lane]);
    state.sums = ShiftedSums::recompute(window);
    // As `RollingStats::recompute`: only the periodic recompute restarts
    // the count, so periodic recomputes fall at data-independent positions.
    if state.updates_since_recompute >= params.recompute_period {
        state.updates_since_recompute = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(window: usize) -> Pool {
        Pool::new(&WindowedZScoreConfig {
            window,
            sensitivity: 2.5,
            min_samples: None,
        })
    }

    #[test]
    fn state_is_56_bytes_and_a_series_216_bytes_at_window_20() {
        assert_eq!(size_of::<SlotState>(), 56);
        assert_eq!(Pool::bytes_per_slot(20), 216);
        assert!(Pool::bytes_per_slot(20) <= 256);
    }

    #[test]
    fn lanes_shrink_as_windows_grow() {
        assert_eq!(pool(20).lanes(), 1024);
        assert_eq!(pool(2).lanes(), 1024);
        assert_eq!(pool(21).lanes(), 512);
        assert_eq!(pool(6400).lanes(), 2);
        assert_eq!(pool(100_000).lanes(), 1);
    }

    #[test]
    fn slots_are_reused_with_a_new_generation() {
        let mut pool = pool(3);
        let (a, a_generation) = pool.allocate(0);
        let (b, _) = pool.allocate(0);
        assert_eq!((a, b), (0, 1));
        assert_eq!(a_generation % 2, 1);
        assert!(pool.observe(a, a_generation, 1, 1.0).is_some());
        pool.release(a);
        assert!(pool.observe(a, a_generation, 2, 1.0).is_none());
        assert!(!pool.touch(a, a_generation, 2));
        let (reused, generation) = pool.allocate(5);
        assert_eq!(reused, a);
        assert_ne!(generation, a_generation);
        assert_eq!(pool.last_seen_ms(reused, generation), Some(5));
        // An id for a slot that was never handed out is not live.
        assert!(pool.observe(7, 1, 0, 1.0).is_none());
        assert!(pool.observe(5000, 1, 0, 1.0).is_none());
    }

    #[test]
    fn matches_the_standalone_detector_across_chunks() {
        use crate::detect::{Detector, WindowedZScore};
        let config = WindowedZScoreConfig {
            window: 64,
            sensitivity: 2.0,
            min_samples: Some(4),
        };
        let mut pool = Pool::new(&config);
        assert_eq!(pool.lanes(), 256);
        let slots: Vec<_> = (0..300).map(|_| pool.allocate(0)).collect();
        assert_eq!(pool.chunks.len(), 2);
        let mut reference = WindowedZScore::new(&config).unwrap();
        let (slot, generation) = slots[299];
        for step in 0..2000_u32 {
            let value = 1e6 + f64::from(step % 17) * 0.25 + if step % 97 == 0 { 40.0 } else { 0.0 };
            for &(other, other_generation) in &slots[..3] {
                pool.observe(other, other_generation, 0, -value);
            }
            let got = pool
                .observe(slot, generation, i64::from(step), value)
                .unwrap();
            assert_eq!(got, reference.observe(value).unwrap(), "step {step}");
        }
        assert_eq!(pool.last_seen_ms(slot, generation), Some(1999));
        assert_eq!(pool.allocated_bytes(), 2 * 256 * Pool::bytes_per_slot(64));
    }
}
