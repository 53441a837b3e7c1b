#include "checks/critical.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using namespace guard::testing;

class CriticalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "root";
    build_ = dir_ / "build";
    make_dirs(build_);
    make_base_root(root_);
    for (const char* p : {"/usr/bin/dash", "/usr/bin/dpkg", "/usr/bin/apt-get", "/usr/bin/mount", "/usr/bin/login"})
      build_exe(root_ + p, "int main(void) { return 0; }\n", {});
    make_symlink("dash", root_ + "/usr/bin/sh");
  }
  std::vector<Finding> run() { return run_one(CriticalCheck(), root_); }

  TempDir dir_;
  std::string root_;
  std::string build_;
};

TEST_F(CriticalTest, HealthyChrootWithoutInitOrSshdDoesNotBlock) {
  auto fs = run();
  EXPECT_EQ(blocking(fs), 0u) << dump(fs);
  const Finding* init = find_finding(fs, "/sbin/init", "no-init");
  ASSERT_NE(init, nullptr) << dump(fs);
  EXPECT_EQ(init->severity, Severity::info);
  EXPECT_EQ(find_finding(fs, "/usr/sbin/sshd"), nullptr) << dump(fs);
}

TEST_F(CriticalTest, MissingShellBlocks) {
  std::filesystem::remove(root_ + "/usr/bin/dash");
  auto fs = run();
  const Finding* f = find_finding(fs, "/bin/sh", "missing");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->check, "critical");
}

TEST_F(CriticalTest, MissingInitBlocksWhenTheRootHasAKernel) {
  write_file(root_ + "/boot/vmlinuz-6.1.0-13-amd64", "kernel");
  auto fs = run();
  const Finding* f = find_finding(fs, "/sbin/init", "missing");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(CriticalTest, SshdRequiredOnlyWhenAPackageShipsIt) {
  write_file(root_ + "/var/lib/dpkg/info/openssh-server.list", "/.\n/usr\n/usr/sbin\n/usr/sbin/sshd\n");
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/sbin/sshd", "missing");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(CriticalTest, CriticalBinaryWithMissingLibraryBlocks) {
  build_lib(build_ + "/libx.so.1", "libx.so.1", "int x(void) { return 0; }\n");
  build_exe(root_ + "/usr/bin/dpkg", "int x(void); int main(void) { return x(); }\n", {build_ + "/libx.so.1"});
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/dpkg", "needed:libx.so.1");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(CriticalTest, TransitiveLibraryProblemBlocks) {
  build_lib(build_ + "/libb.so.1", "libb.so.1", "int b(void) { return 0; }\n");
  build_lib(build_ + "/liba.so.1", "liba.so.1", "int b(void); int a(void) { return b(); }\n", "", {build_ + "/libb.so.1"});
  copy_in(build_ + "/liba.so.1", root_ + "/usr/lib/x86_64-linux-gnu/liba.so.1");
  build_exe(root_ + "/usr/bin/login", "int a(void); int main(void) { return a(); }\n",
            {build_ + "/liba.so.1", "-Wl,-rpath-link," + build_});
  auto fs = run();
  bool found = false;
  for (const auto& f : fs) {
    if (f.path == "/bin/login" && f.message.find("libb.so.1") != std::string::npos) {
      found = true;
      EXPECT_EQ(f.severity, Severity::block);
      EXPECT_NE(f.message.find("liba.so.1"), std::string::npos) << f.message;
    }
  }
  EXPECT_TRUE(found) << dump(fs);
}

TEST_F(CriticalTest, NotExecutableBlocks) {
  std::filesystem::permissions(root_ + "/usr/bin/apt-get", std::filesystem::perms::owner_read);
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/apt-get", "not-executable");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

}  // namespace
}  // namespace guard::checks
