// SplitMix64: a small seeded generator for dropout masks (reproducible per
// step). The CPU walks it with next(); a CUDA thread jumps to value i with
// splitmix_value(seed, i): both give the same mask.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace adcorre {

ADCORRE_HOST_DEVICE inline uint64_t splitmix_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Value i (1, 2, ...) of the sequence seeded with `seed`.
ADCORRE_HOST_DEVICE inline uint64_t splitmix_value(uint64_t seed, uint64_t i) {
  return splitmix_mix(seed + i * 0x9e3779b97f4a7c15ull);
}

// A value as a double in [0, 1) (its top 53 bits).
ADCORRE_HOST_DEVICE inline double splitmix_uniform(uint64_t value) {
  return static_cast<double>(value >> 11) * (1.0 / 9007199254740992.0);
}

struct SplitMix {
  uint64_t s;
  explicit SplitMix(uint64_t seed) : s(seed) {}
  uint64_t next() { return splitmix_mix(s += 0x9e3779b97f4a7c15ull); }
  double uniform() { return splitmix_uniform(next()); }
};

}  // namespace adcorre
