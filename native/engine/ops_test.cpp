// Finite-difference checks of every engine operation's backward, in double,
// on small shapes (odd sizes, strides 1 and 2, 'valid' and 'same' padding,
// padding edges). Built with the addon (target adcorre_ops_test) and run by
// `npm test` (test/engine-ops.test.js). Tolerance: relative error of the
// whole gradient <= 1e-6 against central differences with h = 1e-6.
// The checks live by op family in ops_test_conv.cpp, ops_test_layers.cpp and
// ops_test_float.cpp; a new op gets its finite-difference check in the file
// of its family (native/README.md, "Adding an op").
#include "ops_test.h"

using namespace adcorre::engine::ops_test;

int main() {
  float_ops_against_double();
  conv_float_cases();
  conv_gradient_cases();
  layer_gradient_cases();
  gemm_cases();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
