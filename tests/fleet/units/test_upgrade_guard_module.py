"""Unit tests of the module upgrade_guard.debian.upgrade_guard: the exit-code mapping as pure
functions, and main() through AnsibleModule with a fake run_command (no play, no upgrade-guard)."""

import json
import os
import shutil
import stat
import tempfile
import unittest
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from collection import load_plugin

ug = load_plugin('modules', 'upgrade_guard')

# Findings as upgrade-guard's checks/report.cc prints them: one new and blocking, one known.
CURL_MISSING = {'check': 'package-files', 'severity': 'block', 'path': '/usr/bin/curl', 'package': 'curl',
                'message': '/usr/bin/curl of package curl is missing', 'known': False, 'blocking': True,
                'id': 'missing', 'hint': 'apt-get install --reinstall curl'}
KNOWN_WARN = {'check': 'symlinks', 'severity': 'block', 'path': '/bin', 'message': '/bin is missing',
              'known': True, 'blocking': False}
CHANGES = {'upgraded': [{'package': 'curl', 'before': '7.88.1-10', 'after': '7.88.1-10+deb12u5'},
                        {'package': 'libc6:amd64', 'before': '2.36-9', 'after': '2.36-9+deb12u4'}],
           'installed': [{'package': 'linux-image-6.1.0-21-amd64', 'before': '', 'after': '6.1.90-1'}],
           'removed': [{'package': 'oldlib', 'before': '1.0', 'after': ''}],
           'downgraded': [], 'state_changed': []}
NO_CHANGES = {'upgraded': [], 'installed': [], 'removed': [], 'downgraded': [], 'state_changed': []}


def run_json(outcome, exit_code, changes=None, findings=None, rollback=None, message='', run=12):
    """A report as guard/cli/render.cc's render_run_json prints it."""
    j = {'schema': 1, 'run': run, 'outcome': outcome, 'exit_code': exit_code, 'command': ['apt-get', '-y', 'dist-upgrade'],
         'command_status': 'exited 0', 'snapshot': '@ug-12-pre', 'log': '/var/log/upgrade-guard/run-12.log',
         'message': message, 'notes': [], 'changes': changes if changes is not None else NO_CHANGES}
    if findings is not None:
        j['post'] = {'schema': 1, 'root': '/', 'verdict': 'fail' if findings else 'pass', 'blocking': 1,
                     'checks': [], 'findings': findings}
    if rollback is not None:
        j['rollback'] = rollback
    return j


def check_json(findings):
    return {'schema': 1, 'root': '/', 'verdict': 'fail' if any(f['blocking'] for f in findings) else 'pass',
            'baseline_compared': True, 'blocking': 1, 'checks': [], 'findings': findings}


LIVE_ROLLBACK = {'snapshot': '@ug-12-pre', 'method': 'default-subvolume', 'takes_effect_now': False,
                 'broken': '@ug-12-broken', 'preserved': [], 'nested': []}


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


