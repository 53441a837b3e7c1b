"""Unit tests of the callback upgrade_guard.debian.fleet_report, fed synthetic events: fake hosts,
tasks, results, plays and stats in the shapes Ansible's TaskResult and PlayContext give it."""

import json
import os
import shutil
import tempfile
import unittest

from collection import load_plugin

fr = load_plugin('callback', 'fleet_report')

MODULE = 'upgrade_guard.debian.upgrade_guard'
THREE_PACKAGES = {'upgraded': [{'package': 'a', 'before': '1', 'after': '2'}, {'package': 'b', 'before': '1', 'after': '2'}],
                  'installed': [{'package': 'c', 'before': '', 'after': '1'}], 'removed': [], 'downgraded': [],
                  'state_changed': [{'package': 'd', 'before': '1', 'after': '1'}]}


class FakeHost(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class FakeTask(object):
    def __init__(self, name, action):
        self.name = name
        self.action = action
        self.resolved_action = action

    def get_name(self):
        return self.name


class FakeResult(object):
    """What Ansible passes to v2_runner_on_*: a TaskResult's _host, _task and _result."""

    def __init__(self, host, task, result):
        self._host = FakeHost(host)
        self._task = task
        self._result = result


class FakeInventory(object):
    def __init__(self, names):
        self.names = names
        self.asked = []

    def get_hosts(self, pattern, ignore_restrictions=False):
        self.asked.append((pattern, ignore_restrictions))
        return [FakeHost(n) for n in self.names]


class FakeVariableManager(object):
    def __init__(self, inventory):
        self._inventory = inventory


class FakePlay(object):
    def __init__(self, names, uuid='play-1', hosts='fleet'):
        self.hosts = hosts
        self._uuid = uuid
        self.inventory = FakeInventory(names)

    def get_variable_manager(self):
        return FakeVariableManager(self.inventory)

    def get_name(self):
        return 'rolling upgrade'


class FakeStats(object):
    def __init__(self, **per_host):
        self.processed = dict((h, 1) for h in per_host)
        self.per_host = per_host

    def summarize(self, host):
        return self.per_host[host]


class FakeDisplay(object):
    verbosity = 0

    def __init__(self):
        self.lines = []
        self.warnings = []

    def display(self, msg, **kwargs):
        self.lines.append(msg)

    def banner(self, msg, **kwargs):
        self.lines.append('== %s' % msg)

    def warning(self, msg, **kwargs):
        self.warnings.append(msg)


TASKS = {
    'setup': FakeTask('Gathering Facts', 'ansible.builtin.gather_facts'),
    'recover': FakeTask('Recover an interrupted run', MODULE),
    'gate': FakeTask('The gate is open', MODULE),
    'apt': FakeTask('apt update', 'ansible.builtin.apt'),
    'run': FakeTask('Guarded upgrade', MODULE),
    'reboot': FakeTask('Reboot', 'ansible.builtin.reboot'),
    'trial': FakeTask('Record the trial boot', 'ansible.builtin.set_fact'),
    'assert': FakeTask('The trial boot was blessed', 'ansible.builtin.assert'),
}


def module_result(action, verdict, msg, run=None, changes=None, **extra):
    report = {'schema': 1}
    if run is not None:
        report.update(run=run, outcome=verdict)
    result = {'action': action, 'verdict': verdict, 'msg': msg, 'report': report, 'changes': changes or {},
              'findings': [], 'reboot_required': False, 'gate': None, 'changed': bool(changes)}
    result.update(extra)
    return result


class Fleet(object):
    """A callback and helpers to feed it one host's events."""

    def __init__(self, *plays):
        self.display = FakeDisplay()
        self.cb = fr.CallbackModule(display=self.display)
        self.cb._plugin_options = {'json_path': None}
        self.plays = plays

    def play(self, play):
        self.cb.v2_playbook_on_play_start(play)

    def ok(self, host, task, result=None):
        self.cb.v2_runner_on_ok(FakeResult(host, TASKS[task], result or {'changed': False}))

    def failed(self, host, task, result, ignore_errors=False):
        self.cb.v2_runner_on_failed(FakeResult(host, TASKS[task], dict(result, failed=True)), ignore_errors=ignore_errors)

    def unreachable(self, host, task, msg):
        self.cb.v2_runner_on_unreachable(FakeResult(host, TASKS[task], {'unreachable': True, 'msg': msg}))

    def upgrade(self, host, verdict, msg, failed, run=12, changes=None, reboot=False):
        self.ok(host, 'setup')
        self.ok(host, 'gate', module_result('gate_status', 'open', 'gate open', gate='open'))
        self.ok(host, 'apt', {'changed': False})
        result = module_result('run', verdict, msg, run=run, changes=changes)
        if failed:
            self.failed(host, 'run', result)
        else:
            self.ok(host, 'run', result)

    def finish(self, stats=None, json_path=None):
        self.cb._plugin_options['json_path'] = json_path
        self.cb.v2_playbook_on_stats(stats)
        return self.display.lines


class StopTheLineTest(unittest.TestCase):
    """Waves [1, 3, rest]: canary passed; the second wave has every bad outcome; the rest never ran."""

    HOSTS = ['canary', 'gated', 'rolled', 'refused', 'gone', 'broken', 'recovered', 'sibling', 'later1', 'later2']

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ug-fleet-report-test.')
        self.addCleanup(shutil.rmtree, self.tmp)
        f = self.fleet = Fleet()
        # Batch 1 (each batch starts the play again, with a copy keeping the uuid).
        f.play(FakePlay(self.HOSTS))
        f.upgrade('canary', 'passed', 'passed: run 12 changed 3 packages', failed=False, run=12, changes=THREE_PACKAGES)
        f.ok('canary', 'reboot', {'changed': True, 'rebooted': True})
        f.ok('canary', 'trial', {'ansible_facts': {'upgrade_guard_fleet_verdict': 'passed',
                                                   'upgrade_guard_fleet_detail': 'passed: run 12 changed 3 packages;\n'
                                                                                 'trial boot blessed'}})
        f.ok('canary', 'assert', {'msg': 'All assertions passed'})
        # Batch 2.
        f.play(FakePlay(self.HOSTS))
        f.upgrade('gated', 'gate_closed', 'gate closed: 1 blocking finding: libraries /usr/bin/curl: needs x [curl]',
                  failed=True, run=4)
        f.upgrade('rolled', 'rolled_back', 'rolled back to @ug-9-pre; the restored root is used from the next boot',
                  failed=True, run=9, changes=THREE_PACKAGES)
        f.ok('refused', 'setup')
        f.failed('refused', 'run', module_result('run', 'refused', 'refused: dpkg was interrupted', run=3))
        f.unreachable('gone', 'setup', 'Failed to connect to the host via ssh: timed out')
        f.upgrade('broken', 'passed', 'passed: run 5 changed 0 packages', failed=False, run=5)
        f.failed('broken', 'reboot', {'msg': 'Timed out waiting for the boot-check --status test command'})
        f.ok('recovered', 'setup')
        f.ok('recovered', 'recover', module_result('recover', 'passed', 'recovered 1: run 7 passed', recovered=1,
                                                   report={'schema': 1, 'recovered': [{'run': 7, 'outcome': 'passed'}]},
                                                   changes=THREE_PACKAGES))
        f.ok('recovered', 'gate', module_result('gate_status', 'open', 'gate open', gate='open'))
        f.ok('sibling', 'setup')
        f.cb.v2_playbook_on_no_hosts_remaining()
        self.stats = FakeStats(canary={'failures': 0, 'unreachable': 0}, gated={'failures': 1, 'unreachable': 0},
                               rolled={'failures': 1, 'unreachable': 0}, refused={'failures': 1, 'unreachable': 0},
                               gone={'failures': 0, 'unreachable': 1}, broken={'failures': 1, 'unreachable': 0},
                               recovered={'failures': 0, 'unreachable': 0}, sibling={'failures': 0, 'unreachable': 0})
        self.json_path = os.path.join(self.tmp, 'fleet.json')
        self.lines = f.finish(self.stats, self.json_path)
        with open(self.json_path) as fh:
            self.report = json.load(fh)

    def test_json(self):
        hosts = self.report['hosts']
        self.assertEqual(list(sorted(hosts)), sorted(self.HOSTS))
        self.assertTrue(self.report['stopped'])
        self.assertEqual(self.report['schema'], 1)
        verdicts = dict((h, v['verdict']) for h, v in hosts.items())
        self.assertEqual(verdicts, {'canary': 'passed', 'gated': 'gate_closed', 'rolled': 'rolled_back',
                                    'refused': 'refused', 'gone': 'unreachable', 'broken': 'failed',
                                    'recovered': 'recovered', 'sibling': 'stopped', 'later1': 'not_reached',
                                    'later2': 'not_reached'})
        self.assertEqual(hosts['canary'], {'verdict': 'passed', 'run': 12, 'packages': 3, 'failed': False, 'recovered': None,
                                           'detail': 'passed: run 12 changed 3 packages; trial boot blessed'})
        self.assertEqual((hosts['gated']['run'], hosts['gated']['packages'], hosts['gated']['failed']), (4, 0, True))
        self.assertIn('libraries /usr/bin/curl', hosts['gated']['detail'])
        self.assertEqual((hosts['rolled']['run'], hosts['rolled']['packages']), (9, 3))
        self.assertEqual(hosts['gone']['detail'], 'Failed to connect to the host via ssh: timed out')
        self.assertTrue(hosts['gone']['failed'])
        self.assertEqual(hosts['broken']['detail'], 'Reboot: Timed out waiting for the boot-check --status test command'
                                                    ' (upgrade-guard said: passed: run 5 changed 0 packages)')
        self.assertEqual((hosts['recovered']['recovered'], hosts['recovered']['run'], hosts['recovered']['packages']),
                         ('passed', 7, 3))
        self.assertFalse(hosts['recovered']['failed'])
        self.assertEqual(hosts['later1'], {'verdict': 'not_reached', 'detail': "the line stopped before this host's wave",
                                           'run': None, 'packages': None, 'failed': False, 'recovered': None})

    def test_table(self):
        self.assertEqual(self.lines[0], '== UPGRADE-GUARD FLEET REPORT')
        rows = self.lines[1].split('\n')
        self.assertEqual([r.split(' | ')[0].strip() for r in rows[:-1]], ['HOST'] + self.HOSTS)
        cells = dict((r.split(' | ')[0].strip(), r.split(' | ')[1].strip()) for r in rows[1:-1])
        self.assertEqual(cells, {'canary': 'passed', 'gated': 'gate closed', 'rolled': 'rolled back', 'refused': 'refused',
                                 'gone': 'unreachable', 'broken': 'failed', 'recovered': 'recovered (passed)',
                                 'sibling': 'stopped', 'later1': 'not reached', 'later2': 'not reached'})
        self.assertEqual(rows[-1], 'the line stopped: 2 hosts not reached')
        # Columns line up.
        self.assertEqual(len(set(r.index(' | ') for r in rows[:-1])), 1)

    def test_inventory_asked_without_the_batch_restriction(self):
        play = FakePlay(['a'])
        fr.play_host_names(play)
        self.assertEqual(play.inventory.asked, [('fleet', True)])


class VerdictRulesTest(unittest.TestCase):

    def test_trial_rolled_back_beats_the_assert_failure(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.upgrade('h', 'passed', 'passed: run 3 changed 3 packages', failed=False, run=3, changes=THREE_PACKAGES)
        f.ok('h', 'trial', {'ansible_facts': {'upgrade_guard_fleet_verdict': 'rolled_back',
                                              'upgrade_guard_fleet_detail': 'the trial boot failed and was rolled back'}})
        f.failed('h', 'assert', {'msg': 'Assertion failed'})
        line = dict(f.cb.summary()[0])['h']
        self.assertEqual((line['verdict'], line['detail'], line['failed']),
                         ('rolled_back', 'the trial boot failed and was rolled back', True))

    def test_verdict_as_a_key_of_a_result(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.ok('h', 'assert', {'upgrade_guard_fleet_verdict': 'passed', 'upgrade_guard_fleet_detail': 'trial blessed'})
        self.assertEqual(dict(f.cb.summary()[0])['h']['verdict'], 'passed')

    def test_the_roles_sequence(self):
        # roles/rolling_upgrade: the module's result, its verdict recorded (facts templated as
        # strings), the reboot, the trial's state recorded, the assert.
        f = Fleet()
        f.play(FakePlay(['h']))
        f.upgrade('h', 'passed', 'passed: run 31 changed 3 packages', failed=False, run=31, changes=THREE_PACKAGES)
        f.ok('h', 'trial', {'ansible_facts': {'upgrade_guard_fleet_verdict': 'passed', 'upgrade_guard_fleet_run': '31',
                                              'upgrade_guard_fleet_packages': '3',
                                              'upgrade_guard_fleet_detail': 'passed: run 31 changed 3 packages'}})
        f.ok('h', 'reboot', {'changed': True, 'rebooted': True})
        f.ok('h', 'setup', {'stdout': '{"state": "blessed"}', 'changed': False})
        f.ok('h', 'trial', {'ansible_facts': {'upgrade_guard_fleet_verdict': ' passed ',
                                              'upgrade_guard_fleet_detail': 'passed: run 31 changed 3 packages; trial boot\n'
                                                                            'blessed: the boot was checked'}})
        f.ok('h', 'assert', {'msg': 'passed: run 31 changed 3 packages'})
        line = dict(f.cb.summary()[0])['h']
        self.assertEqual(line, {'verdict': 'passed', 'run': 31, 'packages': 3, 'failed': False, 'recovered': None,
                                'detail': 'passed: run 31 changed 3 packages; trial boot blessed: the boot was checked'})

    def test_the_roles_recovered_host(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.ok('h', 'recover', module_result('recover', 'passed', 'recovered 1: run 7 passed', recovered=1,
                                           report={'schema': 1, 'recovered': [{'run': 7, 'outcome': 'passed'}]}))
        f.ok('h', 'trial', {'ansible_facts': {'upgrade_guard_fleet_verdict': 'recovered', 'upgrade_guard_fleet_run': 'None',
                                              'upgrade_guard_fleet_packages': '0',
                                              'upgrade_guard_fleet_detail': 'recovered an unfinished run: run 7 passed'}})
        line = dict(f.cb.summary()[0])['h']
        self.assertEqual((line['verdict'], line['recovered'], line['run'], line['packages'], line['failed']),
                         ('recovered', 'passed', 7, 0, False))

    def test_failed_gate_status_is_the_verdict(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.ok('h', 'setup')
        f.failed('h', 'gate', module_result('gate_status', 'gate_closed', 'gate closed by audit: x', gate='closed',
                                            failed_when_result=True))
        line = dict(f.cb.summary()[0])['h']
        self.assertEqual((line['verdict'], line['failed'], line['run']), ('gate_closed', True, None))

    def test_open_gate_alone_is_no_verdict(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.ok('h', 'gate', module_result('gate_status', 'open', 'gate open', gate='open'))
        lines, stopped = f.cb.summary()
        self.assertFalse(stopped)
        self.assertEqual(dict(lines)['h']['verdict'], 'ok')

    def test_an_upgrade_after_recover_is_the_verdict(self):
        # recover with nothing to do says nothing; one that finished a run is kept as `recovered`.
        for recovered, expected in ((0, None), (1, 'passed')):
            f = Fleet()
            f.play(FakePlay(['h']))
            f.ok('h', 'recover', module_result('recover', 'passed', 'recover', recovered=recovered))
            f.upgrade('h', 'passed', 'passed: run 8 changed 0 packages', failed=False, run=8)
            line = dict(f.cb.summary()[0])['h']
            self.assertEqual((line['verdict'], line['recovered'], line['run']), ('passed', expected, 8))

    def test_recovered_rollback_fails(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.failed('h', 'recover', module_result('recover', 'rolled_back', 'rolled back to @ug-7-pre', recovered=1))
        line = dict(f.cb.summary()[0])['h']
        self.assertEqual((line['verdict'], line['recovered'], line['failed']), ('recovered', 'rolled_back', True))

    def test_ignored_and_rescued_failures_do_not_count(self):
        f = Fleet()
        f.play(FakePlay(['ignored', 'rescued']))
        f.failed('ignored', 'apt', {'msg': 'apt update failed'}, ignore_errors=True)
        f.failed('rescued', 'apt', {'msg': 'apt update failed'})
        lines = dict(f.cb.summary(FakeStats(ignored={'failures': 0}, rescued={'failures': 0, 'rescued': 1}))[0])
        self.assertEqual(lines['ignored']['verdict'], 'ok')
        self.assertEqual(lines['rescued']['verdict'], 'ok')
        lines = dict(f.cb.summary()[0])  # without stats, a failure that was not ignored counts
        self.assertEqual(lines['rescued']['verdict'], 'failed')
        self.assertEqual(lines['rescued']['detail'], 'apt update: apt update failed')

    def test_loop_of_the_module(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.ok('h', 'run', {'results': [module_result('run', 'passed', 'first', run=1),
                                      module_result('run', 'passed', 'second', run=2)], 'changed': False})
        self.assertEqual(dict(f.cb.summary()[0])['h']['run'], 2)

    def test_short_module_name(self):
        self.assertTrue(fr.is_guard_module('upgrade_guard'))
        self.assertTrue(fr.is_guard_module(MODULE))
        self.assertFalse(fr.is_guard_module('ansible.builtin.command'))

    def test_check_mode_skips_are_no_verdict(self):
        f = Fleet()
        f.play(FakePlay(['h']))
        f.ok('h', 'recover', module_result('recover', 'skipped', 'skipped in check mode'))
        self.assertEqual(dict(f.cb.summary()[0])['h']['verdict'], 'ok')

    def test_host_of_an_earlier_play_not_reached_in_the_next(self):
        f = Fleet()
        f.play(FakePlay(['a', 'b'], uuid='install'))
        f.ok('a', 'setup')
        f.ok('b', 'setup')
        f.play(FakePlay(['a', 'b'], uuid='upgrade'))
        f.upgrade('a', 'gate_closed', 'gate closed: x', failed=True)
        lines, stopped = f.cb.summary()
        self.assertEqual(dict(lines)['b']['verdict'], 'not_reached')
        self.assertTrue(stopped)

    def test_unlisted_inventory_still_lists_hosts_that_ran(self):
        class NoInventory(FakePlay):
            def get_variable_manager(self):
                raise RuntimeError('no inventory')
        f = Fleet()
        f.play(NoInventory(['a']))
        f.ok('a', 'setup')
        self.assertEqual(len(f.display.warnings), 1)
        self.assertEqual(dict(f.cb.summary()[0])['a']['verdict'], 'ok')

    def test_unwritable_json_path_warns(self):
        f = Fleet()
        f.play(FakePlay(['a']))
        f.ok('a', 'setup')
        f.finish(json_path='/nonexistent-dir/fleet.json')
        self.assertEqual(len(f.display.warnings), 1)
        self.assertIn('cannot write /nonexistent-dir/fleet.json', f.display.warnings[0])

    def test_no_json_without_a_path(self):
        f = Fleet()
        f.play(FakePlay(['a']))
        lines = f.finish()
        self.assertEqual(lines[1].split('\n')[1:], ["a    | not reached | the line stopped before this host's wave",
                                                    'the line stopped: 1 host not reached'])


if __name__ == '__main__':
    unittest.main()
