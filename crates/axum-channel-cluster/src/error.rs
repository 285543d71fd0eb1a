//! Why the cluster could not do what was asked.

use std::fmt;
use std::sync::Arc;

/// Why the cluster could not do what was asked: the bus is unreachable, it
/// refused, or it did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError(Arc<str>);

impl ClusterError {
    /// An error with this explanation.
    ///
    /// ```
    /// let error = axum_channel_cluster::ClusterError::new("Redis is unreachable");
    /// assert_eq!(error.to_string(), "Redis is unreachable");
    /// ```
    pub fn new(message: impl fmt::Display) -> Self {
        Self(Arc::from(message.to_string()))
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}
