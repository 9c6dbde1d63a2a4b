// Training-engine operations, CPU backend: each layer a *_forward /
// *_backward pair (llm.c style), written once as templates so the same code
// runs in float (training) and in double (the finite-difference tests).
// Layout: activations NCHW; convolution weights OIHW; dense weights [out][in].
// Backward functions accumulate into parameter gradients (+=) and write
// (overwrite) input gradients unless named *_accumulate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace adcorre::engine {

struct ConvShape {
  int n, c, h, w;    // input
  int o, k, stride;  // output channels, kernel side, stride
  int pad_top, pad_left;
  int oh, ow;      // output size
  bool depthwise;  // groups == c == o
};

// Output side and TensorFlow-style 'same' padding (odd pixel after).
int conv_out(int in, int k, int stride, bool same);
int same_pad_before(int in, int k, int stride);
ConvShape make_conv_shape(int n, int c, int h, int w, int o, int k, int stride, bool same, bool depthwise);

// C[M][N] = (beta ? C : 0) + A[M][K] * B[K][N], with A or B transposed as stored.
template <typename T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, const T* A, const T* B, T* C, bool accumulate);

template <typename T>
void conv_forward(const ConvShape& s, const T* x, const T* weight, T* y, std::vector<T>& scratch);
// dx may be null (not for depthwise) when the input's gradient is not wanted.
template <typename T>
void conv_backward(const ConvShape& s, const T* x, const T* weight, const T* dy, T* dx, T* dweight,
                   std::vector<T>& scratch);

// Batch norm over N*H*W per channel. Training: batch statistics (saved in
// mean/invstd for backward) and running statistics updated with momentum;
// evaluation: running statistics. relu: y = max(0, bn(x)), the ReLU that
// follows fused in (one pass instead of two). Backward of the fused pair:
// relu_output is that y and dy the gradient at the ReLU's output (null: a
// plain batch norm).
template <typename T>
void batchnorm_forward_train(int n, int c, int hw, const T* x, const T* gamma, const T* beta, T* y, T* mean, T* invstd,
                             T* running_mean, T* running_var, double momentum, double eps, bool relu = false);
template <typename T>
void batchnorm_forward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T* y, double eps, bool relu = false);
template <typename T>
void batchnorm_backward(int n, int c, int hw, const T* x, const T* gamma, const T* mean, const T* invstd, const T* dy,
                        T* dx, T* dgamma, T* dbeta, const T* relu_output = nullptr);

template <typename T>
void relu_forward(size_t count, const T* x, T* y);
template <typename T>
void relu_backward(size_t count, const T* y, const T* dy, T* dx);

// 3x3 max pooling, stride 2, 'same' padding; argmax holds the input index of each output.
template <typename T>
void maxpool_forward(int n, int c, int h, int w, const T* x, T* y, int32_t* argmax);
template <typename T>
void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const T* dy, T* dx);

template <typename T>
void gap_forward(int n, int c, int hw, const T* x, T* y);
template <typename T>
void gap_backward(int n, int c, int hw, const T* dy, T* dx);

// y[n][out] = x[n][in] . weight[out][in] + bias[out]
template <typename T>
void dense_forward(int n, int in, int out, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void dense_backward(int n, int in, int out, const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias);

// y = x / sqrt(max(|x|^2, eps)) per row of `dim` values (rows are `stride` apart).
template <typename T>
void l2norm_forward(int rows, int dim, const T* x, T* y, double eps);
template <typename T>
void l2norm_backward(int rows, int dim, const T* x, const T* y, const T* dy, T* dx, double eps);

// Mean cross-entropy of softmax(logits) against targets: the one-hot labels
// when targets is null, else targets (n x classes, non-negative; FER+'s
// normalised crowd votes), CE_i = -sum_c t_ic log p_ic. probs written;
// dlogits = scale * d(mean CE)/dlogits = scale * (p_ic sum_c t_ic - t_ic) / n.
// losses (may be null) receives the n per-sample CE_i.
template <typename T>
double softmax_ce_forward(int n, int classes, const T* logits, const int32_t* labels, const T* targets, T* probs,
                          double* losses = nullptr);
template <typename T>
void softmax_ce_backward(int n, int classes, const T* probs, const int32_t* labels, const T* targets, double scale,
                         T* dlogits);

// y = a + b, and y += x (residual sums and gradient accumulation), elementwise over count values.
template <typename T>
void add_forward(size_t count, const T* a, const T* b, T* y);
template <typename T>
void add_into(size_t count, const T* x, T* y);

// count zeros into y, and whether all of x[0, count) is finite (split over threads).
void fill_zero(size_t count, float* y);
bool all_finite(size_t count, const float* x);

// Optimizer steps over one parameter tensor (float, split over threads), as
// cuda::adam_update: Adam with the bias correction folded into
// step = lr * sqrt(1 - b2^t) / (1 - b1^t); SGD with momentum, m = momentum * m + g,
// w -= lr * m, or with nesterov w -= lr * (g + momentum * m) (PyTorch's form). Both add
// weight_decay * w to the gradient (L2, as the paper's Keras recipe).
void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                 double eps, double weight_decay);
void sgd_momentum_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                         double weight_decay, bool nesterov = false);

}  // namespace adcorre::engine
