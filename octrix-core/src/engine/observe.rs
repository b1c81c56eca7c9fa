//! Turning what the observer reports into the classifier's observations.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use crate::classify::{
    AnomalyReading, ContainerStatus, NodeConditions, Observation, PodStatus, Reading, ResourceKind,
    ResourceRef, TerminationReason, WaitingReason,
};
use crate::cluster::{ClusterSnapshot, ConditionStatus, NodeState, PodState};
use crate::detect::{Detection, SeriesKey};
use crate::metrics::SeriesSample;
use crate::{Labels, Timestamp};

/// The observations of one pod or node at a time, in buffers reused from
/// one object to the next: observing 10,000 pods and 1,000 nodes on every
/// tick allocated and freed several strings per observation, a fifth of a
/// tick. Once warm, loading an object allocates nothing.
#[derive(Debug)]
pub(super) struct ObservationBuffer {
    observation: Observation,
    /// A pod's status, moved into the observation while it is read.
    status: PodStatus,
    readings: [Option<Pending>; 3],
}

/// A reading of the loaded object, not yet in the observation.
#[derive(Debug)]
enum Pending {
    /// The pod status held in `status`.
    PodStatus,
    Node(NodeConditions),
    Cpu(f64),
    Memory(f64),
}

impl Default for ObservationBuffer {
    fn default() -> Self {
        Self {
            observation: Observation::new(
                Timestamp::UNIX_EPOCH,
                ResourceRef::node(String::new()),
                Reading::CpuUtilisation { ratio: 0.0 },
            ),
            status: empty_status(),
            readings: [None, None, None],
        }
    }
}

impl ObservationBuffer {
    /// Loads the observations of `pod` at `at`: its status, then its CPU
    /// and memory utilisation when its containers have limits. Returns how
    /// many there are.
    pub(super) fn load_pod(&mut self, pod: &PodState, at: Timestamp) -> usize {
        self.recover_status();
        let observation = &mut self.observation;
        observation.at = at;
        let resource = &mut observation.resource;
        resource.kind = ResourceKind::Pod;
        set_text(&mut resource.namespace, Some(&pod.namespace));
        resource.name.clone_from(&pod.name);
        set_text(&mut resource.node, pod.node.as_deref());
        set_text(&mut observation.service, pod.deployment());

        self.status.phase = pod.phase;
        let containers = &mut self.status.containers;
        containers.truncate(pod.containers.len());
        for (index, c) in pod.containers.iter().enumerate() {
            if index == containers.len() {
                containers.push(ContainerStatus::running(String::new()));
            }
            let status = &mut containers[index];
            status.name.clone_from(&c.name);
            status.ready = c.ready;
            status.restart_count = c.restart_count;
            status.waiting_reason = c.waiting_reason.clone().map(WaitingReason::from);
            status.terminated_reason = None;
            status.last_termination_reason = c
                .last_termination_reason
                .clone()
                .map(TerminationReason::from);
        }

        let mut readings = [Some(Pending::PodStatus), None, None];
        let mut count = 1;
        // Utilisation is only meaningful against a limit.
        let (cpu, cpu_limit) = pod.containers.iter().fold((0.0, 0.0), |(u, l), c| {
            (u + c.cpu_used_cores, l + c.cpu_limit_cores.unwrap_or(0.0))
        });
        if cpu_limit > 0.0 && pod.containers.iter().all(|c| c.cpu_limit_cores.is_some()) {
            readings[count] = Some(Pending::Cpu((cpu / cpu_limit).min(1.0)));
            count += 1;
        }
        let (memory, memory_limit) = pod.containers.iter().fold((0.0, 0.0), |(u, l), c| {
            (
                u + c.memory_used_bytes,
                l + c.memory_limit_bytes.unwrap_or(0.0),
            )
        });
        if memory_limit > 0.0
            && pod
                .containers
                .iter()
                .all(|c| c.memory_limit_bytes.is_some())
        {
            readings[count] = Some(Pending::Memory((memory / memory_limit).min(1.0)));
            count += 1;
        }
        self.readings = readings;
        count
    }

