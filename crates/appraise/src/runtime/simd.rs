//! Which vector instructions this CPU has, detected once at run time, and [`simd_dispatch!`],
//! which compiles a plain loop once per instruction set and calls the best one.
//!
//! Why: the crate is built for baseline x86-64 (SSE2), so its own loops run four floats at a
//! time even on a CPU with AVX-512; the machines this runs on differ (AMD Zen 4 or 5, Intel
//! Xeon), so the level is read from the CPU, never assumed. Rust never fuses a multiply and
//! an add on its own, and `f32::mul_add` rounds once on every level (in software where the
//! CPU lacks FMA), so every level gives the same bits.

use std::sync::OnceLock;

/// The widest vector instructions the kernels may use here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 (F and VL): sixteen floats at a time.
    Avx512,
    /// AVX2 with FMA: eight floats at a time.
    Avx2,
    /// What every x86-64 (or other) CPU has.
    Baseline,
}

/// This CPU's level, detected on first use.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

/// An AVX-512 extension some kernels use beyond [`Level::Avx512`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// Bfloat16 dot products (`vdpbf16ps`).
    Bf16,
    /// 8-bit integer dot products (`vpdpbusd`).
    Vnni,
}

/// Whether this CPU has AVX-512 and `extension`, detected on first use.
pub fn has(extension: Extension) -> bool {
    static FOUND: OnceLock<[bool; 2]> = OnceLock::new();
    FOUND.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = level() == Level::Avx512;
            [
                avx512 && std::arch::is_x86_feature_detected!("avx512bf16"),
                avx512 && std::arch::is_x86_feature_detected!("avx512vnni"),
            ]
        }
        #[cfg(not(target_arch = "x86_64"))]
        [false, false]
    })[extension as usize]
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        Level::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        Level::Avx2
    } else {
        Level::Baseline
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Baseline
}

/// Defines `fn name(args) body` compiled three times (AVX-512, AVX2, baseline) and calling
/// the one [`level`] picks. The body is ordinary Rust the compiler vectorizes.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) { body($($arg),*) }
            match $crate::runtime::simd::level() {
                // SAFETY: `level` saw the CPU report these instructions.
                #[cfg(target_arch = "x86_64")]
                $crate::runtime::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::runtime::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use simd_dispatch;