class FakeCli(object):
    """Stands for AnsibleModule.run_command: records each argv and answers with the next reply."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, args, check_rc=False, environ_update=None, **kwargs):
        self.calls.append((list(args), environ_update))
        if not self.replies:
            raise AssertionError('upgrade-guard called once more than expected: %s' % (args,))
        rc, out = self.replies.pop(0)[:2]
        return rc, json.dumps(out) if isinstance(out, dict) else out, 'upgrade-guard: stderr line\n'

    def subcommands(self):
        return [argv[argv.index('--json') + 1:] for argv, _env in self.calls]


class ModuleTest(unittest.TestCase):
    """main() through AnsibleModule, its exit_json/fail_json caught, run_command faked."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ug-module-test.')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.binary = os.path.join(self.tmp, 'upgrade-guard')
        with open(self.binary, 'w') as f:
            f.write('#!/bin/sh\nexit 99\n')  # never run: run_command is faked
        os.chmod(self.binary, stat.S_IRWXU)

    def main(self, args, cli, check_mode=False, diff=False):
        """(result, failed) of main() with these module arguments."""
        args = dict(args, binary=args.get('binary', self.binary), _ansible_check_mode=check_mode, _ansible_diff=diff)
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        self.addCleanup(setattr, basic, '_ANSIBLE_ARGS', None)

        def exit_json(module, **kwargs):
            raise ExitJson(kwargs)

        def fail_json(module, **kwargs):
            raise FailJson(kwargs)

        with mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json,
                                 run_command=lambda module, *a, **k: cli(*a, **k)):
            try:
                ug.main()
            except ExitJson as e:
                return e.args[0], False
            except FailJson as e:
                return e.args[0], True
        self.fail('main() returned without exit_json or fail_json')

    def test_run_passed_with_changes(self):
        cli = FakeCli((0, run_json('passed', 0, CHANGES, findings=[KNOWN_WARN], message='run 12 passed')))
        result, failed = self.main({'action': 'run'}, cli)
        self.assertFalse(failed)
        argv, env = cli.calls[0]
        self.assertEqual(argv, [self.binary, '--json', 'run', '--', 'apt-get', '-y', 'dist-upgrade'])
        self.assertEqual(env, {'DEBIAN_FRONTEND': 'noninteractive'})
        self.assertTrue(result['changed'])
        self.assertEqual(result['verdict'], 'passed')
        self.assertEqual(result['rc'], 0)
        self.assertEqual(result['action'], 'run')
        self.assertEqual(result['report']['run'], 12)
        self.assertEqual(result['changes'], CHANGES)
        self.assertEqual(result['findings'], [])  # the known finding does not block
        self.assertEqual(result['stderr_lines'], ['upgrade-guard: stderr line'])
        self.assertNotIn('diff', result)  # not in diff mode

    def test_run_options_become_global_flags(self):
        cli = FakeCli((0, run_json('passed', 0)))
        self.main({'action': 'run', 'command': ['apt-get', 'install', '-y', 'nginx'], 'root': self.tmp,
                   'policy': '/etc/p.toml', 'state_dir': '/var/lib/x'}, cli)
        self.assertEqual(cli.subcommands()[0], ['--root', self.tmp, '--policy', '/etc/p.toml', '--state-dir', '/var/lib/x',
                                                'run', '--', 'apt-get', 'install', '-y', 'nginx'])

    def test_run_reboot_required_read_under_root(self):
        os.makedirs(os.path.join(self.tmp, 'run'))
        result, _ = self.main({'action': 'run', 'root': self.tmp}, FakeCli((0, run_json('passed', 0, CHANGES))))
        self.assertFalse(result['reboot_required'])
        open(os.path.join(self.tmp, 'run', 'reboot-required'), 'w').close()
        result, _ = self.main({'action': 'run', 'root': self.tmp}, FakeCli((0, run_json('passed', 0, CHANGES))))
        self.assertTrue(result['reboot_required'])
        self.assertIn('a reboot is required', result['msg'])

    def test_run_in_check_mode_runs_check(self):
        cli = FakeCli((0, check_json([KNOWN_WARN])))
        result, failed = self.main({'action': 'run', 'checks': ['libraries', 'services']}, cli, check_mode=True)
        self.assertFalse(failed)
        self.assertEqual(cli.subcommands(), [['check', '--checks', 'libraries,services', '--baseline', 'compare']])
        self.assertIsNone(cli.calls[0][1])  # no DEBIAN_FRONTEND: nothing runs apt
        self.assertFalse(result['changed'])
        self.assertEqual(result['action'], 'check')
        self.assertEqual(result['verdict'], 'passed')

    def test_run_in_check_mode_with_regressions(self):
        cli = FakeCli((1, check_json([CURL_MISSING, KNOWN_WARN])))
        result, failed = self.main({'action': 'run'}, cli, check_mode=True)
        self.assertTrue(failed)
        self.assertFalse(result['changed'])
        self.assertEqual(result['verdict'], 'gate_closed')
        self.assertEqual(result['findings'], [CURL_MISSING])

    def test_check_without_baseline(self):
        cli = FakeCli((0, check_json([])))
        self.main({'action': 'check', 'compare_baseline': False}, cli)
        self.assertEqual(cli.subcommands(), [['check']])

    def test_mutating_actions_skipped_in_check_mode(self):
        for action in ('gate_open', 'baseline_accept', 'rollback', 'recover'):
            cli = FakeCli()
            result, failed = self.main({'action': action}, cli, check_mode=True)
            self.assertFalse(failed, action)
            self.assertEqual(cli.calls, [], action)
            self.assertFalse(result['changed'], action)
            self.assertEqual(result['verdict'], 'skipped', action)
            self.assertEqual(result['report'], {}, action)
            self.assertIn('skipped in check mode', result['msg'])

    def test_diff_mode(self):
        cli = FakeCli((0, run_json('passed', 0, CHANGES)))
        result, _ = self.main({'action': 'run'}, cli, diff=True)
        self.assertEqual(result['diff']['before'], 'curl 7.88.1-10\nlibc6:amd64 2.36-9\noldlib 1.0\n')
        self.assertEqual(result['diff']['after'],
                         'curl 7.88.1-10+deb12u5\nlibc6:amd64 2.36-9+deb12u4\nlinux-image-6.1.0-21-amd64 6.1.90-1\n')
        self.assertEqual(result['diff']['before_header'], 'packages before run 12')

    def test_diff_mode_in_check_mode_has_no_diff(self):
        result, _ = self.main({'action': 'run'}, FakeCli((0, check_json([]))), check_mode=True, diff=True)
        self.assertNotIn('diff', result)

    def test_output_that_is_not_json_fails_with_a_message(self):
        for out in ('upgrade-guard run 12: passed\n', '{"schema": 1', '[1, 2]'):
            result, failed = self.main({'action': 'run'}, FakeCli((0, out)))
            self.assertTrue(failed, out)
            self.assertIn('not', result['msg'])
            self.assertIn('JSON', result['msg'])
            self.assertEqual(result['verdict'], 'error')
            self.assertEqual(result['rc'], 0)

    def test_empty_output_is_an_empty_report(self):
        # Refused before any report (not root): the reason is on stderr.
        result, failed = self.main({'action': 'run'}, FakeCli((4, '')))
        self.assertTrue(failed)
        self.assertEqual(result['verdict'], 'refused')
        self.assertEqual(result['report'], {})
        self.assertEqual(result['msg'], 'refused: upgrade-guard: stderr line')

    def test_missing_binary(self):
        cli = FakeCli()
        result, failed = self.main({'action': 'run', 'binary': os.path.join(self.tmp, 'nowhere', 'upgrade-guard')}, cli)
        self.assertTrue(failed)
        self.assertEqual(cli.calls, [])
        self.assertIn('not installed', result['msg'])
        self.assertEqual(result['verdict'], 'error')

    def test_binary_not_executable(self):
        os.chmod(self.binary, stat.S_IRUSR)
        result, failed = self.main({'action': 'gate_status'}, FakeCli())
        self.assertTrue(failed)
        self.assertIn('not an executable file', result['msg'])

    def test_option_for_another_action(self):
        result, failed = self.main({'action': 'run', 'force': True}, FakeCli())
        self.assertTrue(failed)
        self.assertEqual(result['msg'], 'force is only for action gate_open, not run')

    def test_gate_status_closed_does_not_fail(self):
        status = {'schema': 1, 'closed': True, 'state': 'closed', 'reboot_safe': False, 'reason': 'run 12: regressions',
                  'run': 12, 'since_unix': 1700000000, 'changed_by': 'run 12',
                  'findings': [{'check': 'libraries', 'path': '/usr/bin/curl', 'package': 'curl', 'message': 'needs x'}]}
        cli = FakeCli((1, status))
        result, failed = self.main({'action': 'gate_status'}, cli)
        self.assertFalse(failed)
        self.assertEqual(cli.subcommands(), [['gate', 'status']])
        self.assertEqual(result['gate'], 'closed')
        self.assertEqual(result['verdict'], 'gate_closed')
        self.assertEqual(len(result['findings']), 1)
        self.assertIn('libraries /usr/bin/curl: needs x [curl]', result['msg'])

    def test_gate_status_unknown_does_not_fail(self):
        status = {'schema': 1, 'closed': None, 'state': 'unknown', 'reboot_safe': False, 'error': 'cannot read state.db'}
        result, failed = self.main({'action': 'gate_status'}, FakeCli((4, status)))
        self.assertFalse(failed)
        self.assertEqual(result['gate'], 'unknown')
        self.assertEqual(result['verdict'], 'unknown')
        self.assertIn('cannot read state.db', result['msg'])

    def test_gate_open_when_open_does_nothing(self):
        cli = FakeCli((0, {'schema': 1, 'closed': False, 'state': 'open', 'reboot_safe': True}))
        result, failed = self.main({'action': 'gate_open'}, cli)
        self.assertFalse(failed)
        self.assertFalse(result['changed'])
        self.assertEqual(cli.subcommands(), [['gate', 'status']])

    def test_gate_open(self):
        closed = {'schema': 1, 'closed': True, 'state': 'closed', 'reboot_safe': False, 'reason': 'by hand', 'findings': []}
        opened = {'schema': 1, 'closed': False, 'state': 'open', 'reboot_safe': True}
        cli = FakeCli((1, closed), (0, 'gate open (reviewed)\nrecorded\n'), (0, opened))
        result, failed = self.main({'action': 'gate_open', 'force': True, 'reason': 'reviewed'}, cli)
        self.assertFalse(failed)
        self.assertTrue(result['changed'])
        self.assertEqual(result['gate'], 'open')
        self.assertEqual(result['stdout_lines'], ['gate open (reviewed)', 'recorded'])
        self.assertEqual(cli.subcommands(), [['gate', 'status'], ['gate', 'open', '--force', '--reason', 'reviewed'],
                                             ['gate', 'status']])

    def test_gate_open_checks_still_fail(self):
        closed = {'schema': 1, 'closed': True, 'state': 'closed', 'reboot_safe': False, 'reason': 'audit',
                  'findings': [{'check': 'libraries', 'path': '/usr/bin/curl', 'package': 'curl', 'message': 'needs x'}]}
        cli = FakeCli((1, closed), (1, 'the checks still fail: the gate stays closed\n'), (1, closed))
        result, failed = self.main({'action': 'gate_open'}, cli)
        self.assertTrue(failed)
        self.assertFalse(result['changed'])
        self.assertEqual(result['gate'], 'closed')
        self.assertEqual(result['verdict'], 'gate_closed')
        self.assertIn('the gate stays closed', result['msg'])

    def test_rollback_argv_and_live_reboot(self):
        out = dict(LIVE_ROLLBACK, schema=1, run=13, notes=[])
        cli = FakeCli((0, out))
        result, failed = self.main({'action': 'rollback', 'rollback_to': '@ug-12-pre'}, cli)
        self.assertFalse(failed)
        self.assertEqual(cli.subcommands(), [['rollback', '--to', '@ug-12-pre']])
        self.assertTrue(result['changed'])
        self.assertTrue(result['reboot_required'])
        self.assertEqual(result['verdict'], 'rolled_back')

    def test_recover_abandon(self):
        cli = FakeCli((0, {'schema': 1, 'recovered': []}))
        result, failed = self.main({'action': 'recover', 'abandon': True}, cli)
        self.assertFalse(failed)
        self.assertEqual(cli.subcommands(), [['recover', '--abandon']])
        self.assertFalse(result['changed'])
        self.assertEqual(result['recovered'], 0)

    def test_baseline_accept(self):
        cli = FakeCli((0, {'schema': 1, 'root': '/', 'accepted': 3, 'newly_accepted': 0, 'dropped': 0,
                           'previous_baseline': True}))
        result, failed = self.main({'action': 'baseline_accept'}, cli)
        self.assertFalse(failed)
        self.assertEqual(cli.subcommands(), [['baseline', 'accept']])
        self.assertFalse(result['changed'])  # the same findings as before: nothing changed


