// Direct-path log-prob effects of (position, feature) cells, one pass over the vocabulary per cell.
//
// For cell c with clean logits L = logits[pos[c]], lse_with = lse[pos[c]], D = directions[feat[c]]:
//   diff[v] = a[c] * (L[v] - beta[v]) + b[c] * D[v]    (the logits lost when the feature is removed)
//   shift = logsumexp(L - diff) - lse_with
//   next_token = diff[next] + shift (0 where next < 0), and the h largest / smallest diff + shift.
// In torch that is ~8 passes over a d_vocab row per cell (copies, addcmul, logsumexp, two topk).
// Here each block of 1,024 columns is computed into a stack buffer and used while it is in L1:
// the block's max and sum of exp, combined online into a running logsumexp, and a running top-h /
// bottom-h (sorted arrays; a block is scanned only when its max / min beats the h-th value).
//
// NaN / inf: a row of L - diff with any non-finite value gets its logsumexp from a plain scalar
// loop with torch's rules (NaN if any NaN, +inf if any +inf). A NaN diff is never picked as
// boosted or suppressed (torch.topk would rank it largest); slots with nothing to pick (fewer than
// h values that are not NaN) get id -1 and value NaN. Ties go to the lower vocabulary id.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "simd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>

namespace {

constexpr int64_t kBlock = 1024;
constexpr int64_t kRun = 32;  // values per vectorised test against a top-h bound
constexpr int64_t kMaxH = 64;  // n_hover: a few hover tokens, kept in fixed arrays
constexpr float kInf = std::numeric_limits<float>::infinity();

// exp(x) for finite x <= 0 without a libm call, so that the loop calling it vectorises (glibc's
// vector expf is declared only under -ffast-math): 2^n * p(r) with x = n ln2 + r, |r| <= ln2 / 2,
// p the degree-7 Taylor polynomial (relative error < 1e-8, below float rounding). Below
// x = -87 it gives at most 2^-126 * e^0.35 instead of less: nothing next to the block's maximum,
// whose term is 1. No float compare: under GCC's default -ftrapping-math one keeps the loop scalar.
inline float exp_nonpositive(float x) {
  const float t = x * 1.44269504f;  // x / ln2
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23 leaves no fraction bits
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 in two parts, the first exact in n * it
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (std::max(static_cast<int32_t>(n), -126) + 127) << 23;  // 2^n, n clamped to a normal
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// The h best values seen so far, best first (largest, or smallest when Less is true): an insert
// shifts the few worse ones down. Strict comparisons keep the earlier (lower) id on ties.
template <bool Less>
struct Best {
  int64_t h, filled = 0;
  float values[kMaxH];
  int64_t ids[kMaxH];

  static bool better(float x, float y) { return Less ? x < y : x > y; }
  // whether a block whose extreme value is x may hold a value to insert
  bool wants(float x) const { return filled < h ? x == x : better(x, values[h - 1]); }
  // whether any of x[0..n) is to be inserted: an OR over the lanes, no branch per value
  bool any_wanted(const float* x, int64_t n) const {
    if (filled < h) return true;
    const float bound = values[h - 1];
    int hit = 0;
#pragma omp simd reduction(| : hit)
    for (int64_t i = 0; i < n; ++i) hit |= better(x[i], bound);
    return hit != 0;
  }
  // offer diff[0..n) (ids start...) in runs of kRun: only runs with a value beating the h-th are
  // looked at one by one (a whole block scanned value by value was half the kernel's time)
  void offer_block(const float* x, int64_t n, int64_t start) {
    for (int64_t r = 0; r < n; r += kRun) {
      const int64_t m = std::min(kRun, n - r);
      if (!any_wanted(x + r, m)) continue;
      for (int64_t i = r; i < r + m; ++i) offer(x[i], start + i);
    }
  }
  void offer(float x, int64_t id) {
    if (!wants(x)) return;
    int64_t i = filled < h ? filled++ : h - 1;
    for (; i > 0 && better(x, values[i - 1]); --i) {
      values[i] = values[i - 1];
      ids[i] = ids[i - 1];
    }
    values[i] = x;
    ids[i] = id;
  }
};

struct BlockStats {
  float x_max, diff_max, diff_min;
  bool finite;
};

// diff and x = L - diff of one block into the buffers, with their extremes. `#pragma omp simd`
// lets the compiler vectorise the max / min reductions (their order does not change the result);
// HasBeta is a template argument, as a null test on beta in the loop keeps it scalar.
template <bool HasBeta>
inline BlockStats fill_block(const float* L, const float* D, const float* beta, float a, float b, int64_t n,
                             float* diff, float* x) {
  float x_max = -kInf, diff_max = -kInf, diff_min = kInf;
  int nonfinite = 0;
#pragma omp simd reduction(max : x_max, diff_max) reduction(min : diff_min) reduction(| : nonfinite)
  for (int64_t i = 0; i < n; ++i) {
    const float centred = HasBeta ? L[i] - beta[i] : L[i];
    const float d = a * centred + b * D[i];
    const float xi = L[i] - d;
    diff[i] = d;
    x[i] = xi;
    x_max = xi > x_max ? xi : x_max;
    diff_max = d > diff_max ? d : diff_max;
    diff_min = d < diff_min ? d : diff_min;
    nonfinite |= !(std::fabs(xi) <= std::numeric_limits<float>::max());
  }
  return {x_max, diff_max, diff_min, nonfinite == 0};
}

inline float sum_exp(const float* x, int64_t n, float shift) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += exp_nonpositive(x[i] - shift);
  return sum;
}

// logsumexp of a row with a non-finite value, by torch's rules; only such rows come here
float careful_logsumexp(const float* L, const float* D, const float* beta, float a, float b, int64_t width) {
  float x_max = -kInf;
  for (int64_t v = 0; v < width; ++v) {
    const float x = L[v] - (a * (beta ? L[v] - beta[v] : L[v]) + b * D[v]);
    if (std::isnan(x)) return x;
    x_max = std::max(x_max, x);
  }
  if (std::isinf(x_max)) return x_max;  // +inf, or every value -inf
  double sum = 0.0;
  for (int64_t v = 0; v < width; ++v) {
    const float x = L[v] - (a * (beta ? L[v] - beta[v] : L[v]) + b * D[v]);
    sum += std::exp(static_cast<double>(x - x_max));
  }
  return x_max + static_cast<float>(std::log(sum));
}

struct CellOut {
  float* next_value;
  int64_t* up_ids;
  float* up_values;
  int64_t* down_ids;
  float* down_values;
};

SAESCOPE_SIMD_CLONES
void one_cell(const float* L, const float* D, const float* beta, float a, float b, float lse_with, int64_t next,
              int64_t width, int64_t h, CellOut out) {
  alignas(64) float diff[kBlock];
  alignas(64) float x[kBlock];
  Best<false> up{h};
  Best<true> down{h};
  float run_max = -kInf, run_sum = 0.0f;
  bool finite = true;
  for (int64_t start = 0; start < width; start += kBlock) {
    const int64_t n = std::min(kBlock, width - start);
    const BlockStats s = beta ? fill_block<true>(L + start, D + start, beta + start, a, b, n, diff, x)
                              : fill_block<false>(L + start, D + start, nullptr, a, b, n, diff, x);
    finite = finite && s.finite;
    if (s.finite) {  // online logsumexp: rescale whichever of the two sums has the smaller max
      const float block_sum = sum_exp(x, n, s.x_max);
      if (s.x_max > run_max) {
        run_sum = run_sum * std::exp(run_max - s.x_max) + block_sum;
        run_max = s.x_max;
      } else {
        run_sum += block_sum * std::exp(s.x_max - run_max);
      }
    }
    if (up.wants(s.diff_max)) up.offer_block(diff, n, start);
    if (down.wants(s.diff_min)) down.offer_block(diff, n, start);
  }
  const float lse_without = finite ? run_max + std::log(run_sum) : careful_logsumexp(L, D, beta, a, b, width);
  const float shift = lse_without - lse_with;
  *out.next_value = next < 0 ? 0.0f : a * (beta ? L[next] - beta[next] : L[next]) + b * D[next] + shift;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < h; ++i) {
    out.up_ids[i] = i < up.filled ? up.ids[i] : -1;
    out.up_values[i] = i < up.filled ? up.values[i] + shift : nan;
    out.down_ids[i] = i < down.filled ? down.ids[i] : -1;
    out.down_values[i] = i < down.filled ? down.values[i] + shift : nan;
  }
}

