# -*- coding: utf-8 -*-
# Copyright: 2026 upgrade-guard developers
# SPDX-License-Identifier: Apache-2.0
"""The callback upgrade_guard.debian.fleet_report: hosts x upgrade-guard verdict at the end of a playbook."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: fleet_report
type: aggregate
short_description: One table of hosts and their upgrade-guard verdicts at the end, and the same as JSON
version_added: 0.1.0
author:
  - upgrade-guard developers (@upgrade-guard)
description:
  - At the end of a playbook, prints one table, C(host | verdict | detail), with a line for every
    host of its plays, alongside the normal output of the stdout callback.
  - A host's verdict comes from the last result of the module upgrade_guard.debian.upgrade_guard
    (its C(verdict)) - C(passed), C(gate closed), C(rolled back), C(refused), C(command failed),
    C(usage error), C(error), C(unknown) (a gate whose state cannot be read); a query of an open gate
    (C(action=gate_status)) and actions skipped in check mode do not count.
  - A task may set the fact C(upgrade_guard_fleet_verdict) (with ansible.builtin.set_fact), and
    C(upgrade_guard_fleet_detail), C(upgrade_guard_fleet_run), C(upgrade_guard_fleet_packages),
    as the role upgrade_guard.debian.rolling_upgrade does after the upgrade and after the trial
    boot; that verdict then counts as the module's does (run and packages not given stay those of
    the module's last result). One other than C(passed) or C(recovered) counts as a failure.
  - Otherwise C(unreachable) (the host was unreachable), C(failed) (another task failed on it, not
    ignored and not rescued), C(not reached) (in the play's hosts but no task ever ran on it, the
    line stopped before its wave), C(stopped) (tasks ran, but the play stopped before it got an
    upgrade-guard verdict), or C(ok) (tasks ran, none gave a verdict).
  - A host where C(action=recover) finished an interrupted run, and that did nothing after it, is
    C(recovered) with the recovered run's verdict, e.g. recovered (passed).
  - Precedence - unreachable, then a failing verdict, then another task's failure, then a passing
    verdict, then not reached, then stopped or ok.
  - >-
    The JSON, written when I(json_path) is set -
    C({"schema": 1, "stopped": BOOL, "hosts": {"HOST": {"verdict": "gate_closed", "detail": "...",
    "run": N, "packages": N, "failed": BOOL, "recovered": VERDICT}}}); the verdicts are the table's
    as identifiers (C(passed), C(gate_closed), C(rolled_back), C(refused), C(command_failed),
    C(unreachable), C(failed), C(not_reached), C(recovered), C(stopped), C(ok), ...), C(failed) whether the host failed in the
    play (Ansible's stats), C(run) is the upgrade-guard run id and
    C(packages) how many packages it upgraded, installed, removed or downgraded (both null without a
    run), C(recovered) the verdict of the run C(recover) finished or null, C(stopped) whether the
    line stopped (a host not reached, or Ansible stopped the play for failures, e.g. with
    C(max_fail_percentage)).
requirements:
  - Enabled in ansible.cfg (C(callbacks_enabled = upgrade_guard.debian.fleet_report)) or with
    C(ANSIBLE_CALLBACKS_ENABLED).
options:
  json_path:
    description:
      - Where to write the report as JSON (replaced at the end of each playbook). Not written when unset.
    type: path
    env:
      - name: UPGRADE_GUARD_FLEET_REPORT
    ini:
      - section: callback_fleet_report
        key: json_path
'''

import json
import os
import tempfile

from ansible.plugins.callback import CallbackBase

MODULE_NAMES = ('upgrade_guard', 'upgrade_guard.debian.upgrade_guard')
# Module verdicts that say nothing about the host's upgrade: an open gate read, a skipped action.
NO_VERDICT = ('open', 'skipped')
# The facts a role sets for a verdict of its own (upgrade_guard_fleet_verdict, ..._detail, ..._run, ..._packages).
MARKER = 'upgrade_guard_fleet_'
PASSING_MARKERS = ('passed', 'recovered')
PACKAGE_KINDS = ('upgraded', 'installed', 'removed', 'downgraded')
DETAIL_IN_TABLE = 100


def is_guard_module(task_action):
    return task_action in MODULE_NAMES or str(task_action).endswith('.upgrade_guard.debian.upgrade_guard')


def _as_dict(value):
    return value if isinstance(value, dict) else {}


def _as_list(value):
    return value if isinstance(value, list) else []


def _run_and_packages(data):
    """The run id and the number of packages changed, from a module result (None, None without a run)."""
    report = _as_dict(data.get('report'))
    if data.get('action') == 'recover':
        recovered = _as_list(report.get('recovered'))
        report = _as_dict(recovered[-1]) if recovered else {}
    run = report.get('run') if isinstance(report.get('run'), int) else None
    if run is None:
        return None, None
    changes = _as_dict(data.get('changes'))
    return run, sum(len(_as_list(changes.get(kind))) for kind in PACKAGE_KINDS)


def guard_record(task_action, data, failed):
    """What a task result says of the host's upgrade: a dict (verdict, detail, run, packages,
    failed, recovered) or None. data: the result dict; failed: the task failed."""
    if not isinstance(data, dict):
        return None
    marker = _marker(data)
    if marker is not None:
        return marker
    if not is_guard_module(task_action):
        return None
    items = [i for i in _as_list(data.get('results')) if isinstance(i, dict) and i.get('verdict')]
    if items:  # a loop: its last item
        data = items[-1]
    verdict = data.get('verdict')
    if not verdict or (verdict in NO_VERDICT and not failed):
        return None
    if data.get('action') == 'recover' and not data.get('recovered'):
        return None  # nothing was interrupted: nothing to say
    run, packages = _run_and_packages(data)
    return dict(verdict=verdict, detail=str(data.get('msg') or ''), run=run, packages=packages, failed=bool(failed),
                recovered=data.get('action') == 'recover')


def _marker(data):
    """A verdict a task set as the fact upgrade_guard_fleet_verdict (set_fact), or as a key of its result."""
    for source in (data, _as_dict(data.get('ansible_facts'))):
        verdict = source.get(MARKER + 'verdict')
        if isinstance(verdict, str) and verdict.strip():
            verdict = verdict.strip()
            return dict(verdict=verdict, detail=' '.join(str(source.get(MARKER + 'detail') or '').split()),
                        run=_count(source.get(MARKER + 'run')), packages=_count(source.get(MARKER + 'packages')),
                        failed=verdict not in PASSING_MARKERS, recovered=False, marker=True)
    return None


def _count(value):
    """A run id or count a fact holds (templated facts may be strings): an int, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def failure_message(data):
    data = _as_dict(data)
    msg = data.get('msg') or data.get('stderr') or data.get('reason') or 'failed'
    return ' '.join(str(msg).split())


