// The text every stored enum is written as, one table each.
#include "guard/state/records.h"

#include "base/string_table.h"

namespace guard::state {
namespace {

constexpr base::StringTable<RunPhase, 9> kPhases{{{
    {RunPhase::preflight, "preflight"},
    {RunPhase::baseline, "baseline"},
    {RunPhase::snapshot, "snapshot"},
    {RunPhase::command, "command"},
    {RunPhase::changes, "changes"},
    {RunPhase::post_checks, "post-checks"},
    {RunPhase::verdict, "verdict"},
    {RunPhase::rollback, "rollback"},
    {RunPhase::done, "done"},
}}};

constexpr base::StringTable<RunOutcome, 8> kOutcomes{{{
    {RunOutcome::passed, "passed"},
    {RunOutcome::rolled_back, "rolled-back"},
    {RunOutcome::gated, "gated"},
    {RunOutcome::warned, "warned"},
    {RunOutcome::refused, "refused"},
    {RunOutcome::interrupted, "interrupted"},
    {RunOutcome::failed, "failed"},
    {RunOutcome::command_failed, "command-failed"},
}}};

constexpr base::StringTable<RunKind, 3> kKinds{{{
    {RunKind::run, "run"},
    {RunKind::hook, "hook"},
    {RunKind::rollback, "rollback"},
}}};

constexpr base::StringTable<ReportStage, 5> kStages{{{
    {ReportStage::baseline, "baseline"},
    {ReportStage::post, "post"},
    {ReportStage::check, "check"},
    {ReportStage::audit, "audit"},
    {ReportStage::restored, "restored"},
}}};

constexpr base::StringTable<SnapshotState, 3> kSnapshotStates{{{
    {SnapshotState::present, "present"},
    {SnapshotState::deleting, "deleting"},
    {SnapshotState::deleted, "deleted"},
}}};

constexpr base::StringTable<BootTrialState, 4> kTrialStates{{{
    {BootTrialState::pending, "pending"},
    {BootTrialState::blessed, "blessed"},
    {BootTrialState::rolled_back, "rolled-back"},
    {BootTrialState::failed, "failed"},
}}};

constexpr base::StringTable<RollbackState, 4> kRollbackStates{{{
    {RollbackState::running, "running"},
    {RollbackState::done, "done"},
    {RollbackState::failed, "failed"},
    {RollbackState::abandoned, "abandoned"},
}}};

}  // namespace

const char* to_string(RunPhase p) { return kPhases.name(p); }
const char* to_string(RunOutcome o) { return kOutcomes.name(o); }
const char* to_string(RunKind k) { return kKinds.name(k); }
const char* to_string(ReportStage s) { return kStages.name(s); }
const char* to_string(SnapshotState s) { return kSnapshotStates.name(s); }
const char* to_string(BootTrialState s) { return kTrialStates.name(s); }
const char* to_string(RollbackState s) { return kRollbackStates.name(s); }

base::Result<RunPhase> parse_run_phase(std::string_view s) { return kPhases.parse(s, "run phase"); }
base::Result<RunOutcome> parse_run_outcome(std::string_view s) { return kOutcomes.parse(s, "run outcome"); }
base::Result<RunKind> parse_run_kind(std::string_view s) { return kKinds.parse(s, "run kind"); }
base::Result<ReportStage> parse_report_stage(std::string_view s) { return kStages.parse(s, "report stage"); }
base::Result<SnapshotState> parse_snapshot_state(std::string_view s) {
  return kSnapshotStates.parse(s, "snapshot state");
}
base::Result<BootTrialState> parse_boot_trial_state(std::string_view s) {
  return kTrialStates.parse(s, "boot trial state");
}
base::Result<RollbackState> parse_rollback_state(std::string_view s) {
  return kRollbackStates.parse(s, "rollback state");
}

std::string RollbackRecord::owner() const { return "upgrade-guard rollback " + std::to_string(id); }

}  // namespace guard::state
