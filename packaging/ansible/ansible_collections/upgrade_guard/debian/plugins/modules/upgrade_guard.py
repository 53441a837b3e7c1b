#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: 2026 upgrade-guard developers
# SPDX-License-Identifier: Apache-2.0
"""The module upgrade_guard.debian.upgrade_guard: drives the upgrade-guard CLI with --json."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: upgrade_guard
short_description: Guarded apt upgrades, checks, the reboot gate and rollbacks with upgrade-guard
version_added: 0.1.0
description:
  - Runs the C(upgrade-guard) command line tool on the target with C(--json) and returns its
    report as data. It never parses the tool's human output.
  - C(action=run) runs a command (by default C(apt-get -y dist-upgrade)) guarded by upgrade-guard,
    a snapshot before it, checks after it, and the policy's action (roll back or close the reboot
    gate) when the checks find a regression.
  - The exit code of upgrade-guard decides the result. 0 is ok (changed when packages changed),
    1 fails with C(verdict=gate_closed) and the blocking findings, 2 fails with
    C(verdict=usage_error), 3 fails with C(verdict=rolled_back) (and C(reboot_required=true) on the
    live root, where the restored root is used from the next boot), 4 fails with
    C(verdict=refused) and C(changed=false), 5 fails with C(verdict=command_failed) (the command
    failed, the checks found no regression, nothing was rolled back); any other code fails with
    C(verdict=error).
  - C(action=gate_status) is a query and never fails on a closed (1) or unknown (4) gate; test
    C(gate) instead.
  - Output that is not JSON, or a missing binary, fails the task with a message saying so.
author:
  - upgrade-guard developers (@upgrade-guard)
requirements:
  - upgrade-guard installed on the target (the Debian package, see the role upgrade_guard.debian.install).
  - root on the target (C(become=true)) for every action except C(check) of a C(root) readable by the user.
options:
  action:
    description:
      - C(run) runs I(command) guarded (C(upgrade-guard run -- COMMAND)).
      - C(check) runs the checks read-only (C(upgrade-guard check)).
      - C(gate_status) reads the pre-reboot gate (C(upgrade-guard gate status)).
      - C(gate_open) opens the gate after re-running the checks, or without them with I(force)
        (C(upgrade-guard gate open)). Nothing is done when the gate is open already.
      - C(baseline_accept) accepts every current finding as the root's baseline
        (C(upgrade-guard baseline accept)).
      - C(rollback) restores a snapshot, by default the last known-good one (C(upgrade-guard rollback)).
      - C(recover) finishes what a killed guard left (C(upgrade-guard recover)).
    type: str
    required: true
    choices: [run, check, gate_status, gate_open, baseline_accept, rollback, recover]
  command:
    description:
      - The command C(action=run) guards, as a list of arguments (no shell).
      - It runs with C(DEBIAN_FRONTEND=noninteractive). Its output goes to upgrade-guard's log
        (C(/var/log/upgrade-guard/run-ID.log)) and to C(stderr_lines).
    type: list
    elements: str
    default: [apt-get, -y, dist-upgrade]
  root:
    description:
      - Guard this root directory instead of the live system (C(--root DIR)), e.g. a chroot or a
        mounted image.
      - Without it the live root C(/) is guarded.
    type: path
  policy:
    description:
      - Use the built-in defaults and this policy file instead of C(/etc/upgrade-guard/policy.toml)
        and C(policy.d/) (C(--policy FILE)).
    type: path
  state_dir:
    description:
      - Where upgrade-guard's state database and gate file live (C(--state-dir DIR)).
    type: path
  rollback_to:
    description:
      - With C(action=rollback), the snapshot id to restore (C(--to ID)). By default the last
        known-good snapshot.
    type: str
  force:
    description:
      - With C(action=gate_open), open the gate without re-running the checks (C(--force)).
    type: bool
    default: false
  reason:
    description:
      - With C(action=gate_open), why the gate is opened; recorded with who opened it (C(--reason)).
    type: str
  abandon:
    description:
      - With C(action=recover), give unfinished rollbacks up instead of completing them (C(--abandon)).
    type: bool
    default: false
  checks:
    description:
      - With C(action=check) (and C(action=run) in check mode), run only these checks (C(--checks a,b)).
      - By default every check the policy enables.
    type: list
    elements: str
  compare_baseline:
    description:
      - With C(action=check) (and C(action=run) in check mode), compare with the root's accepted
        baseline (C(--baseline compare)), so only new findings block, as they would after an
        upgrade. The report is recorded in upgrade-guard's state database; nothing else is written.
      - With C(false) every blocking finding counts, accepted or not, and nothing is recorded.
    type: bool
    default: true
  binary:
    description:
      - The upgrade-guard executable on the target.
    type: path
    default: /usr/sbin/upgrade-guard
notes:
  - Check mode is supported. C(action=run) then runs C(check) instead, which changes nothing on the
    system and reports C(changed=false). C(gate_open), C(baseline_accept), C(rollback) and
    C(recover) do nothing in check mode (C(changed=false), C(msg) says they were skipped).
  - Diff mode is supported for C(action=run) - the diff lists the packages whose version changed,
    C(package version) per line, before and after the run.
  - The exit codes and the JSON are upgrade-guard's, described in its README and C(man upgrade-guard).
seealso:
  - name: upgrade-guard(8)
    description: The manual page of the command line tool (C(man upgrade-guard) on the target).
    link: https://upgrade-guard.invalid.example/
'''

EXAMPLES = r'''
- name: Upgrade guarded by upgrade-guard
  upgrade_guard.debian.upgrade_guard:
    action: run
  register: upgrade
  become: true

- name: Reboot when the upgrade needs it (a new kernel) or a rollback waits for the next boot
  ansible.builtin.reboot:
  when: upgrade.reboot_required
  become: true

- name: Install one package guarded, with the policy the fleet uses
  upgrade_guard.debian.upgrade_guard:
    action: run
    command: [apt-get, install, -y, nginx]
    policy: /etc/upgrade-guard/fleet.toml
  become: true

- name: Read the reboot gate (never fails on a closed gate)
  upgrade_guard.debian.upgrade_guard:
    action: gate_status
  register: gate
  failed_when: gate.gate != 'open'
  become: true

- name: Run only the library and service checks against the accepted baseline
  upgrade_guard.debian.upgrade_guard:
    action: check
    checks: [libraries, services]
  become: true

- name: Finish what an interrupted run left
  upgrade_guard.debian.upgrade_guard:
    action: recover
  become: true

- name: Open the gate knowingly, without re-running the checks
  upgrade_guard.debian.upgrade_guard:
    action: gate_open
    force: true
    reason: "findings reviewed in ticket OPS-1234"
  become: true

- name: Roll back to a named snapshot
  upgrade_guard.debian.upgrade_guard:
    action: rollback
    rollback_to: "@upgrade-guard-12-pre"
  become: true

- name: Guard an upgrade inside a chroot from the host
  upgrade_guard.debian.upgrade_guard:
    action: run
    root: /srv/chroots/bookworm
  become: true
'''

RETURN = r'''
action:
  description: The action that ran; C(check) for C(action=run) in check mode.
  returned: always
  type: str
  sample: run
rc:
  description: The exit code of upgrade-guard (of C(gate open) for C(action=gate_open)).
  returned: when upgrade-guard ran
  type: int
  sample: 0
verdict:
  description:
    - C(passed) (exit 0), C(gate_closed) (1), C(usage_error) (2), C(rolled_back) (3; also a
      successful C(action=rollback)), C(refused) (4), C(command_failed) (5) or C(error) (any other
      exit code, output that is not JSON, a missing binary).
    - For C(action=gate_status) - C(open), C(gate_closed) or C(unknown) (the gate's state cannot be
      read, which counts as closed).
    - C(skipped) when check mode skipped the action.
  returned: always
  type: str
  sample: passed
report:
  description:
    - The JSON upgrade-guard printed, as a dict (C(schema) 1). An empty dict when it printed none (an
      error before it got to work; see C(msg) and C(stderr_lines)), its output was not JSON, or it
      did not run (check mode skipped the action, the binary is missing).
    - C(action=run) - the run (C(run), C(outcome), C(exit_code), C(changes), C(post), C(rollback), ...).
    - C(action=recover) - a C(recovered) list with one run per item finished.
    - C(action=check) - the check report (C(verdict), C(checks), C(findings)).
    - C(action=gate_status) and C(action=gate_open) - the gate status (C(state), C(closed), C(reason),
      C(findings)), for C(gate_open) as read after opening it.
  returned: always
  type: dict
  sample: {"schema": 1, "run": 12, "outcome": "passed", "exit_code": 0}
changes:
  description:
    - The run's package changes (C(report.changes)) - C(upgraded), C(installed), C(removed),
      C(downgraded), C(state_changed), each a list of C({package, before, after}); for
      C(action=recover) those of the last run it finished. An empty dict for other actions.
  returned: always
  type: dict
  sample: {"upgraded": [{"package": "curl", "before": "7.88.1-10", "after": "7.88.1-10+deb12u5"}],
           "installed": [], "removed": [], "downgraded": [], "state_changed": []}
findings:
  description:
    - The blocking findings - new since the baseline after a run (C(report.post)), of the check, or
      those that closed the gate. Each has C(check), C(path), C(message) and, when known, C(package).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "libraries", "path": "/usr/bin/curl", "package": "curl",
            "message": "needs libcurl.so.4, which no library provides", "blocking": true}]
reboot_required:
  description:
    - True when the host should be rebooted - after a passed run (or a recovered one) when
      C(/run/reboot-required) exists on the target (under I(root) when given), and after a
      rollback of the live root, which is used from the next boot on.
  returned: always
  type: bool
  sample: false
gate:
  description:
    - The reboot gate - C(open), C(closed), C(unknown) (counts as closed), or null when this action
      does not tell. Set by C(gate_status), C(gate_open), and a C(run) whose regression closed the gate.
  returned: always
  type: str
  sample: open
recovered:
  description: With C(action=recover), how many interrupted runs or rollbacks were finished.
  returned: when action is recover
  type: int
  sample: 1
msg:
  description: What happened, in one line, with the first blocking findings.
  returned: always
  type: str
  sample: "gate closed: 1 blocking finding: libraries /usr/bin/curl: needs libcurl.so.4 [curl]"
stderr_lines:
  description:
    - What upgrade-guard (and the guarded command, whose output goes to stderr with C(--json))
      printed on stderr, its last 200 lines, for humans.
  returned: when upgrade-guard ran
  type: list
  elements: str
  sample: ["Reading package lists..."]
stdout_lines:
  description: What C(gate open) printed (it prints no JSON), for humans.
  returned: when action is gate_open and it ran
  type: list
  elements: str
  sample: ["gate open (checks pass)"]
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule

ACTIONS = ('run', 'check', 'gate_status', 'gate_open', 'baseline_accept', 'rollback', 'recover')
# What check mode skips: each would change the system or upgrade-guard's records.
SKIPPED_IN_CHECK_MODE = ('gate_open', 'baseline_accept', 'rollback', 'recover')
# upgrade-guard's exit codes (its README, "Exit codes") and the verdict each means.
VERDICTS = {0: 'passed', 1: 'gate_closed', 2: 'usage_error', 3: 'rolled_back', 4: 'refused', 5: 'command_failed'}
GATE_STATES = {0: 'open', 1: 'closed', 4: 'unknown'}
PACKAGE_KINDS = ('upgraded', 'installed', 'removed', 'downgraded')
STDERR_KEPT = 200
FINDINGS_IN_MSG = 3

ARGUMENT_SPEC = dict(
    action=dict(type='str', required=True, choices=list(ACTIONS)),
    command=dict(type='list', elements='str', default=['apt-get', '-y', 'dist-upgrade']),
    root=dict(type='path'),
    policy=dict(type='path'),
    state_dir=dict(type='path'),
    rollback_to=dict(type='str'),
    force=dict(type='bool', default=False),
    reason=dict(type='str'),
    abandon=dict(type='bool', default=False),
    checks=dict(type='list', elements='str'),
    compare_baseline=dict(type='bool', default=True),
    binary=dict(type='path', default='/usr/sbin/upgrade-guard'),
)

# Options that only one action reads: given with another, they would be silently ignored.
ONLY_FOR = (
    ('rollback_to', ('rollback',)),
    ('force', ('gate_open',)),
    ('reason', ('gate_open',)),
    ('abandon', ('recover',)),
    ('checks', ('check', 'run')),
)


def option_problem(params):
    """Why these parameters make no sense together, or None. e.g. force with action run."""
    for name, actions in ONLY_FOR:
        if params.get(name) and params['action'] not in actions:
            return '%s is only for action %s, not %s' % (name, ' or '.join(actions), params['action'])
    if params['action'] == 'run' and not params.get('command'):
        return 'command must not be empty for action run'
    return None


def cli_argv(params, action):
    """The argv of upgrade-guard for this action, e.g.
    ['/usr/sbin/upgrade-guard', '--json', '--root', '/srv/r', 'run', '--', 'apt-get', '-y', 'dist-upgrade']."""
    argv = [params['binary'], '--json']
    for name, flag in (('root', '--root'), ('policy', '--policy'), ('state_dir', '--state-dir')):
        if params.get(name):
            argv += [flag, params[name]]
    if action == 'run':
        argv += ['run', '--'] + list(params['command'])
    elif action == 'check':
        argv.append('check')
        if params.get('checks'):
            argv += ['--checks', ','.join(params['checks'])]
        if params.get('compare_baseline', True):
            argv += ['--baseline', 'compare']
    elif action == 'gate_status':
        argv += ['gate', 'status']
    elif action == 'gate_open':
        argv += ['gate', 'open']
        if params.get('force'):
            argv.append('--force')
        if params.get('reason'):
            argv += ['--reason', params['reason']]
    elif action == 'baseline_accept':
        argv += ['baseline', 'accept']
    elif action == 'rollback':
        argv.append('rollback')
        if params.get('rollback_to'):
            argv += ['--to', params['rollback_to']]
    elif action == 'recover':
        argv.append('recover')
        if params.get('abandon'):
            argv.append('--abandon')
    else:
        raise ValueError('unknown action %r' % (action,))
    return argv


def parse_report(stdout):
    """(report dict, None), or (None, why) when stdout is not one JSON object.
    Empty stdout is an empty report: upgrade-guard stopped before printing (its reason is on stderr)."""
    text = (stdout or '').strip()
    if not text:
        return {}, None
    try:
        data = json.loads(text)
    except ValueError as e:
        return None, 'upgrade-guard printed output that is not JSON (%s): %s' % (e, shorten(text, 200))
    if not isinstance(data, dict):
        return None, 'upgrade-guard printed JSON that is not an object: %s' % shorten(text, 200)
    return data, None


def shorten(text, limit):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def as_dict(value):
    return value if isinstance(value, dict) else {}


def as_list(value):
    return value if isinstance(value, list) else []


def run_of(action, report):
    """The run-shaped part of a report: the run itself, or the last run `recover` finished."""
    if action == 'recover':
        recovered = as_list(report.get('recovered'))
        return as_dict(recovered[-1]) if recovered else {}
    if action == 'run':
        return report
    return {}


def package_count(changes):
    """Packages upgraded, installed, removed or downgraded."""
    return sum(len(as_list(changes.get(kind))) for kind in PACKAGE_KINDS)


def anything_changed(changes):
    return package_count(changes) > 0 or bool(as_list(changes.get('state_changed')))


def findings_of(action, report):
    """The blocking findings of the report, each a dict as upgrade-guard printed it."""
    if action in ('run', 'recover'):
        source = as_list(as_dict(run_of(action, report).get('post')).get('findings'))
    elif action == 'check':
        source = as_list(report.get('findings'))
    elif action in ('gate_status', 'gate_open'):
        # The gate's findings are those that closed it: all blocking, without the flag.
        return [f for f in as_list(report.get('findings')) if isinstance(f, dict)]
    else:
        return []
    return [f for f in source if isinstance(f, dict) and f.get('blocking')]


def describe_finding(f):
    """'libraries /usr/bin/curl: needs libcurl.so.4 [curl]'."""
    text = f.get('check') or '?'
    if f.get('path'):
        text += ' ' + f['path']
    text += ': ' + (f.get('message') or '')
    if f.get('package'):
        text += ' [%s]' % f['package']
    return text


def describe_findings(findings):
    """'2 blocking findings: a; b', the first few of them."""
    if not findings:
        return 'no blocking finding listed'
    shown = [describe_finding(f) for f in findings[:FINDINGS_IN_MSG]]
    more = len(findings) - len(shown)
    return '%d blocking finding%s: %s%s' % (len(findings), '' if len(findings) == 1 else 's', '; '.join(shown),
                                            '; and %d more' % more if more else '')


def prefixed(prefix, why):
    """'refused: WHY', unless WHY says so already ('refused: a lock is held')."""
    return why if why.lower().startswith(prefix) else '%s: %s' % (prefix, why)


def last_line(text):
    lines = [line for line in (text or '').splitlines() if line.strip()]
    return lines[-1].strip() if lines else ''


def takes_effect_now(action, report):
    rollback = report if action == 'rollback' else as_dict(run_of(action, report).get('rollback'))
    return bool(rollback.get('takes_effect_now'))


def gate_status_result(rc, report, stderr):
    """gate status is a query: 0 open, 1 closed, 4 unknown never fail; anything else does."""
    gate = GATE_STATES.get(rc)
    result = dict(rc=rc, changed=False, failed=gate is None, changes={}, reboot_required=False,
                  findings=findings_of('gate_status', report), gate=gate or 'unknown')
    if gate == 'open':
        result.update(verdict='open', msg='gate open: a reboot is safe as far as upgrade-guard knows')
    elif gate == 'closed':
        why = report.get('reason') or 'no reason recorded'
        by = report.get('changed_by')
        msg = 'gate closed%s: %s' % (' by ' + by if by else '', why)
        if result['findings']:
            msg += '; ' + describe_findings(result['findings'])
        result.update(verdict='gate_closed', msg=msg)
    elif gate == 'unknown':
        why = report.get('error') or last_line(stderr) or 'no reason given'
        result.update(verdict='unknown', msg='gate state unknown (counts as closed): %s' % why)
    else:
        why = last_line(stderr) or report.get('error') or 'no message'
        result.update(verdict='usage_error' if rc == 2 else 'error',
                      msg='upgrade-guard gate status exited with %s: %s' % (rc, why))
    return result


def result_for(action, rc, report, live_root, reboot_pending=False, stderr=''):
    """The module's result for upgrade-guard's exit code `rc` and parsed JSON `report`: a dict
    with failed, changed, verdict, msg, rc, changes, findings, reboot_required and gate.

    live_root: no root option (the running system). reboot_pending: /run/reboot-required exists
    on the target. stderr: what upgrade-guard printed there (its reason, when it printed no report).
    """
    report = as_dict(report)
    if action == 'gate_status':
        return gate_status_result(rc, report, stderr)
    run = run_of(action, report)
    changes = as_dict(run.get('changes'))
    findings = findings_of(action, report)
    verdict = VERDICTS.get(rc, 'error')
    why = run.get('message') or last_line(stderr) or 'no message'
    result = dict(rc=rc, verdict=verdict, failed=rc != 0, changed=False, changes=changes, findings=findings,
                  reboot_required=False, gate=None)
    if action == 'recover':
        result['recovered'] = len(as_list(report.get('recovered')))
    if action == 'gate_open':
        result['gate'] = report.get('state') if report.get('state') in ('open', 'closed', 'unknown') else None
    elif action == 'run' and run.get('outcome') == 'gated':
        result['gate'] = 'closed'

    if rc == 0:
        result.update(_success(action, report, run, changes, live_root, reboot_pending))
    elif rc == 1:
        if action == 'check':
            msg = 'checks failed: %s' % describe_findings(findings)
        elif action == 'gate_open':
            msg = 'the checks still fail: the gate stays closed (force opens it anyway)'
            if findings:
                msg += '; ' + describe_findings(findings)
        elif run.get('outcome') == 'warned':
            msg = 'regressions found (the policy only warns: the gate stays open): %s' % describe_findings(findings)
        else:
            msg = 'gate closed: %s' % describe_findings(findings)
        result.update(msg=msg, changed=anything_changed(changes))
    elif rc == 3:
        live_reboot = live_root and not takes_effect_now(action, report)
        result.update(changed=True, reboot_required=live_reboot,
                      msg='%s%s%s' % (prefixed('rolled back', why), '; ' + describe_findings(findings) if findings else '',
                                      '; the restored root is used from the next boot' if live_reboot else ''))
    elif rc == 4:
        result.update(msg=prefixed('refused', why))
    elif rc == 2:
        result.update(msg='usage or policy error: %s' % (last_line(stderr) or why))
    elif rc == 5:
        # The run's message says so itself: "`apt-get ...` (exited 100) failed; the checks found no regression: ..."
        result.update(changed=anything_changed(changes),
                      msg='command failed: %s' % why if run.get('message') else
                      'the command failed and the checks found no regression; nothing was rolled back: %s' % why)
    else:
        result.update(msg='upgrade-guard exited with %s: %s' % (rc, last_line(stderr) or why))
    return result


def _success(action, report, run, changes, live_root, reboot_pending):
    """The changed, msg and reboot_required of exit code 0."""
    if action == 'run':
        count = package_count(changes)
        msg = 'passed: run %s changed %d package%s' % (run.get('run', '?'), count, '' if count == 1 else 's')
        if reboot_pending:
            msg += '; a reboot is required'
        return dict(changed=anything_changed(changes), reboot_required=bool(reboot_pending), msg=msg)
    if action == 'check':
        return dict(changed=False, reboot_required=bool(reboot_pending), msg='checks passed: no blocking finding')
    if action == 'recover':
        recovered = as_list(report.get('recovered'))
        if not recovered:
            return dict(changed=False, msg='nothing to recover: no interrupted run or rollback')
        return dict(changed=True, reboot_required=bool(reboot_pending),
                    msg='recovered %d: run %s %s' % (len(recovered), run.get('run', '?'), run.get('outcome', '?')))
    if action == 'rollback':
        later = live_root and not takes_effect_now(action, report)
        return dict(verdict='rolled_back', changed=True, reboot_required=later,
                    msg='rolled back to %s%s' % (report.get('snapshot', '?'),
                                                 '; the restored root is used from the next boot' if later else ''))
    if action == 'baseline_accept':
        changed = bool(report.get('newly_accepted') or report.get('dropped') or not report.get('previous_baseline'))
        return dict(changed=changed, msg='baseline accepted: %s findings (%s newly accepted, %s dropped)' % (
            report.get('accepted', '?'), report.get('newly_accepted', '?'), report.get('dropped', '?')))
    if action == 'gate_open':
        return dict(changed=True, gate=report.get('state') or 'open', msg='gate open')
    raise ValueError('unknown action %r' % (action,))


def diff_for(changes, run_id=None):
    """Ansible's diff of a run: 'package version' lines before and after, sorted by package."""
    before, after = [], []
    for kind in PACKAGE_KINDS + ('state_changed',):
        for change in as_list(changes.get(kind)):
            if not isinstance(change, dict):
                continue
            package = change.get('package', '?')
            if kind != 'installed' and change.get('before'):
                before.append('%s %s\n' % (package, change['before']))
            if kind != 'removed' and change.get('after'):
                after.append('%s %s%s\n' % (package, change['after'], ' (state changed)' if kind == 'state_changed' else ''))
    label = 'run %s' % run_id if run_id is not None else 'the run'
    return dict(before=''.join(sorted(before)), after=''.join(sorted(after)),
                before_header='packages before %s' % label, after_header='packages after %s' % label)