class HostRecord(object):
    """What the playbook did to one host."""

    def __init__(self, name):
        self.name = name
        self.guard = None          # the last guard_record()
        self.recovered = None      # the verdict of the run recover finished
        self.failure = None        # 'task: message' of the last failure of another task
        self.unreachable = None    # its message
        self.expected = set()      # plays listing the host
        self.reached = set()       # plays in which a task ran on it

    def add_guard(self, record):
        if record.get('marker') and self.guard is not None:
            # A verdict set after the module's (the trial boot): the run's numbers stay unless given.
            for key in ('run', 'packages'):
                if record[key] is None:
                    record[key] = self.guard[key]
        self.guard = record
        if record.get('recovered'):
            self.recovered = record['verdict']


def summarize(host, stopped, failed_in_stats=None):
    """The host's line: dict(verdict, detail, run, packages, failed, recovered), e.g. verdict
    'gate_closed', or 'recovered' with recovered 'passed' (the verdict of the run recover
    finished; else None).
    stopped: the line stopped; failed_in_stats: Ansible's stats count a failure or unreachable
    for the host (None when unknown): a failure that was rescued does not count."""
    guard = host.guard or {}
    run, packages = guard.get('run'), guard.get('packages')
    other_failure = host.failure if failed_in_stats is not False else None
    after = ' (upgrade-guard said: %s)' % guard['detail'] if guard.get('detail') else ''
    if host.unreachable is not None:
        verdict, detail, failed = 'unreachable', host.unreachable + after, True
    elif guard and guard['failed']:
        verdict, detail, failed = guard['verdict'], guard['detail'], True
    elif other_failure:
        verdict, detail, failed = 'failed', other_failure + after, True
    elif guard:
        verdict, detail, failed = guard['verdict'], guard['detail'], False
    elif host.expected - host.reached:  # which makes the line stopped
        verdict, detail, failed = 'not_reached', 'the line stopped before this host\'s wave', False
    elif stopped:
        verdict, detail, failed = 'stopped', 'the line stopped before this host got an upgrade-guard verdict', False
    else:
        verdict, detail, failed = 'ok', 'no upgrade-guard verdict', False
    if guard.get('recovered') and verdict == guard.get('verdict'):
        verdict = 'recovered'
    if failed_in_stats is not None:
        failed = failed or failed_in_stats
    return dict(verdict=verdict, detail=detail, run=run, packages=packages, failed=failed,
                recovered=host.recovered or None)


