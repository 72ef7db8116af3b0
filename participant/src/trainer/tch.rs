//! The libtorch engine: the model as one leaf tensor per weight matrix and bias, autograd
//! for the gradient, an in-place `no_grad` update per step.
//!
//! Per round, the rows of all K batches are gathered once into one contiguous block on
//! the device (see `batch_rows`); step `k` trains on a view (`narrow`) of that block, so
//! no step creates a tensor from host memory. The losses
//! are summed on the device and read back once, so a CUDA round synchronises only at
//! the end.
//!
//! CPU threads: by default training on the CPU runs libtorch single-threaded
//! ([`DEFAULT_CPU_THREADS`]). The job's models are tiny (45→16→1: 32×45×16 multiply-adds
//! per layer-batch), so intra-op parallelism buys nothing, while OpenMP's spinning
//! workers collapse when the cores are shared: on the 2-core build machine under load,
//! libtorch's default of 2 threads ran 4–10× slower than 1 thread, in tch and in PyTorch
//! alike (benches/README.md). [`TchTrainer::with_cpu_threads`] changes it.

use ::tch::{Cuda, Device, Kind, Reduction, Tensor};
use cairn_protocol::model::{LayerShape, ModelSpec};

use super::{
    check_input, gather_batches, DeviceChoice, LocalUpdate, TrainError, TrainInput, Trainer,
};

/// libtorch intra-op threads used for CPU training unless set otherwise.
pub const DEFAULT_CPU_THREADS: usize = 1;

/// Local training with libtorch, on the CPU or a CUDA device.
#[derive(Debug)]
pub struct TchTrainer {
    device: Device,
    cpu_threads: Option<usize>,
}

impl TchTrainer {
    /// A trainer on the chosen device; [`TrainError::CudaUnavailable`] for
    /// [`DeviceChoice::Cuda`] where libtorch sees no GPU.
    pub fn new(choice: DeviceChoice) -> Result<Self, TrainError> {
        let device = match choice {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Auto => Device::cuda_if_available(),
            DeviceChoice::Cuda if Cuda::is_available() => Device::Cuda(0),
            DeviceChoice::Cuda => return Err(TrainError::CudaUnavailable),
        };
        Ok(Self {
            device,
            cpu_threads: Some(DEFAULT_CPU_THREADS),
        })
    }

    /// Sets libtorch's intra-op thread count for CPU training (`None`: leave libtorch's
    /// default, one per core). libtorch's setting is process-wide: it is applied at the
    /// start of each CPU round, and affects every libtorch user in the process.
    pub fn with_cpu_threads(mut self, threads: Option<usize>) -> Self {
        self.cpu_threads = threads.map(|n| n.max(1));
        self
    }

    /// The libtorch device in use.
    pub fn tch_device(&self) -> Device {
        self.device
    }

    /// The rows of all K batches, in order, on the device: `([n_examples, n_features],
    /// [n_examples])`. One host copy of whichever is smaller, the table or the rows trained
    /// on: a small table goes up whole and is gathered by `index_select` on the device
    /// (what a PyTorch loop does); a large one is gathered on the host first.
    fn batch_rows(
        &self,
        input: &TrainInput<'_>,
        rows: usize,
        n_examples: u64,
    ) -> Result<(Tensor, Tensor), TrainError> {
        let nf = input.spec.n_features as i64;
        if (rows as u64) <= n_examples {
            let idx: Vec<i64> = input
                .batches
                .iter()
                .flatten()
                .map(|&r| i64::from(r))
                .collect();
            let index = Tensor::f_from_slice(&idx)?.f_to_device(self.device)?;
            let table = Tensor::f_from_slice(input.features)?
                .f_view([rows as i64, nf])?
                .f_to_device(self.device)?;
            let labels = Tensor::f_from_slice(input.labels)?.f_to_device(self.device)?;
            return Ok((
                table.f_index_select(0, &index)?,
                labels.f_index_select(0, &index)?,
            ));
        }
        let (xs, ys) = gather_batches(input, n_examples);
        let x = Tensor::f_from_slice(&xs)?
            .f_view([n_examples as i64, nf])?
            .f_to_device(self.device)?;
        Ok((x, Tensor::f_from_slice(&ys)?.f_to_device(self.device)?))
    }

    /// Logits of `params` on row-major `features` (row-major `rows × outputs`), through
    /// libtorch on this trainer's device: the forward pass training uses, exposed so tests
    /// can hold it to [`cairn_protocol::model::logits`].
    pub fn forward(
        &self,
        spec: &ModelSpec,
        params: &[f32],
        features: &[f32],
    ) -> Result<Vec<f32>, TrainError> {
        spec.validate()?;
        spec.check_params(params)?;
        let nf = spec.n_features;
        if !features.len().is_multiple_of(nf) {
            return Err(TrainError::FeaturesLength {
                len: features.len(),
                n_features: nf,
            });
        }
        let rows = features.len() / nf;
        let _guard = ::tch::no_grad_guard();
        let model = Model::load(spec, params, self.device, false)?;
        let x = Tensor::f_from_slice(features)?
            .f_view([rows as i64, nf as i64])?
            .f_to_device(self.device)?;
        let logits = model
            .forward(&x)?
            .f_to_device(Device::Cpu)?
            .f_contiguous()?;
        let n = rows * spec.outputs;
        let mut out = vec![0.0f32; n];
        logits.f_copy_data(&mut out, n)?;
        Ok(out)
    }
}

