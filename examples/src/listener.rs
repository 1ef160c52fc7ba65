//! Listening near the open-files limit: the process raises its soft limit to the hard one at
//! start, so that as many connections as the system allows can be held. What happens at the
//! limit (a reserve descriptor answering 503) and below it (each address's share, the
//! timeouts) is the connection edge of the adapters' serve helpers (`hashpass::edge`).

/// Descriptors kept for everything but sockets (files, logs, Redis, the database).
const SPARE_DESCRIPTORS: u64 = 64;

/// Raises the open-files soft limit to the hard limit and logs how many sockets that leaves
/// room for; returns the limit now in force (`None` where it cannot be read).
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(
                open_files = limit,
                sockets = limit.saturating_sub(SPARE_DESCRIPTORS),
                "open-files limit raised to the hard limit"
            );
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            None
        }
    }
}
