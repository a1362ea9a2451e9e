//! A minimal parallel map over a slice: scoped threads take small chunks
//! from a shared counter (so uneven items balance out) and the results come
//! back in input order, whatever the thread count. Callers that need
//! byte-identical output regardless of `threads` get it for free as long as
//! `f` itself is deterministic.

use std::sync::atomic::{AtomicUsize, Ordering};

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
}
