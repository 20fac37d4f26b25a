//! Calling an OpenAI-compatible model endpoint from the data pipelines (issue 9 item 2): [`client`] sends chat
//! requests with timeouts and retries, [`store`] keeps finished items keyed by id, and [`run_resumable`] runs a
//! per-item job over a list with a fixed number of worker threads, skipping items the store already has and
//! appending each result as soon as it is done, so a pipeline killed mid-way continues where it stopped without
//! repeating or losing items.
pub mod client;
pub mod store;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use serde::Serialize;

pub use client::{Endpoint, EndpointConfig};
pub use store::JobStore;

/// What a [`run_resumable`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub total: usize,
    /// Already in the store when the run started.
    pub skipped: usize,
    /// Finished and appended by this run.
    pub done: usize,
    /// `(id, error)` of the items that failed (not stored: a rerun tries them again).
    pub failed: Vec<(String, String)>,
}

/// Runs `work` on every item whose id (`id`) the store lacks, on `concurrency` threads, appending each result as
/// it finishes. Item failures are collected, not fatal; a store write failure stops the run.
pub fn run_resumable<I: Sync, T: Serialize>(
    items: &[I],
    id: impl Fn(&I) -> String + Sync,
    store: &JobStore,
    concurrency: usize,
    work: impl Fn(&I) -> Result<T> + Sync,
) -> Result<Progress> {
    store::check_unique(items.iter().map(&id).collect::<Vec<_>>().iter().map(String::as_str))?;
    let todo: Vec<&I> = items.iter().filter(|i| !store.contains(&id(i))).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let fatal: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..concurrency.max(1).min(todo.len().max(1)) {
            s.spawn(|| {
                loop {
                    if fatal.lock().expect("lock").is_some() {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = todo.get(k) else { return };
                    let key = id(item);
                    match work(item) {
                        Ok(v) => match store.append(&key, &v) {
                            Ok(_) => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                *fatal.lock().expect("lock") = Some(e);
                                return;
                            }
                        },
                        Err(e) => failed.lock().expect("lock").push((key, format!("{e:#}"))),
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().expect("lock") {
        return Err(e);
    }
    let mut failed = failed.into_inner().expect("lock");
    failed.sort();
    Ok(Progress { total: items.len(), skipped: items.len() - todo.len(), done: done.into_inner(), failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_without_repeating_or_losing_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let items: Vec<u32> = (0..20).collect();
        let calls = AtomicUsize::new(0);
        let store = JobStore::open(&path).unwrap();
        // First run: items divisible by 3 fail (a "crash" for them).
        let p = run_resumable(
            &items,
            |i| format!("item-{i}"),
            &store,
            4,
            |&i| {
                calls.fetch_add(1, Ordering::Relaxed);
                anyhow::ensure!(i % 3 != 0, "boom {i}");
                Ok(i * 10)
            },
        )
        .unwrap();
        assert_eq!((p.total, p.skipped, p.done, p.failed.len()), (20, 0, 13, 7));
        assert!(p.failed[0].1.contains("boom"));
        drop(store);
        let store = JobStore::open(&path).unwrap();
        let p = run_resumable(&items, |i| format!("item-{i}"), &store, 3, |&i| Ok(i * 10)).unwrap();
        assert_eq!((p.skipped, p.done, p.failed.len()), (13, 7, 0));
        let all: Vec<(String, u32)> = JobStore::read(&path).unwrap();
        let mut ids: Vec<&str> = all.iter().map(|(i, _)| i.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20);
        assert!(all.iter().all(|(id, v)| *id == format!("item-{}", v / 10)));
        assert_eq!(calls.into_inner(), 20);
        let dup = run_resumable(&[1, 1], |i| i.to_string(), &store, 1, |&i| Ok(i));
        assert!(dup.unwrap_err().to_string().contains("twice"));
    }
}
