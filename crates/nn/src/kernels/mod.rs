//! The inner loops of the convolutions: the instruction set they use, chosen once per op.
//!
//! An op picks its [`Isa`] when it is constructed ([`Isa::best`], detected once); its streaming
//! kernel then branches on that stored choice, never on a feature test per call. The portable
//! kernels keep the channel index innermost over packed weights so the compiler vectorizes
//! them; on x86_64 with AVX2 + FMA the [`avx2`] kernels are register-blocked over several
//! output positions and 8-lane channel vectors. `compute_with(Isa::Scalar, ..)` on each op is
//! the reference the SIMD path is tested against.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;

/// Which instruction set a streaming kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable code (the reference; the compiler vectorizes it for the build's baseline).
    Scalar,
    /// x86_64 AVX2 + FMA intrinsics, register-blocked.
    Avx2Fma,
}

impl Isa {
    /// The fastest variant this CPU supports (detected at run time, cached by std).
    pub fn best() -> Isa {
        if Isa::Avx2Fma.is_supported() {
            Isa::Avx2Fma
        } else {
            Isa::Scalar
        }
    }

    /// Whether this CPU can run the variant.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2Fma => false,
        }
    }

    /// `self` if this CPU supports it, else [`Isa::Scalar`]: what an op stores, so its kernel
    /// can trust the choice without testing again.
    pub fn or_scalar(self) -> Isa {
        if self.is_supported() {
            self
        } else {
            Isa::Scalar
        }
    }

    /// Every variant this CPU supports, the reference first.
    pub fn supported() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2Fma]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }
}

/// `out[..] += a * w[..]`, the inner loop of every portable mixing kernel.
#[inline(always)]
pub(crate) fn axpy(out: &mut [f32], a: f32, w: &[f32]) {
    for (o, w) in out.iter_mut().zip(w) {
        *o += a * w;
    }
}