def readable(line):
    """A line's verdict as people read it: 'gate closed', 'recovered (rolled back)'."""
    verdict = line['verdict'].replace('_', ' ')
    if line['verdict'] == 'recovered' and line.get('recovered'):
        verdict += ' (%s)' % line['recovered'].replace('_', ' ')
    return verdict


def render_table(lines, stopped):
    """The table as text: a header, one row per host (name order as given), and the line's state."""
    rows = [('HOST', 'VERDICT', 'DETAIL')]
    for name, line in lines:
        detail = line['detail']
        if len(detail) > DETAIL_IN_TABLE:
            detail = detail[:DETAIL_IN_TABLE - 3] + '...'
        rows.append((name, readable(line), detail))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    text = ''.join('%s | %s | %s\n' % (r[0].ljust(width[0]), r[1].ljust(width[1]), r[2]) for r in rows)
    not_reached = sum(1 for _, line in lines if line['verdict'] == 'not_reached')
    if stopped:
        text += 'the line stopped: %d host%s not reached\n' % (not_reached, '' if not_reached == 1 else 's')
    return text


def report_json(lines, stopped):
    return {'schema': 1, 'stopped': bool(stopped), 'hosts': dict((name, line) for name, line in lines)}


def write_json(path, data):
    """Writes data to path atomically (a temporary file renamed over it)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.fleet-report.', dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write('\n')
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def play_host_names(play):
    """The names of the play's hosts, --limit applied but not the serial batch in progress.
    [] when the inventory cannot be read."""
    manager = play.get_variable_manager() if hasattr(play, 'get_variable_manager') else None
    inventory = getattr(manager, '_inventory', None)
    if inventory is None:
        return []
    hosts = inventory.get_hosts(play.hosts, ignore_restrictions=True)
    return [h.get_name() if hasattr(h, 'get_name') else str(h) for h in hosts]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'upgrade_guard.debian.fleet_report'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        self._hosts = {}          # name -> HostRecord, in the order first seen
        self._play = None         # the key of the play running
        self._line_stopped = False

    def _host(self, name):
        if name not in self._hosts:
            self._hosts[name] = HostRecord(name)
        return self._hosts[name]

    def v2_playbook_on_play_start(self, play):
        # Sent once per serial batch, with a copy of the play that keeps its uuid.
        self._play = getattr(play, '_uuid', None) or id(play)
        try:
            names = play_host_names(play)
        except Exception as e:  # an inventory this cannot read: only hosts that ran are listed
            self._display.warning('fleet_report: cannot list the hosts of play %s (%s); hosts it never reached are '
                                  'not listed' % (play.get_name(), e))
            names = []
        for name in names:
            self._host(name).expected.add(self._play)

    def v2_playbook_on_no_hosts_remaining(self):
        self._line_stopped = True

    def _record(self, result, failed=False, ignore_errors=False):
        host = self._host(result._host.get_name())
        host.reached.add(self._play)
        task = result._task
        action = getattr(task, 'resolved_action', None) or getattr(task, 'action', '')
        record = guard_record(action, result._result, failed)
        if record is not None:
            host.add_guard(record)
        elif failed and not ignore_errors:
            host.failure = '%s: %s' % (task.get_name(), failure_message(result._result))

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_skipped(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True, ignore_errors=ignore_errors)

    def v2_runner_on_unreachable(self, result):
        host = self._host(result._host.get_name())
        host.reached.add(self._play)
        host.unreachable = failure_message(result._result)

    def summary(self, stats=None):
        """[(host, line)] and whether the line stopped."""
        stopped = self._line_stopped or any(h.expected - h.reached for h in self._hosts.values())
        lines = []
        for name, host in self._hosts.items():
            failed_in_stats = None
            if stats is not None and name in getattr(stats, 'processed', {}):
                s = stats.summarize(name)
                failed_in_stats = bool(s.get('failures') or s.get('unreachable'))
            lines.append((name, summarize(host, stopped, failed_in_stats)))
        return lines, stopped

    def v2_playbook_on_stats(self, stats):
        lines, stopped = self.summary(stats)
        self._display.banner('UPGRADE-GUARD FLEET REPORT')
        self._display.display(render_table(lines, stopped).rstrip('\n'))
        path = self.get_option('json_path')
        if path:
            try:
                write_json(path, report_json(lines, stopped))
            except (IOError, OSError) as e:
                self._display.warning('fleet_report: cannot write %s: %s' % (path, e))