impl Trainer for TchTrainer {
    fn train(&mut self, input: &TrainInput<'_>) -> Result<LocalUpdate, TrainError> {
        let checked = check_input(input)?;
        if let (Device::Cpu, Some(n)) = (self.device, self.cpu_threads) {
            let n = i32::try_from(n).unwrap_or(i32::MAX);
            if ::tch::get_num_threads() != n {
                ::tch::set_num_threads(n);
            }
        }
        let (x_all, y_all) = self.batch_rows(input, checked.rows, checked.n_examples)?;
        // Softmax cross-entropy takes class indices as integers.
        let binary = input.spec.is_binary();
        let y_all = if binary {
            y_all
        } else {
            y_all.f_to_kind(Kind::Int64)?
        };

        let model = Model::load(input.spec, input.global, self.device, true)?;
        let lr = f64::from(input.hyper.learning_rate);
        let mut loss_sum = Tensor::f_zeros([], (Kind::Float, self.device))?;
        let mut start = 0i64;
        for batch in input.batches {
            let b = batch.len() as i64;
            let x = x_all.f_narrow(0, start, b)?;
            let y = y_all.f_narrow(0, start, b)?;
            start += b;
            let z = model.forward(&x)?;
            let loss = if binary {
                z.f_binary_cross_entropy_with_logits::<Tensor>(&y, None, None, Reduction::Mean)?
            } else {
                z.f_cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0)?
            };
            loss.f_backward()?;
            let _guard = ::tch::no_grad_guard();
            let _ = loss_sum.f_add_(&loss)?;
            model.sgd_step(lr)?;
        }

        let _guard = ::tch::no_grad_guard();
        let mut delta = model.to_flat(input.spec.param_count())?;
        for (d, g) in delta.iter_mut().zip(input.global) {
            *d -= g;
        }
        let mean_loss = loss_sum.f_double_value(&[])? / input.batches.len() as f64;
        Ok(LocalUpdate {
            delta,
            n_examples: checked.n_examples,
            mean_loss: mean_loss as f32,
        })
    }

    fn device(&self) -> String {
        match self.device {
            Device::Cpu => "cpu".to_owned(),
            Device::Cuda(i) => format!("cuda:{i}"),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// The model's parameters as libtorch tensors, one `(W, b)` pair per layer.
struct Model {
    layers: Vec<(LayerShape, Tensor, Tensor)>,
}

impl Model {
    /// Copies the flat vector `params` (already length-checked) onto `device`.
    fn load(
        spec: &ModelSpec,
        params: &[f32],
        device: Device,
        grad: bool,
    ) -> Result<Self, TrainError> {
        let layers = spec
            .layers()
            .into_iter()
            .map(|l| {
                let w = Tensor::f_from_slice(&params[l.w_offset..l.b_offset])?
                    .f_view([l.n_out as i64, l.n_in as i64])?
                    .f_to_device(device)?
                    .set_requires_grad(grad);
                let b = Tensor::f_from_slice(&params[l.b_offset..l.b_offset + l.n_out])?
                    .f_to_device(device)?
                    .set_requires_grad(grad);
                Ok((l, w, b))
            })
            .collect::<Result<_, TrainError>>()?;
        Ok(Self { layers })
    }

    /// Logits `[rows]` (one output) or `[rows, outputs]` for a `[rows, n_features]` batch.
    fn forward(&self, x: &Tensor) -> Result<Tensor, TrainError> {
        let last = self.layers.len() - 1;
        let mut h = x.shallow_clone();
        for (i, (_, w, b)) in self.layers.iter().enumerate() {
            h = h.f_linear(w, Some(b))?;
            if i < last {
                h = h.f_relu()?;
            }
        }
        Ok(h.f_squeeze_dim(1)?)
    }

    /// `p ← p − lr·∇p` for every parameter, then clears the gradients. Call under
    /// `no_grad`. In place on the gradient buffer: no allocation per step.
    fn sgd_step(&self, lr: f64) -> Result<(), TrainError> {
        for (_, w, b) in &self.layers {
            for p in [w, b] {
                let mut g = p.f_grad()?;
                if !g.defined() {
                    continue;
                }
                // The in-place ops return another handle to the same tensor: not needed.
                let _ = g.f_mul_scalar_(lr)?;
                let _ = p.shallow_clone().f_sub_(&g)?;
                let _ = g.f_zero_()?;
            }
        }
        Ok(())
    }

    /// The parameters back in the flat layout, as `f32` on the host.
    fn to_flat(&self, len: usize) -> Result<Vec<f32>, TrainError> {
        let mut out = vec![0.0f32; len];
        for (l, w, b) in &self.layers {
            let wn = l.n_in * l.n_out;
            w.f_to_device(Device::Cpu)?
                .f_contiguous()?
                .f_copy_data(&mut out[l.w_offset..l.b_offset], wn)?;
            b.f_to_device(Device::Cpu)?
                .f_copy_data(&mut out[l.b_offset..l.b_offset + l.n_out], l.n_out)?;
        }
        Ok(out)
    }
}
