#include "tests/unit/guard/pipeline_fixture.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "guard/gate/gate_file.h"

namespace guard::testing {

namespace fs = std::filesystem;

base::Result<base::ProcessResult> FakeRunner::run(const base::Command& command) {
  commands.push_back(command);
  if (edit) edit(root_dir);
  if (die_after_edit) throw GuardKilled{};
  return result;
}

// ---- FakeBackend --------------------------------------------------------------------------

base::Result<snapshots::SnapshotInfo> FakeBackend::create(const std::string& label,
                                                          const std::map<std::string, std::string>& metadata) {
  if (create_fails) return base::fail(*create_fails);
  snapshots::SnapshotInfo info;
  info.id = "snap-" + std::to_string(++counter_) + "-" + label;
  info.backend = name();
  info.label = label;
  info.location = store_ + "/" + info.id;
  info.created_unix = 1700000000 + counter_;
  info.metadata = metadata;
  fs::create_directories(store_);
  fs::copy(root_, info.location, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  snapshots_[info.id] = info;
  created.push_back(info.id);
  if (after_create) after_create();
  return info;
}

base::Result<std::vector<snapshots::SnapshotInfo>> FakeBackend::list() {
  std::vector<snapshots::SnapshotInfo> out;
  for (const auto& [id, info] : snapshots_) out.push_back(info);
  return out;
}

base::Result<snapshots::SnapshotInfo> FakeBackend::info(const std::string& id) {
  auto it = snapshots_.find(id);
  if (it == snapshots_.end()) return base::fail("snapshot", id, "no such snapshot");
  return it->second;
}

base::Result<void> FakeBackend::remove(const std::string& id) {
  auto it = snapshots_.find(id);
  if (it == snapshots_.end()) return base::fail("snapshot", id, "no such snapshot");
  fs::remove_all(it->second.location);
  snapshots_.erase(it);
  removed.push_back(id);
  return {};
}

base::Result<base::Root> FakeBackend::open(const std::string& id) {
  auto it = snapshots_.find(id);
  if (it == snapshots_.end()) return base::fail("snapshot", id, "no such snapshot");
  return base::Root::open(it->second.location);
}

base::Result<snapshots::RollbackResult> FakeBackend::swap_in(Journal& j) {
  auto snap = snapshots_.find(j.snapshot_id);
  if (snap == snapshots_.end()) return base::fail("snapshot", j.snapshot_id, "no such snapshot");
  // The old tree is kept under a new name; the root's path gets a copy of the snapshot.
  fs::rename(root_, j.broken);
  fs::copy(snap->second.location, root_, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  for (const auto& p : j.preserve) {
    std::error_code ec;
    if (!fs::exists(j.broken + p, ec)) continue;
    fs::remove_all(root_ + p, ec);
    fs::create_directories(fs::path(root_ + p).parent_path(), ec);
    fs::copy(j.broken + p, root_ + p, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  }
  j.state = "complete";
  return result_of(j);
}

snapshots::RollbackResult FakeBackend::result_of(const Journal& j) const {
  snapshots::RollbackResult r;
  r.snapshot_id = j.snapshot_id;
  r.method = "exchange";
  r.takes_effect_now = takes_effect_now;
  r.broken = j.broken;
  r.journal = j.id;
  return r;
}

base::Result<snapshots::RollbackResult> FakeBackend::rollback(const std::string& id,
                                                              const snapshots::RollbackOptions& options) {
  rollbacks.emplace_back(id, options);
  if (rollback_fails) return base::fail(*rollback_fails);
  if (snapshots_.count(id) == 0) return base::fail("snapshot", id, "no such snapshot");
  for (const auto& j : journals_) {
    if (j.state == "in-progress")
      return base::fail(snapshots::kRefused, j.id, "another rollback is unfinished: complete or revert it first");
  }
  Journal j{"journal-" + std::to_string(++counter_), id, options.owner, "in-progress",
            store_ + "/broken-" + std::to_string(counter_), options.preserve.value_or(std::vector<std::string>{})};
  journals_.push_back(j);
  if (after_journal) after_journal();
  if (rollback_fails_mid_way) return base::fail(*rollback_fails_mid_way);
  auto done = swap_in(journals_.back());
  if (done && after_rollback) after_rollback();
  return done;
}

base::Result<std::vector<snapshots::PendingRollback>> FakeBackend::pending_rollbacks() {
  std::vector<snapshots::PendingRollback> out;
  for (const auto& j : journals_) {
    if (j.state == "in-progress")
      out.push_back({j.id, j.snapshot_id, snapshots::RollbackStep::planned, true, j.owner, j.state});
  }
  return out;
}

base::Result<std::optional<snapshots::PendingRollback>> FakeBackend::find_rollback(const std::string& owner) {
  std::optional<snapshots::PendingRollback> found;
  for (const auto& j : journals_) {
    if (j.owner == owner)
      found = snapshots::PendingRollback{j.id,    j.snapshot_id, snapshots::RollbackStep::planned,
                                         j.state == "in-progress", j.owner, j.state};
  }
  return found;
}

base::Result<snapshots::RollbackResult> FakeBackend::resume_rollback(const std::string& journal,
                                                                     snapshots::ResumeMode mode) {
  for (auto& j : journals_) {
    if (j.id != journal) continue;
    if (j.state == "complete") return result_of(j);
    if (mode == snapshots::ResumeMode::revert) {
      j.state = "reverted";
      snapshots::RollbackResult r;
      r.snapshot_id = j.snapshot_id;
      return r;
    }
    if (rollback_fails_mid_way) return base::fail(*rollback_fails_mid_way);
    return swap_in(j);
  }
  return base::fail("journal", journal, "no such journal");
}

// ---- the world ----------------------------------------------------------------------------

std::int64_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

std::string stanza(const std::string& package, const std::string& version, const std::string& status) {
  return "Package: " + package + "\nStatus: " + status + "\nPriority: optional\nArchitecture: amd64\nVersion: " +
         version + "\nDescription: " + package + " for the pipeline tests\n\n";
}

PipelineWorld::PipelineWorld() {
  root_dir = dir / "root";
  state_dir = dir / "state";
  for (const char* d : {"usr/bin", "usr/sbin", "usr/lib", "etc", "var/lib/dpkg/info", "var/lib/dpkg/updates",
                        "run/systemd/system"})
    make_dirs(root_dir + "/" + d);
  for (const char* alias : {"bin", "sbin", "lib"}) make_symlink(std::string("usr/") + alias, root_dir + "/" + alias);
  set_dpkg_status(stanza("base-files", "12.4", "install ok installed") + stanza("ugdemo", "1.0", "install ok installed"));
  write_file(root_dir + "/var/lib/dpkg/info/ugdemo.list", "/usr\n/usr/bin\n/usr/bin/ugdemo\n");
  write_file(root_dir + "/usr/bin/ugdemo", "#!/bin/sh\n", 0755);
  runner.root_dir = root_dir;
  backend = std::make_unique<FakeBackend>(root_dir, dir / "snapshots");
  // Only the checks that mean something on a fake root: dpkg's state and links.
  for (const auto& id : policies::known_check_ids()) policy.checks[id].severity = policies::Severity::off;
  policy.checks["dpkg-state"].severity = policies::Severity::block;
  policy.checks["symlinks"].severity = policies::Severity::block;
  policy.preflight.min_free_root = 0;
  policy.preflight.min_free_boot = 0;
  policy.preflight.lock_timeout = std::chrono::seconds(1);
  policy.snapshot.min_free_bytes = 0;
}

RunContext& PipelineWorld::context(std::int64_t pid, bool live) {
  ctx.reset();
  root.reset();
  store.reset();
  auto r = base::Root::open(root_dir);
  EXPECT_TRUE(r) << r.error().to_string();
  root.emplace(std::move(*r));
  auto s = state::StateStore::open(state_dir);
  EXPECT_TRUE(s) << s.error().to_string();
  store.emplace(std::move(*s));
  snapshots = std::make_unique<SnapshotSource>([this]() -> base::Result<std::unique_ptr<snapshots::SnapshotBackend>> {
    if (snapshots_off) return base::fail(snapshots::kRefused, root_dir, "snapshots are off (snapshot.backend = none)");
    // The world keeps the backend (its journals outlive a "process"); the source gets a view.
    struct View final : snapshots::SnapshotBackend {
      explicit View(FakeBackend& b) : b(b) {}
      FakeBackend& b;
      std::string name() const override { return b.name(); }
      base::Result<snapshots::SnapshotInfo> create(const std::string& l,
                                                   const std::map<std::string, std::string>& m) override {
        return b.create(l, m);
      }
      base::Result<std::vector<snapshots::SnapshotInfo>> list() override { return b.list(); }
      base::Result<snapshots::SnapshotInfo> info(const std::string& id) override { return b.info(id); }
      base::Result<void> remove(const std::string& id) override { return b.remove(id); }
      base::Result<base::Root> open(const std::string& id) override { return b.open(id); }
      base::Result<snapshots::RollbackResult> rollback(const std::string& id,
                                                       const snapshots::RollbackOptions& o) override {
        return b.rollback(id, o);
      }
      base::Result<std::vector<snapshots::PendingRollback>> pending_rollbacks() override {
        return b.pending_rollbacks();
      }
      base::Result<std::optional<snapshots::PendingRollback>> find_rollback(const std::string& o) override {
        return b.find_rollback(o);
      }
      base::Result<snapshots::RollbackResult> resume_rollback(const std::string& j, snapshots::ResumeMode m) override {
        return b.resume_rollback(j, m);
      }
      base::Result<std::optional<std::string>> pinned_root_path() override { return b.pinned_root_path(); }
    };
    return std::unique_ptr<snapshots::SnapshotBackend>(new View(*backend));
  });
  GuardPaths paths;
  paths.state_dir = state_dir;
  paths.log_dir = dir / "log";
  paths.run_dir = dir / "run";
  ctx = std::unique_ptr<RunContext>(new RunContext{.policy = policy,
                                                   .root = *root,
                                                   .root_key = root_dir,
                                                   .live = live,
                                                   .store = *store,
                                                   .runner = runner,
                                                   .snapshots = *snapshots,
                                                   .gate_bus = live ? &bus : nullptr,
                                                   .paths = paths,
                                                   .pid = pid,
                                                   .hostname = "test",
                                                   .boot_id = "",
                                                   .progress = {}});
  ctx->progress = [this](std::string_view line) { said.emplace_back(line); };
  return *ctx;
}

std::string PipelineWorld::dpkg_status() const { return read_file(root_dir + "/var/lib/dpkg/status"); }

void PipelineWorld::set_dpkg_status(const std::string& text) const {
  write_file(root_dir + "/var/lib/dpkg/status", text);
}

bool PipelineWorld::gate_closed() {
  auto file = gate::read_gate_file(gate::gate_file_path(state_dir));
  if (!file) return true;
  auto s = state::StateStore::open(state_dir);
  if (!s) return true;
  auto row = s->get_gate();
  if (!row) return true;
  return row->closed || file->closed;
}

std::optional<state::RunRecord> PipelineWorld::run_record(std::int64_t id) {
  auto s = state::StateStore::open(state_dir);
  if (!s) return std::nullopt;
  auto r = s->get_run(id);
  if (!r || !*r) return std::nullopt;
  return **r;
}

bool PipelineWorld::known_good(const std::string& snapshot_id) {
  auto s = state::StateStore::open(state_dir);
  if (!s) return false;
  auto snap = s->get_snapshot(snapshot_id);
  return snap && *snap && (*snap)->known_good;
}

}  // namespace guard::testing
