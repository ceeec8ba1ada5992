#pragma once
// The GPU's lane groups on the host, for the adapters' row programs (adapter/row_programs.hpp):
// W lanes per row, one host thread per lane, in step at every reduce. A program then runs as under
// CUDA (backend::Thrust::run_row_program): each lane takes its share of a row (lane, lane + W, ...),
// the sums go through the xor butterfly of gpu_rows::RowGroup::reduce_with (so every lane gets the
// same bits, as on a GPU), only lane 0 stores the row's scalars, and the groups past the last row
// of a block run with valid = false. kernels::run_row_program_serial runs one lane per row, where a
// lane's share is the whole row: it cannot catch a wrong lane split, a kept value read for the
// wrong share, or a lane that skips a sum the others wait in (here: a deadlock; on a GPU: undefined).
#include <barrier>
#include <cstring>
#include <thread>
#include <vector>

#include "hyplora/core/config.hpp"

namespace hyplora::test {

template <int W>
class EmulatedLanes {
  static_assert(W == 8 || W == 16 || W == 32, "lanes per row: 8, 16 or 32, as gpu_rows::RowGroup");

 public:
  /// The group of one lane of one row, with the members a program uses (as gpu_rows::RowGroup).
  struct Group {
    index_t row, lane;
    bool valid;
    EmulatedLanes* lanes;
    static constexpr index_t width = W;
    index_t row_or_first() const { return valid ? row : 0; }
    template <class T>
    T reduce(T s) const {
      return lanes->butterfly(lane, s);
    }
  };
  /// Runs program p over `rows` rows, padded with invalid groups to whole blocks of
  /// threads_per_block / W rows, as a kernel launch of backend::Thrust does.
  template <class P>
  static void run(index_t rows, const P& p, index_t threads_per_block = 256) {
    EmulatedLanes shared;
    const index_t per_block = threads_per_block / W;
    const index_t padded = (rows + per_block - 1) / per_block * per_block;
    std::vector<std::thread> threads;
    for (index_t lane = 0; lane < W; ++lane)
      threads.emplace_back([&shared, &p, rows, padded, lane] {
        for (index_t r = 0; r < padded; ++r) p.row(Group{r, lane, r < rows, &shared});
      });
    for (auto& t : threads) t.join();
  }

 private:
  EmulatedLanes() : step_(W) {}
  /// s summed over the W lanes as __shfl_xor_sync does it: at offsets W/2, ..., 1 every lane adds
  /// its partner's value (lane ^ offset). A slot is rewritten only after every lane has read it.
  template <class T>
  T butterfly(index_t lane, T s) {
    static_assert(sizeof(T) <= sizeof(slot_[0]), "a reduced value fits a slot");
    for (index_t offset = W / 2; offset > 0; offset /= 2) {
      std::memcpy(slot_[lane], &s, sizeof(T));
      step_.arrive_and_wait();
      T other;
      std::memcpy(&other, slot_[lane ^ offset], sizeof(T));
      step_.arrive_and_wait();
      s = s + other;
    }
    return s;
  }
  std::barrier<> step_;
  alignas(16) unsigned char slot_[W][16];
};

}  // namespace hyplora::test
