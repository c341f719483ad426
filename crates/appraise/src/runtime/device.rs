//! Where the networks train: the CPU (burn's flex backend, with appraise's fused CPU kernels)
//! or a GPU through a backend compiled in with a cargo feature (`wgpu`, `cuda`).
//!
//! The front end parses the user's choice once (`--device`) and passes it in through
//! the run's [`crate::runtime::context::Context`]; the library never picks a device on its own.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A compute device a user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compute {
    /// The CPU, every core (burn's flex backend). Always built.
    #[default]
    Cpu,
    /// The default GPU through wgpu (Vulkan, Metal or DirectX); needs `--features wgpu`.
    Wgpu,
    /// The first NVIDIA GPU through CUDA; needs `--features cuda`.
    Cuda,
}

impl Compute {
    /// Every choice, in the order the help lists them.
    pub const ALL: [Compute; 3] = [Compute::Cpu, Compute::Wgpu, Compute::Cuda];

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Compute::Cpu => "cpu",
            Compute::Wgpu => "wgpu",
            Compute::Cuda => "cuda",
        }
    }

    /// Whether this build has the backend.
    pub fn is_built(self) -> bool {
        match self {
            Compute::Cpu => true,
            Compute::Wgpu => cfg!(feature = "wgpu"),
            Compute::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The burn device (without autodiff), or an error saying how to get a build that has it.
    pub fn device(self) -> Result<Device> {
        if !self.is_built() {
            return Err(Error::Usage(format!(
                "`device` {0}: this appraise was built without the {0} backend; rebuild it \
                 with `cargo build --release --features {0}`, or use `device` cpu",
                self.name()
            )));
        }
        Ok(match self {
            Compute::Cpu => Device::flex(),
            #[cfg(feature = "wgpu")]
            Compute::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Compute::Cuda => Device::cuda(0),
            #[allow(unreachable_patterns)]
            _ => unreachable!("is_built rules out backends that are not compiled in"),
        })
    }
}

impl fmt::Display for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compute {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Compute::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Compute::ALL.iter().map(|c| c.name()).collect();
                format!("unknown device '{s}'; use one of: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_the_cpu_is_always_there() {
        for c in Compute::ALL {
            assert_eq!(c.name().parse::<Compute>().unwrap(), c);
        }
        assert_eq!("CPU".parse::<Compute>().unwrap(), Compute::Cpu);
        assert!(
            "tpu"
                .parse::<Compute>()
                .unwrap_err()
                .contains("cpu, wgpu, cuda")
        );
        assert_eq!(Compute::Cpu.device().unwrap(), Device::flex());
    }

    #[test]
    fn a_backend_that_is_not_built_is_a_clear_error() {
        for c in [Compute::Wgpu, Compute::Cuda] {
            if !c.is_built() {
                let message = c.device().unwrap_err().to_string();
                assert!(message.contains("--features"), "{message}");
            }
        }
    }
}
