//! One training step of Part 2's CNN and Part 3's mixed model at batch 8 (forward, Keras MAPE
//! loss, backward, Adam), on random montages: `cargo bench --bench cnn_step`.
//! Prints the median of 40 steps after 5 warm-up steps (the fused CPU step that `appraise
//! train` runs, and the same step through burn's layers and autodiff), and of 10 evaluations.

use std::time::Instant;

use appraise::fit::optim::AdamConfig;
use appraise::fit::train::fused_photo::FusedPhoto;
use appraise::fit::train::{Batch, Loss, mape_loss};
use appraise::models::{CnnConfig, MixedConfig, ModelSpec};
use appraise::photos::montage::SIDE;
use appraise::runtime::rng::SeededRng;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};

const STEPS: usize = 40;

// The same allocator as the appraise binary: glibc's malloc makes steps ~2x slower here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(spec: &ModelSpec, batch: usize) {
    let device = Device::flex().autodiff();
    let mut rng = SeededRng::new(1, 1);
    let mut model = spec.init(10, &mut rng, &device);
    let mut optim = ModuleOptimizer::from(AdamConfig::default().build());
    let x: Tensor<2> = Tensor::random([batch, 10], Distribution::Default, &device);
    let images: Tensor<4> = Tensor::random([batch, 3, SIDE, SIDE], Distribution::Default, &device);
    let y: Tensor<2> = Tensor::random([batch, 1], Distribution::Default, &device).add_scalar(0.5);
    let mut steps = Vec::new();
    for i in 0..STEPS + 5 {
        let start = Instant::now();
        let loss = mape_loss(
            model.forward(x.clone(), Some(images.clone()), Some(&mut rng)),
            y.clone(),
        );
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        if i >= 5 {
            steps.push(start.elapsed().as_secs_f64());
        }
    }
    // The fused step that `appraise train` runs on the CPU, from the same initial weights,
    // inside rayon's pool as the binary runs it.
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let (fx, fy) = (values(x.clone()), values(y.clone()));
    let fimages = images.clone().into_data().try_to_vec::<f32>().unwrap();
    let mut fused =
        FusedPhoto::new(&spec.init(10, &mut SeededRng::new(1, 1), &device)).expect("a photo model");
    let adam = AdamConfig::default();
    let mut fused_steps = Vec::new();
    for i in 0..STEPS + 5 {
        let start = Instant::now();
        let batch = Batch {
            features: &fx,
            n_features: 10,
            images: &fimages,
            targets: &fy,
        };
        rayon::scope(|_| fused.step(&batch, Loss::Mape, &adam, 1e-3, &mut rng));
        if i >= 5 {
            fused_steps.push(start.elapsed().as_secs_f64());
        }
    }
    let valid = model.valid();
    let plain = Device::flex();
    let x = Tensor::random([91, 10], Distribution::Default, &plain);
    let images = Tensor::random([91, 3, SIDE, SIDE], Distribution::Default, &plain);
    let mut forwards = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let _ = valid
            .forward(x.clone(), Some(images.clone()), None)
            .into_data();
        forwards.push(start.elapsed().as_secs_f64());
    }
    println!(
        "{:<6} batch {batch:>3}: training step {:.2} ms (through burn's layers {:.2} ms), evaluation of 91 houses {:.1} ms",
        spec.name(),
        median(fused_steps) * 1e3,
        median(steps) * 1e3,
        median(forwards) * 1e3
    );
}

fn main() {
    // mimalloc's purge delay (option 15) as the appraise binary sets it, unless given.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer option.
        unsafe { mi_option_set(15, 1000) };
    }
    // Transparent huge pages off, as the appraise binary turns them off for itself (zeroing
    // whole huge pages after the allocator's partial purges took ~30% of a step here).
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // Denormals flushed, as the binary and every training run set it.
    appraise::runtime::float_mode::flush_denormals();
    let filter = std::env::args().nth(1).unwrap_or_default();
    for spec in [
        ModelSpec::Cnn(CnnConfig::default()),
        ModelSpec::Mixed(MixedConfig::default()),
    ] {
        if spec.name().contains(&filter) || filter.starts_with("--") {
            bench(&spec, 8);
        }
    }
}
