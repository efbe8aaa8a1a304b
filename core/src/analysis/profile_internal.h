// What the profile sources share: the generator of every random draw (samples, shuffles, resamples).
#pragma once

#include <cstdint>
#include <limits>

namespace sinkscope::profile_detail {

// SplitMix64 (Steele, Lea and Flood 2014): a small generator whose stream is fixed by its 64-bit state,
// the same on every platform (the standard library's distributions are not).
class SplitMix64
{
public:
    explicit SplitMix64(uint64_t state) : m_state(state) {}
    uint64_t next()
    {
        uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n), n > 0: rejects the top 2^64 mod n values so that x mod n is exact.
    uint64_t below(uint64_t n)
    {
        const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
        uint64_t x = next();
        while (x >= limit) {
            x = next();
        }
        return x % n;
    }

private:
    uint64_t m_state;
};

} // namespace sinkscope::profile_detail
