// Optimizer steps, one launch per parameter (against 6 element-wise calls per parameter for SGD
// and ~10 for AdamW in the composed path, tinygrad_yolo/optim/sgd.py and adam.py, the reference
// these are tested against). One thread per element, grid-stride; p, grad and the state buffers
// are contiguous and of one size. Hyper-parameters arrive as kernel arguments (host values: no
// transfer, no sync). The arithmetic follows the reference's order of operations, so results
// agree to rounding (nvcc may contract a*b + c into one fused multiply-add).
// Self-contained (no #include): CuPy compiles it with NVRTC, which has no standard headers.

// PyTorch's SGD: d = g + wd·p;  b = d (first step) or momentum·b + (1 - dampening)·d;
// d = d + momentum·b (Nesterov) or b;  p -= lr·d.  momentum == 0: no buffer (buf may be null).
template <typename T>
__global__ void sgd_step_kernel(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf,
                                long long n, T lr, T momentum, T dampening, T weight_decay,
                                int nesterov, int first)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T d = grad[i];
        if (weight_decay != T(0))
            d = p[i] * weight_decay + d;
        if (momentum != T(0)) {
            T b;
            if (first)
                b = d;
            else if (dampening != T(0))
                b = buf[i] * momentum + (T(1) - dampening) * d;
            else
                b = buf[i] * momentum + d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] = p[i] - d * lr;
    }
}

// Adam / AdamW (decoupled = 1): with step_size = lr / (1 - beta1^t) and bias2_sqrt = sqrt(1 - beta2^t)
// computed on the host in double,
//   decoupled: p = p·(1 - lr·wd)   else: g = g + wd·p
//   m = beta1·m + (1 - beta1)·g;  v = beta2·v + (1 - beta2)·g²
//   p -= step_size · m / (sqrt(v) / bias2_sqrt + eps)
// decay = 1 - lr·wd and the (1 - beta) factors also come from the host, as the reference rounds them.
template <typename T>
__global__ void adam_step_kernel(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ exp_avg,
                                 T* __restrict__ exp_avg_sq, long long n, T beta1, T one_minus_beta1,
                                 T beta2, T one_minus_beta2, T eps, T weight_decay, T decay, T step_size,
                                 T bias2_sqrt, int decoupled)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T g = grad[i];
        T w = p[i];
        if (weight_decay != T(0)) {
            if (decoupled)
                w = w * decay;
            else
                g = g + weight_decay * w;
        }
        const T m = exp_avg[i] * beta1 + one_minus_beta1 * g;
        const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        p[i] = w - step_size * (m / (sqrt(v) / bias2_sqrt + eps));
    }
}
