// upgrade-guard hook pre|post: apt's DPkg::Pre-Invoke and DPkg::Post-Invoke
// (packaging/apt/80upgrade-guard), so that a plain `apt upgrade` or unattended-upgrades run
// is guarded too.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "base/strings.h"
#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/boot/trial.h"
#include "guard/cli/render.h"
#include "guard/run/pipeline.h"

namespace guard::cli {
namespace {

// apt shows the hooks' output between its own; everything goes to stderr, prefixed.
void tell(const std::string& line) {
  std::fprintf(stderr, "upgrade-guard: %s\n", base::escape_control(line).c_str());
}

// A regression is shouted: apt's output scrolls by, and unattended-upgrades mails it.
void shout(const run::RunSummary& s) {
  const char* rule = "************************************************************************";
  std::fprintf(stderr, "\n%s\n", rule);
  std::fputs(render_run_summary(s, ::isatty(STDERR_FILENO) != 0).c_str(), stderr);
  std::fprintf(stderr, "%s\n\n", rule);
}

// UPGRADE_GUARD_HOOK=off (or 0, no, false) in apt's environment: hook mode off for that run.
bool hook_switched_off() {
  const char* v = std::getenv("UPGRADE_GUARD_HOOK");
  if (v == nullptr) return false;
  std::string s(v);
  return s == "off" || s == "0" || s == "no" || s == "false";
}

enum class HookStep { pre, post };

int run_hook(CliContext& ctx, HookStep step) {
  const bool pre = step == HookStep::pre;
  // Inside `upgrade-guard run -- apt-get ...` the run guards apt: nothing to do or say.
  if (std::getenv("UPGRADE_GUARD_RUN") != nullptr || hook_switched_off()) return kExitOk;
  if (::geteuid() != 0) {
    tell("the apt hook must run as root; this apt run is not guarded");
    return kExitOk;
  }
  auto policy = ctx.invocation().policy();
  if (!policy) {
    // A broken policy must not stop apt (it may be the fix); say it loudly.
    tell("this apt run is NOT guarded: " + policy.error().error.to_string());
    return kExitOk;
  }
  if (!(*policy)->hook.enabled) return kExitOk;  // policy hook.enabled = false
  auto run_ctx = ctx.invocation().context();
  if (!run_ctx) {
    const bool required = (*policy)->snapshot.required;
    tell(std::string(required ? "refusing to let dpkg run: " : "this apt run is NOT guarded: ") +
         run_ctx.error().error.to_string());
    return required && pre ? kExitChecksFailed : kExitOk;
  }
  run::RunPipeline pipeline(**run_ctx);
  run::RunSummary s = pre ? pipeline.hook_pre() : pipeline.hook_post();
  if (ctx.options.json) {
    std::printf("%s\n", render_run_json(s).c_str());
  } else if (!pre && s.post && s.outcome != state::RunOutcome::passed) {
    shout(s);
  } else if (!pre && s.run_id == 0 && s.outcome == state::RunOutcome::passed) {
    if (ctx.options.verbose) tell(s.message);  // no run to check: quiet
  } else {
    for (const auto& note : s.notes) tell(note);
    tell(s.message);
  }
  return s.exit_code;
}

// The kernel's postinst hook: notes the kernel for the next boot's check. Never fails.
int hook_kernel(CliContext& ctx, const std::string& version) {
  if (version.empty()) return kExitOk;
  if (auto w = boot::record_next_kernel(ctx.options.state_dir, version); !w) {
    tell("the new kernel " + version + " is not noted for the next boot's check: " + w.error().to_string());
    return kExitOk;
  }
  if (ctx.options.verbose) tell("kernel " + version + " noted: the next boot's check says whether it runs");
  return kExitOk;
}

// The package's prerm on removal. Never fails.
int hook_release(CliContext& ctx) {
  if (::geteuid() != 0) return kExitOk;
  auto run_ctx = ctx.invocation().context();
  if (!run_ctx) {
    tell("nothing released: " + run_ctx.error().error.to_string());
    return kExitOk;
  }
  run::RunSummary s = run::RunPipeline(**run_ctx).hook_release();
  for (const auto& note : s.notes) tell(note);
  tell(s.message);
  return kExitOk;
}

}  // namespace

void add_hook_command(CLI::App& app, CliContext& ctx) {
  auto* hook = app.add_subcommand(
      "hook",
      "apt hook mode, called by /etc/apt/apt.conf.d/80upgrade-guard so that a plain `apt upgrade` or\n"
      "unattended-upgrades is guarded too. `hook pre` (DPkg::Pre-Invoke) takes the baseline and the\n"
      "snapshot once per apt process; `hook post` (DPkg::Post-Invoke) checks what dpkg changed and on a\n"
      "regression applies the policy's hook.on_fail (default: close the reboot gate) and exits 1, which\n"
      "makes apt fail. Both do nothing inside `upgrade-guard run`. Trouble of the guard's own is reported\n"
      "and never fails apt; `pre` stops apt only when snapshot.required is set and no snapshot was taken, or\n"
      "while a rollback is unfinished or failed (run `upgrade-guard recover` first). Off without removing\n"
      "the conffile: policy hook.enabled = false, or UPGRADE_GUARD_HOOK=off in apt's environment.");
  hook->require_subcommand(1);
  auto* pre = hook->add_subcommand("pre", "Before dpkg runs: baseline and snapshot (once per apt process)");
  pre->callback([&ctx] { ctx.exit_code = run_hook(ctx, HookStep::pre); });
  auto* post = hook->add_subcommand("post", "After dpkg ran: scoped post-checks and hook.on_fail on a regression");
  post->callback([&ctx] { ctx.exit_code = run_hook(ctx, HookStep::post); });
  auto version = std::make_shared<std::string>();
  auto image = std::make_shared<std::string>();
  auto* kernel = hook->add_subcommand(
      "kernel", "From /etc/kernel/postinst.d: note the kernel VERSION installed, for the next boot's check");
  kernel->add_option("version", *version, "The kernel's version, e.g. 6.1.0-28-amd64")->required();
  kernel->add_option("image", *image, "The kernel image's path (ignored)");
  // Both captured: CLI11 writes into them while parsing, after this function returned.
  kernel->callback([&ctx, version, image] { ctx.exit_code = hook_kernel(ctx, *version); });
  auto* release = hook->add_subcommand(
      "release", "From the package's prerm: end this apt process's open run and remove the reboot block");
  release->callback([&ctx] { ctx.exit_code = hook_release(ctx); });
}

}  // namespace guard::cli