    /// Loads the observations of `node` at `at`: its conditions, then its CPU
    /// and memory utilisation when the observer knows them. Returns how many
    /// there are.
    pub(super) fn load_node(&mut self, node: &NodeState, at: Timestamp) -> usize {
        self.recover_status();
        let observation = &mut self.observation;
        observation.at = at;
        let resource = &mut observation.resource;
        resource.kind = ResourceKind::Node;
        resource.namespace = None;
        resource.name.clone_from(&node.name);
        resource.node = None;
        observation.service = None;

        let holds = |status: ConditionStatus| status == ConditionStatus::True;
        let mut readings = [
            Some(Pending::Node(NodeConditions {
                ready: node.ready,
                memory_pressure: holds(node.memory_pressure),
                disk_pressure: holds(node.disk_pressure),
                pid_pressure: holds(node.pid_pressure),
            })),
            None,
            None,
        ];
        let mut count = 1;
        // Usage of zero means the observer does not know it (no metrics server):
        // it is not reported rather than reported as idle.
        if node.cpu_allocatable_cores > 0.0 && node.cpu_used_cores > 0.0 {
            readings[count] = Some(Pending::Cpu(
                (node.cpu_used_cores / node.cpu_allocatable_cores).min(1.0),
            ));
            count += 1;
        }
        if node.memory_allocatable_bytes > 0.0 && node.memory_used_bytes > 0.0 {
            readings[count] = Some(Pending::Memory(
                (node.memory_used_bytes / node.memory_allocatable_bytes).min(1.0),
            ));
            count += 1;
        }
        self.readings = readings;
        count
    }

    /// The `index`th observation of the loaded object (below the count its
    /// load returned), in the order the classifier expects them.
    pub(super) fn observation(&mut self, index: usize) -> &Observation {
        self.recover_status();
        let pending = self.readings[index]
            .take()
            .expect("index is below the loaded count, each read once");
        let reading = match pending {
            Pending::PodStatus => Reading::Pod(std::mem::replace(&mut self.status, empty_status())),
            Pending::Node(conditions) => Reading::Node(conditions),
            Pending::Cpu(ratio) => Reading::CpuUtilisation { ratio },
            Pending::Memory(ratio) => Reading::MemoryUtilisation { ratio },
        };
        self.observation.reading = reading;
        &self.observation
    }

    /// Takes the pod status buffer back from the observation, if it is there.
    fn recover_status(&mut self) {
        let placeholder = Reading::CpuUtilisation { ratio: 0.0 };
        if let Reading::Pod(status) = std::mem::replace(&mut self.observation.reading, placeholder)
        {
            self.status = status;
        }
    }
}

fn empty_status() -> PodStatus {
    PodStatus {
        phase: crate::classify::PodPhase::Unknown,
        containers: Vec::new(),
    }
}

/// Sets an optional text field, reusing its buffer.
fn set_text(field: &mut Option<String>, value: Option<&str>) {
    match (field.as_mut(), value) {
        (Some(text), Some(value)) => {
            text.clear();
            text.push_str(value);
        }
        (None, Some(value)) => *field = Some(value.to_owned()),
        (_, None) => *field = None,
    }
}

/// Makes `observation` the anomaly `detection` of `sample`, reusing its
/// strings and label map. A tick of 50,000 samples yields hundreds of
/// anomalies; building each observation afresh allocated a dozen strings and
/// a label map, whose churn made the allocator a fifth of a tick.
pub(super) fn load_anomaly(
    observation: &mut Observation,
    sample: &SeriesSample,
    detection: &Detection,
) {
    let labels = &*sample.labels;
    observation.at = sample.timestamp;
    match (labels.get("namespace"), labels.get("pod")) {
        (Some(namespace), Some(pod)) => {
            let resource = &mut observation.resource;
            resource.kind = ResourceKind::Pod;
            set_text(&mut resource.namespace, Some(namespace));
            resource.name.clone_from(pod);
            resource.node = None;
        }
        _ => {
            observation.resource = ResourceRef::cluster_scoped(
                ResourceKind::Series,
                SeriesKey::new(&sample.metric, labels).as_str(),
            );
        }
    }
    set_text(
        &mut observation.service,
        labels.get("service").map(String::as_str),
    );
    observation.labels.clear();
    match &mut observation.reading {
        Reading::Anomaly(reading) => {
            reading.metric.clear();
            reading.metric.push_str(&sample.metric);
            assign_labels(&mut reading.labels, labels);
            reading.value = sample.value;
            reading.score = detection.score;
            reading.z = detection.z;
            reading.direction = detection.direction;
        }
        reading => {
            *reading = Reading::Anomaly(AnomalyReading {
                metric: sample.metric.to_string(),
                labels: labels.clone(),
                value: sample.value,
                score: detection.score,
                z: detection.z,
                direction: detection.direction,
            });
        }
    }
}