class ResultForTest(unittest.TestCase):
    """result_for(action, rc, report, live_root): every exit code of every action."""

    def test_run_0_with_changes(self):
        r = ug.result_for('run', 0, run_json('passed', 0, CHANGES), live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['reboot_required']), ('passed', False, True, False))
        self.assertEqual(r['msg'], 'passed: run 12 changed 4 packages')

    def test_run_0_without_changes(self):
        r = ug.result_for('run', 0, run_json('passed', 0), live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed']), ('passed', False, False))
        self.assertEqual(r['changes'], NO_CHANGES)

    def test_run_0_state_change_only_is_a_change(self):
        changes = dict(NO_CHANGES, state_changed=[{'package': 'x', 'before': '1', 'after': '1'}])
        self.assertTrue(ug.result_for('run', 0, run_json('passed', 0, changes), live_root=True)['changed'])

    def test_run_0_reboot_pending(self):
        r = ug.result_for('run', 0, run_json('passed', 0, CHANGES), live_root=True, reboot_pending=True)
        self.assertTrue(r['reboot_required'])

    def test_run_1_gate_closed(self):
        report = run_json('gated', 1, CHANGES, findings=[CURL_MISSING, KNOWN_WARN], message='regressions: gate closed')
        r = ug.result_for('run', 1, report, live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['gate']), ('gate_closed', True, True, 'closed'))
        self.assertEqual(r['findings'], [CURL_MISSING])
        self.assertEqual(r['msg'], 'gate closed: 1 blocking finding: package-files /usr/bin/curl: '
                                   '/usr/bin/curl of package curl is missing [curl]')
        self.assertFalse(r['reboot_required'])

    def test_run_1_many_findings_are_shortened(self):
        findings = [dict(CURL_MISSING, path='/usr/bin/f%d' % i) for i in range(5)]
        r = ug.result_for('run', 1, run_json('gated', 1, findings=findings), live_root=True)
        self.assertTrue(r['msg'].startswith('gate closed: 5 blocking findings: '))
        self.assertTrue(r['msg'].endswith('; and 2 more'))

    def test_run_1_warned(self):
        r = ug.result_for('run', 1, run_json('warned', 1, findings=[CURL_MISSING]), live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['gate']), ('gate_closed', True, None))
        self.assertIn('the gate stays open', r['msg'])

    def test_run_2_usage(self):
        r = ug.result_for('run', 2, {}, live_root=True,
                          stderr='upgrade-guard: /etc/upgrade-guard/policy.toml:3:1: unknown key x\n')
        self.assertEqual((r['verdict'], r['failed'], r['changed']), ('usage_error', True, False))
        self.assertEqual(r['msg'], 'usage or policy error: upgrade-guard: /etc/upgrade-guard/policy.toml:3:1: unknown key x')

    def test_run_3_live_root_needs_a_reboot(self):
        report = run_json('rolled-back', 3, CHANGES, findings=[CURL_MISSING], rollback=LIVE_ROLLBACK,
                          message='rolled back to @ug-12-pre (default-subvolume)')
        r = ug.result_for('run', 3, report, live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['reboot_required']), ('rolled_back', True, True, True))
        self.assertTrue(r['msg'].startswith('rolled back to @ug-12-pre (default-subvolume); 1 blocking finding: '))
        self.assertTrue(r['msg'].endswith('the restored root is used from the next boot'))

    def test_run_3_other_root_takes_effect_now(self):
        report = run_json('rolled-back', 3, CHANGES, findings=[CURL_MISSING],
                          rollback=dict(LIVE_ROLLBACK, takes_effect_now=True), message='rolled back to @ug-12-pre')
        r = ug.result_for('run', 3, report, live_root=False)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['reboot_required']), ('rolled_back', True, True, False))

    def test_run_4_refused(self):
        r = ug.result_for('run', 4, run_json('refused', 4, message='refused: another upgrade-guard holds the lock'),
                          live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed']), ('refused', True, False))
        self.assertEqual(r['msg'], 'refused: another upgrade-guard holds the lock')

    def test_run_4_refused_message_gets_a_prefix(self):
        r = ug.result_for('run', 4, run_json('failed', 4, message='run 12 stopped: the state database failed'),
                          live_root=True)
        self.assertEqual(r['msg'], 'refused: run 12 stopped: the state database failed')

    def test_run_5_command_failed(self):
        message = ('`apt-get -y dist-upgrade` (exited 100) failed; the checks found no regression: nothing was rolled '
                   'back and nothing is marked known-good')
        r = ug.result_for('run', 5, run_json('command-failed', 5, message=message), live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed']), ('command_failed', True, False))
        self.assertEqual(r['msg'], 'command failed: ' + message)
        r = ug.result_for('run', 5, {}, live_root=True, stderr='upgrade-guard: killed\n')
        self.assertEqual(r['msg'], 'the command failed and the checks found no regression; nothing was rolled back: '
                                   'upgrade-guard: killed')
        r = ug.result_for('run', 5, run_json('command-failed', 5, CHANGES), live_root=True)
        self.assertTrue(r['changed'])  # what the command changed before it failed stays

    def test_other_exit_codes_are_errors(self):
        for rc in (6, 127, -9, 255):
            r = ug.result_for('run', rc, {}, live_root=True, stderr='killed\n')
            self.assertEqual((r['verdict'], r['failed'], r['changed']), ('error', True, False), rc)
            self.assertEqual(r['msg'], 'upgrade-guard exited with %d: killed' % rc)

    def test_check(self):
        r = ug.result_for('check', 0, check_json([KNOWN_WARN]), live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['findings']), ('passed', False, False, []))
        r = ug.result_for('check', 1, check_json([CURL_MISSING, KNOWN_WARN]), live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['findings']), ('gate_closed', True, False, [CURL_MISSING]))
        self.assertTrue(r['msg'].startswith('checks failed: 1 blocking finding'))
        self.assertEqual(r['changes'], {})

    def test_gate_status(self):
        r = ug.result_for('gate_status', 0, {'schema': 1, 'state': 'open', 'closed': False}, live_root=True)
        self.assertEqual((r['verdict'], r['gate'], r['failed'], r['changed']), ('open', 'open', False, False))
        r = ug.result_for('gate_status', 1, {'schema': 1, 'state': 'closed', 'reason': 'r'}, live_root=True)
        self.assertEqual((r['verdict'], r['gate'], r['failed']), ('gate_closed', 'closed', False))
        r = ug.result_for('gate_status', 4, {}, live_root=True, stderr='upgrade-guard: not root\n')
        self.assertEqual((r['verdict'], r['gate'], r['failed']), ('unknown', 'unknown', False))
        self.assertEqual(r['msg'], 'gate state unknown (counts as closed): upgrade-guard: not root')
        r = ug.result_for('gate_status', 2, {}, live_root=True, stderr='bad option\n')
        self.assertEqual((r['verdict'], r['gate'], r['failed']), ('usage_error', 'unknown', True))
        r = ug.result_for('gate_status', 9, {}, live_root=True)
        self.assertEqual((r['verdict'], r['gate'], r['failed']), ('error', 'unknown', True))

    def test_mutating_actions_change_on_0_and_fail_otherwise(self):
        reports = {'gate_open': {'state': 'open'}, 'rollback': dict(LIVE_ROLLBACK, run=13),
                   'baseline_accept': {'accepted': 2, 'newly_accepted': 1, 'dropped': 0, 'previous_baseline': True}}
        for action, report in reports.items():
            r = ug.result_for(action, 0, report, live_root=False)
            self.assertEqual((r['failed'], r['changed']), (False, True), action)
            for rc, verdict in ((1, 'gate_closed'), (2, 'usage_error'), (4, 'refused'), (42, 'error')):
                r = ug.result_for(action, rc, {}, live_root=False)
                self.assertEqual((r['failed'], r['verdict']), (True, verdict), (action, rc))
                self.assertFalse(r['changed'], (action, rc))

    def test_baseline_accept_first_time_is_a_change(self):
        r = ug.result_for('baseline_accept', 0, {'accepted': 0, 'newly_accepted': 0, 'dropped': 0,
                                                 'previous_baseline': False}, live_root=True)
        self.assertTrue(r['changed'])

    def test_rollback_of_another_root_needs_no_reboot(self):
        r = ug.result_for('rollback', 0, dict(LIVE_ROLLBACK, takes_effect_now=True), live_root=False)
        self.assertEqual((r['verdict'], r['reboot_required']), ('rolled_back', False))
        self.assertEqual(r['msg'], 'rolled back to @ug-12-pre')

    def test_recover(self):
        r = ug.result_for('recover', 0, {'schema': 1, 'recovered': []}, live_root=True, reboot_pending=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['recovered'], r['reboot_required']),
                         ('passed', False, False, 0, False))
        report = {'schema': 1, 'recovered': [run_json('passed', 0, CHANGES, findings=[], run=7)]}
        r = ug.result_for('recover', 0, report, live_root=True, reboot_pending=True)
        self.assertEqual((r['verdict'], r['failed'], r['changed'], r['recovered'], r['reboot_required']),
                         ('passed', False, True, 1, True))
        self.assertEqual(r['changes'], CHANGES)
        self.assertEqual(r['msg'], 'recovered 1: run 7 passed')
        report = {'schema': 1, 'recovered': [run_json('rolled-back', 3, CHANGES, findings=[CURL_MISSING],
                                                      rollback=LIVE_ROLLBACK, message='rolled back to @ug-7-pre', run=7)]}
        r = ug.result_for('recover', 3, report, live_root=True)
        self.assertEqual((r['verdict'], r['failed'], r['reboot_required'], r['findings']),
                         ('rolled_back', True, True, [CURL_MISSING]))


