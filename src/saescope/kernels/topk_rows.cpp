// The k largest of (pre[r] + bias) in every row r, for TopK training on the CPU.
//
// torch.topk copies each row into (value, index) pairs and partially sorts them: ~70 ms for
// [4096, 9216] on 2 cores, a tenth of a training step. Here, per row: one vectorised pass
// takes the maximum of each block of 64 columns (bias added on the fly: the pre-activations are
// read, never written); the k-th largest block maximum is a lower bound of the k-th largest
// value (k distinct elements reach it), so only the few blocks at or above it are looked at
// again, and the k largest of their elements at or above it are the answer.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "simd.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kBlock = 64;
using Entry = std::pair<float, int64_t>;  // (value, column)

struct Scratch {
  std::vector<float> block_max, kth;
  std::vector<Entry> candidates;
};

// Block b is the strided set of columns b, b + n_blocks, ..., b + 63 n_blocks: its maxima are then
// an elementwise max of 64 contiguous slices, which vectorises without -ffast-math (a max over
// 64 neighbours is a reduction the compiler may not reorder). NaN never compares above
// anything, so a NaN is never picked (a row with too few other values fails the check).
SAESCOPE_SIMD_CLONES
void block_maxima(const float* row, const float* bias, int64_t n_blocks, float* out) {
  std::fill(out, out + n_blocks, -std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < kBlock; ++i) {
    const float* r = row + i * n_blocks;
    const float* c = bias + i * n_blocks;
    for (int64_t b = 0; b < n_blocks; ++b) out[b] = std::max(out[b], r[b] + c[b]);  // keeps out[b] if NaN
  }
}

bool top_of_row(const float* row, const float* bias, int64_t width, int64_t k, Scratch& s, float* out_values,
                int64_t* out_columns) {
  const int64_t n_blocks = width / kBlock;
  s.block_max.resize(n_blocks);
  block_maxima(row, bias, n_blocks, s.block_max.data());
  float bound = -std::numeric_limits<float>::infinity();
  if (n_blocks >= k) {
    s.kth.assign(s.block_max.begin(), s.block_max.end());
    std::nth_element(s.kth.begin(), s.kth.begin() + (k - 1), s.kth.end(), std::greater<float>());
    bound = s.kth[k - 1];
  }
  s.candidates.clear();
  for (int64_t b = 0; b < n_blocks; ++b) {
    if (!(s.block_max[b] >= bound)) continue;
    for (int64_t j = b; j < kBlock * n_blocks; j += n_blocks) {
      const float value = row[j] + bias[j];
      if (value >= bound) s.candidates.emplace_back(value, j);
    }
  }
  for (int64_t j = n_blocks * kBlock; j < width; ++j) {  // the tail after the 64 x n_blocks columns
    const float value = row[j] + bias[j];
    if (value >= bound) s.candidates.emplace_back(value, j);
  }
  if (static_cast<int64_t>(s.candidates.size()) < k) return false;
  std::nth_element(s.candidates.begin(), s.candidates.begin() + (k - 1), s.candidates.end(), std::greater<Entry>());
  for (int64_t i = 0; i < k; ++i) {
    out_values[i] = s.candidates[i].first;
    out_columns[i] = s.candidates[i].second;
  }
  return true;
}

std::tuple<at::Tensor, at::Tensor> topk_rows(const at::Tensor& pre, const at::Tensor& bias, int64_t k) {
  TORCH_CHECK(pre.dim() == 2 && pre.scalar_type() == at::kFloat && pre.device().is_cpu(),
              "topk_rows: pre must be a 2-D float32 CPU tensor");
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == pre.size(1) && bias.scalar_type() == at::kFloat,
              "topk_rows: bias must be float32 [", pre.size(1), "]");
  TORCH_CHECK(k >= 1 && k <= pre.size(1), "topk_rows: k must be in [1, ", pre.size(1), "], got ", k);
  const at::Tensor rows = pre.contiguous();
  const at::Tensor b = bias.contiguous();
  const int64_t n = rows.size(0), width = rows.size(1);
  at::Tensor values = at::empty({n, k}, rows.options());
  at::Tensor columns = at::empty({n, k}, rows.options().dtype(at::kLong));
  const float* src = rows.data_ptr<float>();
  const float* bias_ptr = b.data_ptr<float>();
  float* values_ptr = values.data_ptr<float>();
  int64_t* columns_ptr = columns.data_ptr<int64_t>();
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t r = begin; r < end; ++r) {
      const bool ok = top_of_row(src + r * width, bias_ptr, width, k, scratch, values_ptr + r * k, columns_ptr + r * k);
      TORCH_CHECK(ok, "topk_rows: row ", r, " has fewer than k = ", k, " values that are not NaN");
    }
  });
  return {values, columns};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(saescope, m) {
  m.def("topk_rows(Tensor pre, Tensor bias, int k) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(saescope, CPU, m) {
  m.impl("topk_rows", &topk_rows);
}
