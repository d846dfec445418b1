// The k largest of (pre[r] + bias) in every row r, for TopK training on the CPU.
//
// torch.topk copies each row into (value, index) pairs and partially sorts them: ~70 ms for
// [4096, 9216] on 2 cores, a tenth of a training step. Here one pass keeps a k-element
// min-heap; a 16-wide block is looked at element by element only when its maximum beats
// the heap's smallest, which after the first few blocks is rare. The bias is added on the
// fly, so the pre-activations are read once and never written.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kBlock = 16;
using Entry = std::pair<float, int64_t>;  // (value, column); the heap's top is the smallest

// std::greater makes a min-heap; ties go to the lower column, as the first one seen is kept
void offer(std::vector<Entry>& heap, float value, int64_t column) {
  std::pop_heap(heap.begin(), heap.end(), std::greater<Entry>());
  heap.back() = {value, column};
  std::push_heap(heap.begin(), heap.end(), std::greater<Entry>());
}

void top_of_row(const float* row, const float* bias, int64_t width, int64_t k, std::vector<Entry>& heap,
                float* out_values, int64_t* out_columns) {
  heap.clear();
  for (int64_t j = 0; j < k; ++j) heap.emplace_back(row[j] + bias[j], j);
  std::make_heap(heap.begin(), heap.end(), std::greater<Entry>());
  float smallest = heap.front().first;
  int64_t j = k;
  for (; j + kBlock <= width; j += kBlock) {
    float block[kBlock];
    float block_max = row[j] + bias[j];
    for (int64_t i = 0; i < kBlock; ++i) {  // vectorised: no branch inside
      block[i] = row[j + i] + bias[j + i];
      block_max = std::max(block_max, block[i]);
    }
    if (!(block_max > smallest)) continue;
    for (int64_t i = 0; i < kBlock; ++i) {
      if (block[i] > smallest) {
        offer(heap, block[i], j + i);
        smallest = heap.front().first;
      }
    }
  }
  for (; j < width; ++j) {
    const float value = row[j] + bias[j];
    if (value > smallest) {
      offer(heap, value, j);
      smallest = heap.front().first;
    }
  }
  for (int64_t i = 0; i < k; ++i) {
    out_values[i] = heap[i].first;
    out_columns[i] = heap[i].second;
  }
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
    std::vector<Entry> heap;
    heap.reserve(k);
    for (int64_t r = begin; r < end; ++r) {
      top_of_row(src + r * width, bias_ptr, width, k, heap, values_ptr + r * k, columns_ptr + r * k);
    }
  });
  return {values, columns};
}

}  // namespace

TORCH_LIBRARY(saescope, m) {
  m.def("topk_rows(Tensor pre, Tensor bias, int k) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(saescope, CPU, m) {
  m.impl("topk_rows", &topk_rows);
}