class HelpersTest(unittest.TestCase):

    def params(self, **kw):
        p = dict((k, None) for k in ug.ARGUMENT_SPEC)
        p.update(binary='/usr/sbin/upgrade-guard', command=['apt-get', '-y', 'dist-upgrade'], force=False,
                 abandon=False, compare_baseline=True)
        p.update(kw)
        return p

    def test_cli_argv(self):
        def tail(action):
            return ug.cli_argv(self.params(action=action), action)[2:]

        self.assertEqual(tail('gate_status'), ['gate', 'status'])
        self.assertEqual(tail('gate_open'), ['gate', 'open'])
        self.assertEqual(tail('baseline_accept'), ['baseline', 'accept'])
        self.assertEqual(tail('rollback'), ['rollback'])
        self.assertEqual(tail('recover'), ['recover'])
        self.assertEqual(tail('check'), ['check', '--baseline', 'compare'])
        self.assertEqual(ug.cli_argv(self.params(action='run'), 'run')[:2], ['/usr/sbin/upgrade-guard', '--json'])

    def test_parse_report(self):
        self.assertEqual(ug.parse_report(''), ({}, None))
        self.assertEqual(ug.parse_report(' \n'), ({}, None))
        self.assertEqual(ug.parse_report('{"schema": 1}\n'), ({'schema': 1}, None))
        report, why = ug.parse_report('gate open (checks pass)\n')
        self.assertIsNone(report)
        self.assertIn('not JSON', why)
        self.assertIn('gate open (checks pass)', why)

    def test_long_stderr_is_cut(self):
        lines = ug.stderr_tail('\n'.join('line %d' % i for i in range(1000)))
        self.assertEqual(len(lines), ug.STDERR_KEPT + 1)
        self.assertEqual(lines[-1], 'line 999')
        self.assertIn('800 earlier lines', lines[0])

    def test_diff_of_state_changes(self):
        d = ug.diff_for(dict(NO_CHANGES, state_changed=[{'package': 'x', 'before': '1', 'after': '1'}]))
        self.assertEqual((d['before'], d['after']), ('x 1\n', 'x 1 (state changed)\n'))
        self.assertEqual(d['after_header'], 'packages after the run')


if __name__ == '__main__':
    unittest.main()
