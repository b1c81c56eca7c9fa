//! Incident identifiers, generated deterministically: no randomness and no
//! clock in the core.

use super::model::IncidentId;

/// Where the book gets new incident ids from. Implementations must never
/// repeat an id. Closures implement it.
pub trait IncidentIdGenerator: Send + Sync {
    /// The next unused id.
    fn next_id(&mut self) -> IncidentId;

    /// Learns that `used` was handed out before (by an earlier run of the
    /// process, read back from storage), so that it is never produced
    /// again. Generators that cannot repeat an id (random or externally
    /// coordinated ones) need not do anything, which is the default.
    fn continue_after(&mut self, used: &IncidentId) {
        let _ = used;
    }
}

impl<F> IncidentIdGenerator for F
where
    F: FnMut() -> IncidentId + Send + Sync,
{
    fn next_id(&mut self) -> IncidentId {
        self()
    }
}

/// `INC-000001`, `INC-000002`, ...: a prefix and a counter, zero-padded to
/// six digits so that ids sort in creation order up to a million.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequentialIds {
    prefix: String,
    next: u64,
}

impl SequentialIds {
    /// Ids `{prefix}{n:06}` from `first` on; to continue after a restart,
    /// pass one more than the highest number already used.
    pub fn new(prefix: impl Into<String>, first: u64) -> Self {
        Self {
            prefix: prefix.into(),
            next: first,
        }
    }
}

impl Default for SequentialIds {
    /// `INC-000001` first.
    fn default() -> Self {
        Self::new("INC-", 1)
    }
}

impl IncidentIdGenerator for SequentialIds {
    fn next_id(&mut self) -> IncidentId {
        let id = IncidentId::new(format!("{}{:06}", self.prefix, self.next));
        self.next += 1;
        id
    }

    fn continue_after(&mut self, used: &IncidentId) {
        let number = used
            .as_str()
            .strip_prefix(self.prefix.as_str())
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(number) = number {
            self.next = self.next.max(number.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_count_up_from_first() {
        let mut ids = SequentialIds::default();
        assert_eq!(ids.next_id().as_str(), "INC-000001");
        assert_eq!(ids.next_id().as_str(), "INC-000002");
        let mut continued = SequentialIds::new("OCT-", 1_234_567);
        assert_eq!(continued.next_id().as_str(), "OCT-1234567");
    }

    #[test]
    fn sequential_ids_continue_after_the_highest_used_number() {
        let mut ids = SequentialIds::default();
        ids.continue_after(&IncidentId::new("INC-000041"));
        ids.continue_after(&IncidentId::new("INC-000007"));
        ids.continue_after(&IncidentId::new("OTHER-000900"));
        ids.continue_after(&IncidentId::new("INC-abc"));
        assert_eq!(ids.next_id().as_str(), "INC-000042");
        ids.continue_after(&IncidentId::new("INC-1234567"));
        assert_eq!(ids.next_id().as_str(), "INC-1234568");
    }

    #[test]
    fn closures_generate_ids() {
        let mut n = 0;
        let mut ids = move || {
            n += 1;
            IncidentId::new(format!("x{n}"))
        };
        assert_eq!(IncidentIdGenerator::next_id(&mut ids).as_str(), "x1");
        assert_eq!(IncidentIdGenerator::next_id(&mut ids).as_str(), "x2");
    }
}
