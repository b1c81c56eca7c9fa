//! Kubernetes' container state reasons, typed where classification cares
//! and kept verbatim otherwise.

use serde::{Deserialize, Serialize};

/// Why a container is waiting. Kubernetes reasons are open-ended strings, so
/// anything unknown is kept verbatim in [`WaitingReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum WaitingReason {
    /// Restarting with exponential back-off after repeated crashes.
    CrashLoopBackOff,
    /// Backing off after failing to pull the image.
    ImagePullBackOff,
    /// The image pull failed.
    ErrImagePull,
    /// The image name is invalid.
    InvalidImageName,
    /// The container's configuration (a missing secret or config map) is invalid.
    CreateContainerConfigError,
    /// The runtime failed to create the container.
    CreateContainerError,
    /// The runtime failed to start the container.
    RunContainerError,
    /// Normal start-up.
    ContainerCreating,
    /// Normal start-up, init containers running.
    PodInitializing,
    /// Any other reason.
    Other(String),
}

impl WaitingReason {
    /// The Kubernetes spelling.
    pub fn as_str(&self) -> &str {
        match self {
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
            WaitingReason::ImagePullBackOff => "ImagePullBackOff",
            WaitingReason::ErrImagePull => "ErrImagePull",
            WaitingReason::InvalidImageName => "InvalidImageName",
            WaitingReason::CreateContainerConfigError => "CreateContainerConfigError",
            WaitingReason::CreateContainerError => "CreateContainerError",
            WaitingReason::RunContainerError => "RunContainerError",
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::PodInitializing => "PodInitializing",
            WaitingReason::Other(reason) => reason,
        }
    }

    /// Whether the container cannot run without intervention: a crash loop
    /// or a failure to pull, create or start it. Normal start-up reasons and
    /// unknown ones are not failures.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            WaitingReason::ContainerCreating
                | WaitingReason::PodInitializing
                | WaitingReason::Other(_)
        )
    }
}

impl From<String> for WaitingReason {
    fn from(reason: String) -> Self {
        match reason.as_str() {
            "CrashLoopBackOff" => WaitingReason::CrashLoopBackOff,
            "ImagePullBackOff" => WaitingReason::ImagePullBackOff,
            "ErrImagePull" => WaitingReason::ErrImagePull,
            "InvalidImageName" => WaitingReason::InvalidImageName,
            "CreateContainerConfigError" => WaitingReason::CreateContainerConfigError,
            "CreateContainerError" => WaitingReason::CreateContainerError,
            "RunContainerError" => WaitingReason::RunContainerError,
            "ContainerCreating" => WaitingReason::ContainerCreating,
            "PodInitializing" => WaitingReason::PodInitializing,
            _ => WaitingReason::Other(reason),
        }
    }
}

impl From<WaitingReason> for String {
    fn from(reason: WaitingReason) -> Self {
        match reason {
            WaitingReason::Other(reason) => reason,
            known => known.as_str().to_owned(),
        }
    }
}

/// Why a container terminated. Unknown reasons are kept verbatim in
/// [`TerminationReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TerminationReason {
    /// Killed by the kernel for exceeding its memory limit.
    OomKilled,
    /// Exited with a non-zero code.
    Error,
    /// Exited with code zero.
    Completed,
    /// The runtime could not run it.
    ContainerCannotRun,
    /// Any other reason.
    Other(String),
}

impl TerminationReason {
    /// The Kubernetes spelling.
    pub fn as_str(&self) -> &str {
        match self {
            TerminationReason::OomKilled => "OOMKilled",
            TerminationReason::Error => "Error",
            TerminationReason::Completed => "Completed",
            TerminationReason::ContainerCannotRun => "ContainerCannotRun",
            TerminationReason::Other(reason) => reason,
        }
    }
}

impl From<String> for TerminationReason {
    fn from(reason: String) -> Self {
        match reason.as_str() {
            "OOMKilled" => TerminationReason::OomKilled,
            "Error" => TerminationReason::Error,
            "Completed" => TerminationReason::Completed,
            "ContainerCannotRun" => TerminationReason::ContainerCannotRun,
            _ => TerminationReason::Other(reason),
        }
    }
}

impl From<TerminationReason> for String {
    fn from(reason: TerminationReason) -> Self {
        match reason {
            TerminationReason::Other(reason) => reason,
            known => known.as_str().to_owned(),
        }
    }
}
