//! The rescuer: a small service that finds rows whose holder stopped
//! heartbeating (a killed process, a pulled power cable) and makes them claimable
//! again, or fails them once their attempts are spent. Every worker runs one; the
//! conditional `UPDATE`s make concurrent rescuers harmless. Tests call
//! [`Rescuer::run_once`] directly.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Queue, QueueError, RescueCounts};

#[derive(Debug, Clone)]
pub struct RescuerConfig {
    /// A heartbeat older than this marks the holder as gone.
    pub stale_after: Duration,
    /// How often the loop runs.
    pub interval: Duration,
    /// Attempts allowed for rows that carry no `max_attempts` of their own.
    pub default_max_attempts: u32,
    /// Crashes (stale heartbeats) after which a row is failed.
    pub max_crashes: u32,
}

pub struct Rescuer {
    queue: Arc<dyn Queue>,
    config: RescuerConfig,
}

impl Rescuer {
    pub fn new(queue: Arc<dyn Queue>, config: RescuerConfig) -> Self {
        Rescuer { queue, config }
    }

    /// One pass: what it requeued and what it failed.
    pub async fn run_once(&self) -> Result<RescueCounts, QueueError> {
        let counts = self
            .queue
            .rescue_stale(self.config.stale_after, self.config.default_max_attempts, self.config.max_crashes)
            .await?;
        crate::metrics::global().rescued(counts.requeued, counts.failed);
        if counts.requeued > 0 || counts.failed > 0 {
            tracing::warn!(requeued = counts.requeued, failed = counts.failed, "rescued rows with a stale heartbeat");
        }
        Ok(counts)
    }

    /// Tick until `shutdown`; errors are logged and the loop goes on.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "rescuer pass failed; will try again");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}