void check_index(const at::Tensor& index, int64_t n, int64_t limit, const char* name) {
  TORCH_CHECK(index.dim() == 1 && index.size(0) == n && index.scalar_type() == at::kLong,
              "cell_effects: ", name, " must be int64 [", n, "]");
  if (n == 0) return;
  TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < limit,
              "cell_effects: ", name, " must be in [0, ", limit, ")");
}

void check_floats(const at::Tensor& t, int64_t n, const char* name) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == n && t.scalar_type() == at::kFloat,
              "cell_effects: ", name, " must be float32 [", n, "]");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> cell_effects(
    const at::Tensor& logits, const at::Tensor& lse, const at::Tensor& directions, const at::Tensor& cell_pos,
    const at::Tensor& cell_feat, const at::Tensor& a, const at::Tensor& b, const at::Tensor& beta,
    const at::Tensor& next_ids, int64_t h) {
  TORCH_CHECK(logits.dim() == 2 && logits.scalar_type() == at::kFloat && logits.device().is_cpu(),
              "cell_effects: logits must be a 2-D float32 CPU tensor");
  const int64_t n_pos = logits.size(0), width = logits.size(1), n = cell_pos.numel();
  TORCH_CHECK(directions.dim() == 2 && directions.size(1) == width && directions.scalar_type() == at::kFloat,
              "cell_effects: directions must be float32 [*, ", width, "]");
  TORCH_CHECK(h >= 1 && h <= std::min(width, kMaxH), "cell_effects: h must be in [1, ", std::min(width, kMaxH),
              "], got ", h);
  TORCH_CHECK(beta.numel() == 0 || (beta.dim() == 1 && beta.size(0) == width && beta.scalar_type() == at::kFloat),
              "cell_effects: beta must be float32 [", width, "] or empty");
  check_floats(lse, n_pos, "lse");
  check_floats(a, n, "a");
  check_floats(b, n, "b");
  check_index(cell_pos, n, n_pos, "cell_pos");
  check_index(cell_feat, n, directions.size(0), "cell_feat");
  TORCH_CHECK(next_ids.dim() == 1 && next_ids.size(0) == n && next_ids.scalar_type() == at::kLong,
              "cell_effects: next_ids must be int64 [", n, "]");
  TORCH_CHECK(n == 0 || next_ids.max().item<int64_t>() < width, "cell_effects: next_ids must be < ", width);

  const at::Tensor L = logits.contiguous(), D = directions.contiguous(), bt = beta.contiguous();
  const at::Tensor lse_c = lse.contiguous(), a_c = a.contiguous(), b_c = b.contiguous();
  const at::Tensor pos = cell_pos.contiguous(), feat = cell_feat.contiguous(), next = next_ids.contiguous();
  at::Tensor next_value = at::empty({n}, L.options());
  at::Tensor up_ids = at::empty({n, h}, L.options().dtype(at::kLong)), up_values = at::empty({n, h}, L.options());
  at::Tensor down_ids = at::empty({n, h}, L.options().dtype(at::kLong)), down_values = at::empty({n, h}, L.options());

  const float *L_ptr = L.data_ptr<float>(), *D_ptr = D.data_ptr<float>();
  const float* beta_ptr = bt.numel() ? bt.data_ptr<float>() : nullptr;
  const float *lse_ptr = lse_c.data_ptr<float>(), *a_ptr = a_c.data_ptr<float>(), *b_ptr = b_c.data_ptr<float>();
  const int64_t *pos_ptr = pos.data_ptr<int64_t>(), *feat_ptr = feat.data_ptr<int64_t>();
  const int64_t* next_ptr = next.data_ptr<int64_t>();
  float *nv = next_value.data_ptr<float>(), *uv = up_values.data_ptr<float>(), *dv = down_values.data_ptr<float>();
  int64_t *ui = up_ids.data_ptr<int64_t>(), *di = down_ids.data_ptr<int64_t>();
  // a cell is ~50k columns of work: small grains balance the threads; neighbouring cells share a
  // position (the caller sorts them), so its logits row stays in cache within a thread's range
  at::parallel_for(0, n, 4, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t p = pos_ptr[c];
      one_cell(L_ptr + p * width, D_ptr + feat_ptr[c] * width, beta_ptr, a_ptr[c], b_ptr[c], lse_ptr[p], next_ptr[c],
               width, h, {nv + c, ui + c * h, uv + c * h, di + c * h, dv + c * h});
    }
  });
  return {next_value, up_ids, up_values, down_ids, down_values};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(saescope, m) {
  m.def(
      "cell_effects(Tensor logits, Tensor lse, Tensor directions, Tensor cell_pos, Tensor cell_feat, Tensor a, "
      "Tensor b, Tensor beta, Tensor next_ids, int h) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(saescope, CPU, m) {
  m.impl("cell_effects", &cell_effects);
}
