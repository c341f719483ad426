//! The floating-point mode of the threads that train and price: denormal numbers (below
//! ~1.2e-38 in f32) flushed to zero, both as results (FTZ) and as inputs (DAZ), as
//! TensorFlow sets its CPU threads, so Keras's tutorial runs this way too.
//!
//! Why: late in a photo network's training, values that underflow (Adam's moments of weights
//! whose gradient has died, and the like) become denormals, which the CPU handles in slow
//! microcode: epochs 40-200 of Part 2 took ~275 ms instead of ~220 ms. Flushed, they cost
//! nothing, and the networks came out byte-identical here (Parts 1, 2 and 3 and the recipe,
//! compared on 60-200-epoch runs): those values are too small to move any weight.
//!
//! The mode is per thread: [`flush_denormals`] sets it on the calling thread and, once per
//! process, on every thread of rayon's global pool (where burn's and appraise's parallel
//! loops run). Every entry point that computes with a network calls it, so a run's numbers
//! never depend on which entry point ran first. On CPUs other than x86-64 it does nothing.

use std::sync::Once;

/// Flushes denormals on the calling thread and (once) on rayon's global pool. Call it before
/// handing work to the global pool, not from inside it: the first call waits for every one of
/// its threads. A pool of the
/// caller's own (`rayon::ThreadPoolBuilder`) is the caller's to set.
pub fn flush_denormals() {
    static POOL: Once = Once::new();
    set_on_this_thread();
    POOL.call_once(|| {
        // From a thread outside every pool, so that the broadcast reaches the global pool
        // even when the first caller runs inside a pool of its own.
        std::thread::spawn(|| rayon::broadcast(|_| set_on_this_thread()))
            .join()
            .expect("setting a thread's floating-point mode does not panic");
    });
}

/// The MXCSR bits: flush-to-zero (15) and denormals-are-zero (6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

#[cfg(target_arch = "x86_64")]
#[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the documented way to set MXCSR from Rust.
fn set_on_this_thread() {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    // SAFETY: SSE is part of x86-64; setting FTZ and DAZ changes only how this thread rounds
    // numbers too small for f32's normal range.
    unsafe { _mm_setcsr(_mm_getcsr() | FTZ_DAZ) }
}

#[cfg(not(target_arch = "x86_64"))]
fn set_on_this_thread() {}

/// Whether the calling thread flushes denormals (always `false` off x86-64).
pub fn flushing() -> bool {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)]
    // SAFETY: reading MXCSR has no effect.
    {
        unsafe { std::arch::x86_64::_mm_getcsr() & FTZ_DAZ == FTZ_DAZ }
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn denormals_flush_here_and_on_the_pool() {
        // Called (perhaps first: tests share the process) from inside a pool of its own, it
        // sets that thread and the global pool.
        let own = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert!(own.install(|| {
            flush_denormals();
            flushing()
        }));
        assert!(rayon::broadcast(|_| flushing()).into_iter().all(|f| f));
        flush_denormals();
        assert!(flushing());
        let tiny = std::hint::black_box(1e-30f32);
        // 1e-30 * 1e-10 is a denormal; flushed, it is zero.
        assert_eq!(tiny * std::hint::black_box(1e-10f32), 0.0);
    }
}
