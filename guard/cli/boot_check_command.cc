// upgrade-guard boot-check: the post-boot health check of a trial boot (guard/boot_check.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/root.h"
#include "guard/boot/boot_check.h"
#include "guard/boot/grub_counter.h"
#include "guard/boot/trial_status.h"
#include "guard/bus/system_bus.h"
#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/cli/render.h"
#include "guard/core/liveness.h"
#include "guard/core/run_context.h"
#include "guard/state/store.h"
#include "snapshots/backend.h"
#include "snapshots/layout.h"

namespace guard::cli {
namespace {

struct StatusOptions {
  bool status = false;
  bool wait = false;
  int timeout_seconds = 600;
};

// One look at the trial's state: this boot's facts and the state database, opened read-only
// (never created, migrated or written). Anything unreadable makes the state unknown.
BootStatusView read_status(const GlobalOptions& o) {
  BootStatusView v;
  auto boot = boot::read_boot_facts("/proc");
  if (!boot) {
    v.error = boot.error().to_string();
    return v;
  }
  v.boot = *boot;
  v.boot->settled_here = boot::read_settled_marker(o.run_dir);
  auto present = state::StateStore::present(o.state_dir);
  if (!present) {
    v.error = present.error().to_string();
    return v;
  }
  if (*present) {
    auto store = state::StateStore::open_read_only(o.state_dir);
    if (!store) {
      v.error = store.error().to_string();
      return v;
    }
    auto records = boot::read_trial_records(*store);
    if (!records) {
      v.error = records.error().to_string();
      return v;
    }
    v.records = std::move(*records);
  }
  v.report = boot::derive_trial_status(v.records, *v.boot);
  return v;
}

// `boot-check --status [--wait [--timeout S]]`: reads, polls every 2 s while the state is not
// settled (armed, pending or unreadable), prints once.
int show_status(CliContext& ctx, const StatusOptions& o) {
  if (int rc = require_root("boot-check --status"); rc != kExitOk) {
    if (ctx.options.json) {
      BootStatusView v;
      v.error = "boot-check --status must run as root";
      std::fputs((render_boot_status_json(v) + "\n").c_str(), stdout);
    }
    return rc;
  }
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::seconds(o.timeout_seconds);
  BootStatusView v;
  for (;;) {
    v = read_status(ctx.options);
    if ((v.report && boot::settled(v.report->state)) || !o.wait || clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::min<clock::duration>(std::chrono::seconds(2), deadline - clock::now()));
  }
  v.waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count();
  std::fputs((ctx.options.json ? render_boot_status_json(v) + "\n" : render_boot_status(v)).c_str(), stdout);
  return boot_status_exit_code(v);
}

}  // namespace

void add_boot_check_command(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<boot::BootCheckOptions>();
  auto grub_script = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "boot-check",
      "Check the trial boot after a guarded upgrade (run by upgrade-guard-boot-check.service): wait for the\n"
      "boot to settle (policy boot_check.settle_timeout), require the policy's [services] required units active\n"
      "and no failed unit, run the dpkg-state, boot, mounts, services and critical checks against the accepted\n"
      "baseline. Pass: the trial is blessed, its snapshot is the last known-good, the GRUB counter disarmed.\n"
      "Fail: roll back to the pre-upgrade snapshot and reboot, at most once per upgrade (policy\n"
      "boot_check.rollback; upgrade-guard.rollback=0 on the kernel command line turns it off), otherwise close\n"
      "the reboot gate. On GRUB's fallback boot (the trial boot never reached boot-check, GRUB booted the\n"
      "pre-upgrade snapshot once): the same rules, with the trial read from the pinned root's database; the\n"
      "pinned root is rolled back to the snapshot and the machine reboots into it for good.\n"
      "Exits 0 at once when no trial is pending; 0 blessed, 1 gate closed, 3 rolled back.\n"
      "With --status it checks nothing and changes nothing: it reports what became of this boot's trial.");
  sub->add_option("--unit", opts->own_unit, "The unit this runs as (its own job does not count as booting)")
      ->capture_default_str();
  sub->add_flag("--no-reboot", [opts](std::int64_t) { opts->reboot = false; },
                "Roll back when the policy says so, but do not reboot");
  sub->add_flag("--grub-script", *grub_script,
                "Print the GRUB script /etc/grub.d/42_upgrade-guard adds to grub.cfg (the boot counter) and exit;\n"
                "its fallback entry carries GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT from the environment\n"
                "(update-grub exports them) and upgrade-guard.fallback=TRIAL");
  auto status = std::make_shared<StatusOptions>();
  CLI::Option* status_flag = sub->add_flag(
      "--status", status->status,
      "Only report the trial boot's state, read from the state database (run no check, roll nothing back,\n"
      "write nothing): none (an ordinary boot), armed (the next boot is a trial), pending (this boot is a\n"
      "trial boot, or GRUB's fallback boot, not settled yet), blessed, rolled-back (this boot's trial was\n"
      "rolled back, this is the restored root after a rollback, or a rollback waits for the reboot) or failed\n"
      "(not rolled back, the gate closed). Exits 0 none or blessed, 1 failed, 3 rolled-back, 4 armed, pending\n"
      "or unknown (not root, the state unreadable)");
  CLI::Option* wait_flag = sub->add_flag("--wait", status->wait,
                                         "With --status: poll every 2 s until the state is settled (none, blessed, "
                                         "rolled-back or failed) or --timeout passes")
                               ->needs(status_flag);
  sub->add_option("--timeout", status->timeout_seconds, "With --wait: give up after SECONDS (exit 4)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber)
      ->needs(wait_flag);
  sub->add_flag("--json", ctx.options.json, "Print JSON (\"schema\": 1)");
  sub->get_option("--no-reboot")->excludes(status_flag);
  sub->get_option("--grub-script")->excludes(status_flag);
  sub->callback([&ctx, opts, grub_script, status] {
    if (status->status) {
      ctx.exit_code = show_status(ctx, *status);
      return;
    }
    if (*grub_script) {
      // update-grub (grub-mkconfig) exports /etc/default/grub's settings to /etc/grub.d scripts.
      boot::GrubCmdline cmdline;
      if (const char* v = std::getenv("GRUB_CMDLINE_LINUX")) cmdline.args = v;
      if (const char* v = std::getenv("GRUB_CMDLINE_LINUX_DEFAULT")) cmdline.default_args = v;
      std::fputs(boot::render_grub_trial_script(cmdline).c_str(), stdout);
      ctx.exit_code = kExitOk;
      return;
    }
    // Not root, the trial's state cannot be read: "no trial pending" would be a guess.
    if ((ctx.exit_code = require_root("boot-check")) != kExitOk) return;
    // The GRUB fallback boot: the snapshot's own state knows nothing of the trial that failed;
    // the pinned root's does.
    boot::BootCheckSummary s;
    if (auto host = base::Root::open("/"); host && ctx.options.root == "/") {
      auto cmdline = host->read_file(opts->cmdline_path, 1 << 20);
      auto layout = snapshots::detect_layout("/");
      auto target = layout ? snapshots::rollback_target(*layout) : base::Result<snapshots::RollbackTarget>();
      std::string running_from = target ? target->running_from
                                 : layout && snapshots::in_snapshot_store(layout->subvol_path) ? layout->subvol_path
                                                                                                : std::string();
      if (cmdline && boot::fallback_trial_from_cmdline(*cmdline) && !running_from.empty()) {
        auto policy = ctx.invocation().policy();
        auto root = ctx.invocation().root();
        if (!policy || !root) {
          const CliError& e = !policy ? policy.error() : root.error();
          ctx.exit_code = report_error(e.error, e.exit_code);
          return;
        }
        const std::string state_dir = ctx.options.state_dir;
        const policies::Policy& p = **policy;
        SnapshotSource source([&p, state_dir, layout]() -> base::Result<std::unique_ptr<snapshots::SnapshotBackend>> {
          if (!layout) return base::fail(layout.error());
          return snapshots::make_backend(*layout, p, state_dir);
        });
        GuardPaths paths{.state_dir = ctx.options.state_dir, .log_dir = ctx.options.log_dir, .run_dir = ctx.options.run_dir};
        boot::FallbackEnv env{.policy = p,
                              .root = **root,
                              .runner = ctx.invocation().runner(),
                              .snapshots = source,
                              .paths = paths,
                              .hostname = host_name(),
                              .boot_id = current_boot_id()};
        auto system_bus = bus::make_system_boot_bus();
        if (auto fallback = boot::recover_fallback_boot(*cmdline, running_from, env, *system_bus, *opts)) {
          std::fputs((ctx.options.json ? render_boot_check_json(*fallback) + "\n" : render_boot_check(*fallback)).c_str(),
                     stdout);
          ctx.exit_code = fallback->exit_code;
          return;
        }
      }
    }
    // The quick no-op of every ordinary boot: no database, so no trial.
    struct stat st {};
    if (::stat(state::StateStore::database_path(ctx.options.state_dir).c_str(), &st) != 0) {
      s.message = "no boot trial pending";
    } else {
      auto run_ctx = ctx.invocation().context();
      if (!run_ctx) {
        ctx.exit_code = report_error(run_ctx.error().error, run_ctx.error().exit_code);
        return;
      }
      auto system_bus = bus::make_system_boot_bus();
      s = boot::run_boot_check(**run_ctx, *system_bus, *opts);
    }
    std::fputs((ctx.options.json ? render_boot_check_json(s) + "\n" : render_boot_check(s)).c_str(), stdout);
    ctx.exit_code = s.exit_code;
  });
}

}  // namespace guard::cli
