// Function multi-versioning: on x86-64, GCC builds a function twice (AVX2 + FMA, and the
// baseline) and picks one when the library loads, so the cached build works on any x86-64
// CPU and uses the wide registers where they exist. Put it on per-row functions, not tiny
// inner ones: a cloned function is not inlined into an uncloned caller.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SAESCOPE_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SAESCOPE_SIMD_CLONES
#endif
