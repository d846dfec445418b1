// Equal-width histograms of every row of a [rows, d] float32 tensor between the row's own minimum
// and maximum, for the logit-effect histogram of every feature ([d_sae, d_vocab] values).
//
// In torch that is min, max, then sub / div / mul / int cast / clamp / offsets and one bincount
// over all rows x d bins: ~170 ms for 256 x 49,152 on 2 cores, half of it the single-threaded
// bincount. Here each row (192 KiB: it stays in L2) is read twice, once for its extremes and once
// for its bins, rows in parallel.
//
// The bin of v is int((v - lo) / width * n_bins) clamped to [0, n_bins - 1], width = max(hi - lo,
// 1e-12): the float32 operations of analysis.directions.row_histograms in the same order (no
// multiply-add to fuse), so the same counts. A row with a non-finite value gets what torch gives
// it: every value in bin 0 (the division makes NaN or 0), lo and hi NaN if it holds a NaN.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "simd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>

namespace {

// min and max of a row, and whether it holds a NaN (NaN never compares, so it is counted apart)
SAESCOPE_SIMD_CLONES
void extremes(const float* row, int64_t d, float& lo, float& hi, bool& has_nan) {
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
  int32_t nans = 0;
  for (int64_t j = 0; j < d; ++j) {
    const float v = row[j];
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    nans += v != v;
  }
  lo = mn;
  hi = mx;
  has_nan = nans > 0;
}

SAESCOPE_SIMD_CLONES
void bin_row(const float* row, int64_t d, float lo, float width, int64_t n_bins, int32_t* bins) {
  const float n = static_cast<float>(n_bins);
  const int32_t last = static_cast<int32_t>(n_bins - 1);
  for (int64_t j = 0; j < d; ++j) {
    const float scaled = (row[j] - lo) / width * n;  // finite and >= 0 for a finite row: the cast is defined
    bins[j] = std::min(std::max(static_cast<int32_t>(scaled), 0), last);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> row_histograms(const at::Tensor& values, int64_t n_bins) {
  TORCH_CHECK(values.dim() == 2 && values.scalar_type() == at::kFloat && values.device().is_cpu(),
              "row_histograms: values must be a 2-D float32 CPU tensor");
  TORCH_CHECK(n_bins >= 1, "row_histograms: n_bins must be >= 1, got ", n_bins);
  const at::Tensor rows = values.contiguous();
  const int64_t n = rows.size(0), d = rows.size(1);
  at::Tensor counts = at::zeros({n, n_bins}, rows.options().dtype(at::kLong));
  at::Tensor lo = at::empty({n}, rows.options());
  at::Tensor hi = at::empty({n}, rows.options());
  const float* src = rows.data_ptr<float>();
  int64_t* counts_ptr = counts.data_ptr<int64_t>();
  float* lo_ptr = lo.data_ptr<float>();
  float* hi_ptr = hi.data_ptr<float>();
  at::parallel_for(0, n, 8, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> bins(d);
    for (int64_t r = begin; r < end; ++r) {
      const float* row = src + r * d;
      int64_t* out = counts_ptr + r * n_bins;
      bool has_nan = false;
      extremes(row, d, lo_ptr[r], hi_ptr[r], has_nan);
      if (has_nan) lo_ptr[r] = hi_ptr[r] = std::numeric_limits<float>::quiet_NaN();
      if (has_nan || !std::isfinite(lo_ptr[r]) || !std::isfinite(hi_ptr[r])) {
        out[0] = d;
        continue;
      }
      const float width = std::max(hi_ptr[r] - lo_ptr[r], 1e-12f);
      bin_row(row, d, lo_ptr[r], width, n_bins, bins.data());
      for (int64_t j = 0; j < d; ++j) ++out[bins[j]];
    }
  });
  return {counts, lo, hi};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(saescope, m) {
  m.def("row_histograms(Tensor values, int n_bins) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(saescope, CPU, m) {
  m.impl("row_histograms", &row_histograms);
}