/// Makes `target` equal to `source`, overwriting values in place when both
/// have the same label names (the usual case: one source labels every
/// object alike).
fn assign_labels(target: &mut Labels, source: &Labels) {
    let same_names =
        target.len() == source.len() && target.keys().zip(source.keys()).all(|(a, b)| a == b);
    if same_names {
        for (value, new) in target.values_mut().zip(source.values()) {
            value.clone_from(new);
        }
    } else {
        target.clone_from(source);
    }
}

/// Pods of a snapshot by namespace and name: the engine looks pods up for
/// every raised signal, and a scan of 10,000 pods each time dominated a tick.
/// The table holds positions in the snapshot, not copies of the names, so
/// rebuilding it on every tick allocates nothing once warm.
#[derive(Debug, Default)]
pub(super) struct PodIndex {
    positions: hashbrown::HashTable<usize>,
    hasher: RandomState,
}

impl PodIndex {
    /// Indexes the pods of `snapshot`; of two pods with the same name, the
    /// later one is found.
    pub(super) fn rebuild(&mut self, snapshot: &ClusterSnapshot) {
        let pods = &snapshot.pods;
        let hasher = &self.hasher;
        let hash_of = |i: &usize| hash_name(hasher, &pods[*i].namespace, &pods[*i].name);
        self.positions.clear();
        for (i, pod) in pods.iter().enumerate() {
            let hash = hash_name(hasher, &pod.namespace, &pod.name);
            let same = |j: &usize| pods[*j].namespace == pod.namespace && pods[*j].name == pod.name;
            match self.positions.entry(hash, same, hash_of) {
                hashbrown::hash_table::Entry::Occupied(mut entry) => *entry.get_mut() = i,
                hashbrown::hash_table::Entry::Vacant(entry) => {
                    entry.insert(i);
                }
            }
        }
    }

    pub(super) fn get<'a>(
        &self,
        snapshot: &'a ClusterSnapshot,
        namespace: &str,
        name: &str,
    ) -> Option<&'a PodState> {
        let hash = hash_name(&self.hasher, namespace, name);
        let pods = &snapshot.pods;
        let i = *self.positions.find(hash, |&i| {
            pods.get(i)
                .is_some_and(|pod| pod.namespace == namespace && pod.name == name)
        })?;
        pods.get(i)
    }
}

fn hash_name(hasher: &RandomState, namespace: &str, name: &str) -> u64 {
    hasher.hash_one((namespace, name))
}

