// A lost state database is never a new, empty one: StateStore::present and open() against the
// marker state.db.created, a fresh directory, and an interrupted first creation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "guard/state/store.h"
#include "tests/common/test_env.h"

namespace guard {
namespace {

namespace fs = std::filesystem;
using guard::testing::TempDir;
using ::testing::HasSubstr;
using state::StateStore;

TEST(StateLostTest, AFreshDirectoryHasNoDatabaseAndOpeningWritesTheMarker) {
  TempDir dir;
  auto none = StateStore::present(dir / "state");
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_FALSE(*none);
  {
    auto store = StateStore::open(dir / "state");
    ASSERT_TRUE(store) << store.error().to_string();
  }
  EXPECT_TRUE(fs::exists(dir / "state/state.db.created"));
  auto present = StateStore::present(dir / "state");
  ASSERT_TRUE(present) << present.error().to_string();
  EXPECT_TRUE(*present);
}

TEST(StateLostTest, AnEmptyDatabaseBesideTheMarkerIsLostAndLeftEmpty) {
  TempDir dir;
  { ASSERT_TRUE(StateStore::open(dir / "state")); }
  ASSERT_EQ(::truncate((dir / "state/state.db").c_str(), 0), 0);
  auto present = StateStore::present(dir / "state");
  ASSERT_FALSE(present);
  EXPECT_THAT(present.error().to_string(), HasSubstr(dir / "state/state.db"));
  EXPECT_THAT(present.error().to_string(), HasSubstr("empty (0 bytes)"));
  auto store = StateStore::open(dir / "state");
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error().to_string(), HasSubstr("lost"));
  EXPECT_FALSE(StateStore::open_read_only(dir / "state"));
  EXPECT_EQ(fs::file_size(dir / "state/state.db"), 0U);
}

TEST(StateLostTest, AMissingDatabaseBesideAGateFileIsLost) {
  TempDir dir;
  guard::testing::make_dirs(dir / "state", 0700);
  guard::testing::write_file(dir / "state/gate", "open\n", 0644);  // an install older than the marker
  auto present = StateStore::present(dir / "state");
  ASSERT_FALSE(present);
  EXPECT_THAT(present.error().to_string(), HasSubstr("missing"));
  EXPECT_FALSE(StateStore::open(dir / "state"));
  EXPECT_FALSE(fs::exists(dir / "state/state.db"));
}

TEST(StateLostTest, AnEmptyDatabaseWithoutTheMarkerIsAnInterruptedFirstCreation) {
  TempDir dir;
  guard::testing::make_dirs(dir / "state", 0700);
  guard::testing::write_file(dir / "state/state.db", "", 0600);
  auto present = StateStore::present(dir / "state");
  ASSERT_TRUE(present) << present.error().to_string();
  EXPECT_FALSE(*present);
  auto store = StateStore::open(dir / "state");
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_TRUE(fs::exists(dir / "state/state.db.created"));
}

}  // namespace
}  // namespace guard
