#include <gtest/gtest.h>

#include <random>

#include "checks/bls.h"
#include "checks/grubenv.h"
#include "checks/kernels.h"
#include "checks/unit_file.h"
#include "formats/grub_cfg.h"
#include "tests/common/mutations.h"
#include "tests/unit/formats/grub_cfg_samples.h"

namespace guard::checks {
namespace {

using formats::GrubConfig;
using formats::parse_grub_cfg;
using guard::testing::kSeparateBoot;

// Random byte edits of realistic inputs must never crash a parser.
TEST(ParserRobustness, RandomMutationsDoNotCrash) {
  std::mt19937 rng(20261122);
  std::string grubenv_block = std::string(kGrubEnvHeader) + "saved_entry=a\\\\b\\nc\nnext_entry=1>2\n";
  grubenv_block.resize(kGrubEnvSize, '#');
  std::string pe(0x300, '\0');
  pe.replace(0, 2, "MZ");
  pe[0x3c] = 0x40;
  pe.replace(0x40, 4, std::string("PE\0\0", 4));
  pe[0x46] = 3;
  pe.replace(0x58, 6, ".uname");
  const std::vector<std::string> seeds{kSeparateBoot, grubenv_block, pe,
                                       "[Service]\nExecStart=/bin/a \\\n  b\n# c\n;d\n[Unit]\nX=\n",
                                       "title x\nlinux /a\ninitrd /b /c\noptions q\n"};
  const char alphabet[] = "{}'\"\\$;#\n\r\t =@>[]()/-aZ0\0";
  for (int round = 0; round < 3000; ++round) {
    std::string s = guard::testing::mutate(seeds[static_cast<std::size_t>(round) % seeds.size()], rng,
                                           std::string_view(alphabet, sizeof(alphabet) - 1));
    GrubConfig cfg = parse_grub_cfg(s);
    (void)cfg.selects("0>1");
    if (auto env = parse_grubenv(s)) (void)render_grubenv(*env);
    (void)parse_unit_file(s);
    (void)parse_bls_entry(s);
    (void)bzimage_version(s);
    (void)uki_uname(s);
  }
}

}  // namespace
}  // namespace guard::checks