/// The workload a resource belongs to, used to verify healing across pod
/// replacements: `deployment/ns/name` for a deployment's pods, else the
/// resource itself.
pub(super) fn workload_of(
    index: &PodIndex,
    snapshot: &ClusterSnapshot,
    resource: &ResourceRef,
) -> String {
    let [kind, namespace, name] = resource.identity();
    if kind == "pod"
        && let Some(deployment) = index
            .get(snapshot, namespace, name)
            .and_then(PodState::deployment)
    {
        return format!("deployment/{namespace}/{deployment}");
    }
    format!("{kind}/{namespace}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labels;
    use crate::cluster::{ContainerState, PodOwner, PodPhase};
    use crate::labels::from_pairs;

    fn container(name: &str, waiting: Option<&str>) -> ContainerState {
        ContainerState {
            name: name.into(),
            ready: waiting.is_none(),
            restart_count: 3,
            waiting_reason: waiting.map(str::to_owned),
            last_termination_reason: Some("OOMKilled".into()),
            cpu_used_cores: 0.5,
            cpu_limit_cores: Some(2.0),
            memory_used_bytes: 300.0,
            memory_limit_bytes: Some(400.0),
        }
    }

    fn pod(name: &str, containers: Vec<ContainerState>) -> PodState {
        PodState {
            namespace: "shop".into(),
            name: name.into(),
            node: Some("worker-1".into()),
            owner: PodOwner::Deployment("cart".into()),
            phase: PodPhase::Running,
            labels: from_pairs([("app", "cart")]),
            containers,
        }
    }

    fn node(name: &str) -> NodeState {
        NodeState {
            name: name.into(),
            ready: ConditionStatus::True,
            memory_pressure: ConditionStatus::True,
            disk_pressure: ConditionStatus::False,
            pid_pressure: ConditionStatus::False,
            unschedulable: false,
            cpu_allocatable_cores: 4.0,
            memory_allocatable_bytes: 1000.0,
            cpu_used_cores: 1.0,
            memory_used_bytes: 0.0,
            labels: Labels::new(),
        }
    }

    fn read_all(buffer: &mut ObservationBuffer, count: usize) -> Vec<Observation> {
        (0..count).map(|i| buffer.observation(i).clone()).collect()
    }

    #[test]
    fn a_pod_gives_its_status_then_its_utilisation() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let mut buffer = ObservationBuffer::default();
        let crashing = pod(
            "cart-1",
            vec![
                container("cart", Some("CrashLoopBackOff")),
                container("proxy", None),
            ],
        );
        let count = buffer.load_pod(&crashing, at);
        let resource = ResourceRef::pod("shop", "cart-1").on_node("worker-1");
        let status = PodStatus {
            phase: PodPhase::Running,
            containers: vec![
                ContainerStatus {
                    ready: false,
                    restart_count: 3,
                    waiting_reason: Some(WaitingReason::CrashLoopBackOff),
                    last_termination_reason: Some(TerminationReason::OomKilled),
                    ..ContainerStatus::running("cart")
                },
                ContainerStatus {
                    restart_count: 3,
                    last_termination_reason: Some(TerminationReason::OomKilled),
                    ..ContainerStatus::running("proxy")
                },
            ],
        };
        let expected: Vec<Observation> = [
            Reading::Pod(status),
            Reading::CpuUtilisation { ratio: 0.25 },
            Reading::MemoryUtilisation { ratio: 0.75 },
        ]
        .into_iter()
        .map(|reading| Observation::new(at, resource.clone(), reading).with_service("cart"))
        .collect();
        assert_eq!(read_all(&mut buffer, count), expected);
    }

    #[test]
    fn reused_buffers_carry_nothing_over() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let mut buffer = ObservationBuffer::default();
        let two = pod(
            "cart-1",
            vec![
                container("cart", Some("CrashLoopBackOff")),
                container("proxy", None),
            ],
        );
        let count = buffer.load_pod(&two, at);
        read_all(&mut buffer, count);

        // A node after a pod: no namespace, service or pod node left behind.
        let count = buffer.load_node(&node("worker-2"), at);
        let conditions = NodeConditions {
            memory_pressure: true,
            ..NodeConditions::healthy()
        };
        assert_eq!(
            read_all(&mut buffer, count),
            vec![
                Observation::new(at, ResourceRef::node("worker-2"), Reading::Node(conditions)),
                Observation::new(
                    at,
                    ResourceRef::node("worker-2"),
                    Reading::CpuUtilisation { ratio: 0.25 }
                ),
            ],
            "memory use of zero is unknown, not reported"
        );

        // A pod with one unlimited container after one with two: no
        // container and no utilisation left behind.
        let mut bare = pod("cart-2", vec![container("cart", None)]);
        bare.owner = PodOwner::None;
        bare.node = None;
        bare.containers[0].cpu_limit_cores = None;
        bare.containers[0].memory_limit_bytes = None;
        let count = buffer.load_pod(&bare, at);
        let observations = read_all(&mut buffer, count);
        assert_eq!(observations.len(), 1);
        assert_eq!(observations[0].resource, ResourceRef::pod("shop", "cart-2"));
        assert_eq!(observations[0].service, None);
        let Reading::Pod(status) = &observations[0].reading else {
            panic!("a pod status, got {:?}", observations[0].reading);
        };
        assert_eq!(status.containers.len(), 1);
        assert_eq!(status.containers[0].waiting_reason, None);
    }

    fn anomaly(labels: &[(&str, &str)], metric: &'static str, value: f64) -> SeriesSample {
        SeriesSample {
            metric: metric.into(),
            labels: std::sync::Arc::new(from_pairs(labels.iter().copied())),
            timestamp: Timestamp::from_second(1_700_000_000).unwrap(),
            value,
        }
    }

    fn expected_anomaly(sample: &SeriesSample, detection: &Detection) -> Observation {
        let labels = &*sample.labels;
        let resource = match (labels.get("namespace"), labels.get("pod")) {
            (Some(namespace), Some(pod)) => ResourceRef::pod(namespace, pod),
            _ => ResourceRef::cluster_scoped(
                ResourceKind::Series,
                SeriesKey::new(&sample.metric, labels).as_str(),
            ),
        };
        let mut observation = Observation::new(
            sample.timestamp,
            resource,
            Reading::Anomaly(AnomalyReading {
                metric: sample.metric.to_string(),
                labels: labels.clone(),
                value: sample.value,
                score: detection.score,
                z: detection.z,
                direction: detection.direction,
            }),
        );
        if let Some(service) = labels.get("service") {
            observation = observation.with_service(service);
        }
        observation
    }

    #[test]
    fn a_reused_anomaly_observation_carries_nothing_over() {
        let detection = Detection {
            is_anomaly: true,
            score: 0.9,
            z: 4.5,
            direction: crate::detect::Direction::Above,
            confidence: 0.95,
        };
        let samples = [
            anomaly(
                &[
                    ("namespace", "shop"),
                    ("pod", "cart-1"),
                    ("service", "cart"),
                ],
                "latency",
                250.0,
            ),
            // Same label names, other values.
            anomaly(
                &[
                    ("namespace", "web"),
                    ("pod", "front-22"),
                    ("service", "front"),
                ],
                "errors",
                3.0,
            ),
            // No service, other label names.
            anomaly(&[("namespace", "web"), ("pod", "job-1")], "cpu", 1.5),
            // Not a pod: a series resource, no namespace left behind.
            anomaly(&[("instance", "db-1:9100")], "disk", 0.97),
            anomaly(
                &[
                    ("namespace", "shop"),
                    ("pod", "cart-2"),
                    ("service", "cart"),
                ],
                "latency",
                260.0,
            ),
        ];
        let mut reused = Observation::new(
            Timestamp::UNIX_EPOCH,
            ResourceRef::node("stale"),
            Reading::CpuUtilisation { ratio: 0.5 },
        )
        .with_label("stale", "label");
        for sample in &samples {
            load_anomaly(&mut reused, sample, &detection);
            assert_eq!(reused, expected_anomaly(sample, &detection));
        }
    }

    #[test]
    fn the_pod_index_finds_pods_by_name_and_the_later_of_duplicates() {
        let mut snapshot = ClusterSnapshot {
            pods: vec![
                pod("cart-1", vec![]),
                pod("cart-2", vec![]),
                pod("cart-1", vec![container("second", None)]),
            ],
            ..ClusterSnapshot::default()
        };
        let mut index = PodIndex::default();
        index.rebuild(&snapshot);
        assert_eq!(
            index.get(&snapshot, "shop", "cart-2").map(|p| &p.name),
            Some(&"cart-2".into())
        );
        assert_eq!(
            index
                .get(&snapshot, "shop", "cart-1")
                .map(|p| p.containers.len()),
            Some(1)
        );
        assert!(index.get(&snapshot, "shop", "cart-3").is_none());
        assert!(index.get(&snapshot, "other", "cart-2").is_none());

        snapshot.pods.remove(1);
        index.rebuild(&snapshot);
        assert!(index.get(&snapshot, "shop", "cart-2").is_none());
        assert!(index.get(&snapshot, "shop", "cart-1").is_some());
    }
}
