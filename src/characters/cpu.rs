//! The CPU lane: runs the CPU-heavy steps of the read path (parsing ~350 KB of upstream JSON, gzip,
//! computing and rendering an expectation) on the blocking pool, at most one per core at a time.
//!
//! More at once would only make the kernel time-slice between them (on the cold path context switches were
//! a tenth of the CPU time) and take the cores from the async workers that serve cached reads; queued work
//! waits for a permit. Used by the equipment load, the snapshot read and the expectation render.
//!
//! Failure modes: a job that panics, or a lane whose semaphore was closed, fails with `Internal`.

use std::sync::Arc;

use super::CharacterError;

#[derive(Clone)]
pub(super) struct CpuLane {
    permits: Arc<tokio::sync::Semaphore>,
}

impl CpuLane {
    /// One permit per core.
    pub(super) fn new() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        CpuLane {
            permits: Arc::new(tokio::sync::Semaphore::new(n)),
        }
    }

    /// Runs `job` on the blocking pool once a permit is free.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CharacterError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CharacterError::internal("CPU lane closed"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(CharacterError::internal)
    }
}