def is_live_root(root):
    return not root or os.path.realpath(root) == '/'


def reboot_pending(root):
    """Whether /run/reboot-required exists on the target, under root when given."""
    return os.path.exists(os.path.join(root or '/', 'run', 'reboot-required'))


def stderr_tail(stderr):
    lines = (stderr or '').splitlines()
    if len(lines) <= STDERR_KEPT:
        return lines
    return ['... %d earlier lines left out (the run log has them all)' % (len(lines) - STDERR_KEPT)] + lines[-STDERR_KEPT:]


def empty_result(action):
    """The keys every result has, for a result where upgrade-guard did not run or said nothing usable."""
    return dict(action=action, verdict='error', report={}, changes={}, findings=[], reboot_required=False, gate=None)


def call(module, params, action):
    """Runs upgrade-guard for the action: (rc, stdout, stderr)."""
    env = {'DEBIAN_FRONTEND': 'noninteractive'} if action == 'run' else None
    return module.run_command(cli_argv(params, action), check_rc=False, environ_update=env)


def finish(module, result):
    failed = result.pop('failed')
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


def gate_open(module, params, live_root):
    """gate open prints text, not JSON: the gate's state is read before (nothing to do when it
    is open) and after it with gate status."""
    rc, out, err = call(module, params, 'gate_status')
    status, problem = parse_report(out)
    if problem is None and rc == 0:
        result = dict(empty_result('gate_open'), rc=rc, report=status, verdict='open', gate='open', changed=False,
                      failed=False, msg='the gate is open already')
        finish(module, result)
        return
    rc, out, err = call(module, params, 'gate_open')
    _rc_after, after_out, after_err = call(module, params, 'gate_status')
    status, problem = parse_report(after_out)
    if problem is not None:
        status = {}
    result = dict(empty_result('gate_open'), report=status, stdout_lines=(out or '').splitlines(),
                  stderr_lines=stderr_tail(err))
    result.update(result_for('gate_open', rc, status, live_root, stderr=err))
    finish(module, result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    action = params['action']
    problem = option_problem(params)
    if problem:
        module.fail_json(msg=problem, **empty_result(action))
    binary = params['binary']
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        module.fail_json(msg='upgrade-guard is not installed on this host: %s is not an executable file '
                             '(install the package, e.g. with the role upgrade_guard.debian.install, or set binary)' % binary,
                         **empty_result(action))
    live_root = is_live_root(params['root'])

    if module.check_mode:
        if action == 'run':
            action = 'check'
        elif action in SKIPPED_IN_CHECK_MODE:
            module.exit_json(changed=False,
                             msg='skipped in check mode: %s would change the system' % action,
                             **dict(empty_result(action), verdict='skipped'))
    if action == 'gate_open':
        gate_open(module, params, live_root)
        return

    rc, out, err = call(module, params, action)
    report, problem = parse_report(out)
    if problem is not None:
        module.fail_json(msg=problem, rc=rc, stderr_lines=stderr_tail(err), **empty_result(action))
    pending = reboot_pending(params['root']) if rc == 0 and action in ('run', 'check', 'recover') else False
    result = dict(action=action, report=report, stderr_lines=stderr_tail(err))
    result.update(result_for(action, rc, report, live_root, reboot_pending=pending, stderr=err))
    if module._diff and action == 'run':
        result['diff'] = diff_for(result['changes'], report.get('run'))
    finish(module, result)


if __name__ == '__main__':
    main()
