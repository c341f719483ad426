use clap::Parser;

mod cli;

// mimalloc: training allocates and frees thousands of small tensors per second; measured
// 0.75 s against 0.96 s (median) for the full Part 1 run with the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's option setter (linked in by the `mimalloc` crate).
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc 2's `mi_option_t`.
const MI_OPTION_PURGE_DELAY: i32 = 15;
/// How long freed memory stays with the process before going back to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

fn main() {
    // Hand freed memory back to the OS only after a second unused: a CNN step frees and
    // reallocates megabytes of buffers every few milliseconds, and returning them at once
    // (mimalloc's default, 10 ms) made a step ~30% slower in page faults; never returning
    // them let a Part 3 run grow to ~200 MiB, against ~165 MiB this way at the same speed.
    // A MIMALLOC_PURGE_DELAY in the environment still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer option.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    no_transparent_huge_pages();
    // Before any thread computes: the mode TensorFlow's CPU threads run in (and ~20% faster
    // late in a photo network's training).
    appraise::runtime::float_mode::flush_denormals();
    let cli = cli::Cli::parse();
    std::process::exit(cli::run(cli));
}

/// Opts this process out of transparent huge pages. mimalloc's arena got 2 MiB pages from the
/// kernel, and every purge of a part of one made the next touch zero a whole 2 MiB page:
/// 15% of a Part 2 run's samples were the kernel clearing pages. Without them a 40-epoch Part 2
/// run took 9.2 s instead of 9.7-9.9 s, and 123-131 MiB instead of 153-160 MiB.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process; a failure (an old kernel)
    // leaves things as they were, which is fine.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
