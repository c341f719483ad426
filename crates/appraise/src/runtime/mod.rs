//! How a run executes: its context (device, cache, stop flag, observer), random numbers
//! floating-point mode and vector instructions.

pub mod cancel;
pub mod context;
pub mod device;
pub mod float_mode;
pub mod observer;
pub mod rng;
pub mod simd;
