/* Source of the ELF fuzz seeds (tests/fuzz/CMakeLists.txt): a library with versioned exports
 * and a TLS variable, and a program importing them, libm's and libc's. */
#include <math.h>
#include <stdio.h>

#ifndef SEED_MAIN
__thread int seed_tls = 1;
int seed_value(int x) { return x + seed_tls; }
double seed_root(double x) { return sqrt(x); }
#else
extern __thread int seed_tls;
int seed_value(int x);
double seed_root(double x);
int main(int argc, char** argv) {
  (void)argv;
  printf("%d %f %d\n", seed_value(argc), seed_root((double)argc) + cos((double)argc), seed_tls);
  return 0;
}
#endif
