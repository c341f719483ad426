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
    let cli = cli::Cli::parse();
    std::process::exit(cli::run(cli));
}
