//! Minimal parallel maps over a slice, on scoped threads, with results in
//! input order whatever the thread count. [`map`] is for CPU work (threads
//! take small chunks; output is byte-identical for any thread count if `f`
//! is deterministic); [`try_map`] is for store requests (one item at a time,
//! as many in flight as asked, and nothing new started after a failure).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Items a worker takes at a time: large enough to keep the shared counter
/// cold, small enough to balance a few thousand uneven files.
const CHUNK: usize = 16;

/// The number of threads to use by default: one per available CPU.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `items.iter().map(f).collect()`, on up to `threads` threads. A panic in
/// `f` is propagated to the caller.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunks: Vec<&[T]> = items.chunks(CHUNK).collect();
    let threads = threads.min(chunks.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = chunks.get(i) else {
                return done;
            };
            done.push((i, chunk.iter().map(&f).collect::<Vec<R>>()));
        }
    };
    let mut done: Vec<(usize, Vec<R>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_unstable_by_key(|&(i, _)| i);
    done.into_iter().flat_map(|(_, r)| r).collect()
}

/// Runs `f` on every item with up to `threads` in flight and returns the
/// results in item order. After the first error no new item is started;
/// those come back `None` (and all follow the failed one in item order).
pub fn try_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Vec<Option<Result<R, E>>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || failed.load(Ordering::Relaxed) {
                    return;
                }
                let result = f(&items[i]);
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(result);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_in_input_order_for_any_thread_count() {
        let items: Vec<u64> = (0..1000).collect();
        let expected: Vec<u64> = items.iter().map(|x| x * x).collect();
        for threads in [0, 1, 2, 3, 8, 2000] {
            assert_eq!(map(&items, threads, |x| x * x), expected, "{threads}");
        }
        assert!(map(&[] as &[u64], 4, |x| *x).is_empty());
    }

    #[test]
    fn try_map_keeps_order_and_stops_starting_work_after_a_failure() {
        let items: Vec<u32> = (0..200).collect();
        let ok = try_map(&items, 8, |x| Ok::<_, ()>(x + 1));
        assert_eq!(
            ok.into_iter()
                .map(|r| r.unwrap().unwrap())
                .collect::<Vec<_>>(),
            (1..201).collect::<Vec<_>>()
        );

        let started = AtomicUsize::new(0);
        let out = try_map(&items, 1, |&x| {
            started.fetch_add(1, Ordering::Relaxed);
            if x == 10 {
                Err(x)
            } else {
                Ok(x)
            }
        });
        assert_eq!(
            started.load(Ordering::Relaxed),
            11,
            "nothing starts after the failure"
        );
        assert_eq!(out[10], Some(Err(10)));
        assert!(out[11..].iter().all(Option::is_none));
    }
}
