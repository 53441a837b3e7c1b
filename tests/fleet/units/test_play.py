"""The module and the callback in a real ansible-playbook run: hosts on the local connection,
each with a fake upgrade-guard (a script answering with canned JSON and exit codes), waves with
serial and max_fail_percentage 0. Seconds, no root, no system touched; the real upgrade-guard
on real roots is tests/fleet's host harness."""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
import unittest

from collection import COLLECTIONS_PATH

ANSIBLE_PLAYBOOK = '/usr/bin/ansible-playbook'

# Answers a fake upgrade-guard gives, by subcommand: [exit code, JSON].
PASSED_RUN = {'schema': 1, 'run': 21, 'outcome': 'passed', 'exit_code': 0, 'message': 'run 21 passed', 'notes': [],
              'changes': {'upgraded': [{'package': 'curl', 'before': '7.88.1-10', 'after': '7.88.1-10+deb12u5'}],
                          'installed': [], 'removed': [], 'downgraded': [], 'state_changed': []}}
BLOCKING = {'check': 'libraries', 'severity': 'block', 'path': '/usr/bin/curl', 'package': 'curl',
            'message': 'needs libcurl.so.4, which no library provides', 'known': False, 'blocking': True}
GATED_RUN = dict(PASSED_RUN, run=22, outcome='gated', exit_code=1, message='regressions: the reboot gate is closed',
                 post={'schema': 1, 'verdict': 'fail', 'findings': [BLOCKING]})
CLEAN_CHECK = {'schema': 1, 'root': '/', 'verdict': 'pass', 'baseline_compared': True, 'blocking': 0, 'checks': [],
               'findings': []}
CASES = {'pass': {'run': [0, PASSED_RUN], 'check': [0, CLEAN_CHECK]},
         'gated': {'run': [1, GATED_RUN], 'check': [1, dict(CLEAN_CHECK, verdict='fail', findings=[BLOCKING])]}}

FAKE = textwrap.dedent('''\
    #!/usr/bin/python3
    # A fake upgrade-guard: records its arguments, answers from NAME.json by subcommand.
    import json, sys
    args = sys.argv[1:]
    with open(sys.argv[0] + '.calls', 'a') as f:
        f.write(json.dumps(args) + '\\n')
    i = args.index('--json') + 1
    while args[i] in ('--root', '--policy', '--state-dir'):
        i += 2
    rc, out = json.load(open(sys.argv[0] + '.json'))[args[i]]
    sys.stderr.write('fake upgrade-guard %s\\n' % args[i])
    print(json.dumps(out))
    sys.exit(rc)
    ''')

PLAYBOOK = textwrap.dedent('''\
    - name: Waves of guarded upgrades
      hosts: fleet
      gather_facts: false
      serial: [1, 2, "100%"]
      max_fail_percentage: 0
      tasks:
        - name: Guarded upgrade
          upgrade_guard.debian.upgrade_guard:
            action: run
            binary: "{{ fake_dir }}/upgrade-guard-{{ ug_case }}"
    ''')


# A laptop without Ansible skips; CI (CI=true) runs it and fails without ansible-playbook.
@unittest.skipUnless(os.access(ANSIBLE_PLAYBOOK, os.X_OK) or os.environ.get('CI') == 'true',
                     'needs ansible-playbook (Debian package ansible-core)')
class PlayTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ug-play-test.')
        self.addCleanup(shutil.rmtree, self.tmp)
        for case, answers in CASES.items():
            path = os.path.join(self.tmp, 'upgrade-guard-' + case)
            with open(path, 'w') as f:
                f.write(FAKE)
            os.chmod(path, stat.S_IRWXU)
            with open(path + '.json', 'w') as f:
                json.dump(answers, f)
        with open(os.path.join(self.tmp, 'inventory.ini'), 'w') as f:
            f.write(textwrap.dedent('''\
                [fleet]
                canary ug_case=pass
                bad ug_case=gated
                good ug_case=pass
                later1 ug_case=pass
                later2 ug_case=pass

                [fleet:vars]
                ansible_connection=local
                ansible_python_interpreter=/usr/bin/python3
                fake_dir={}
                ''').format(self.tmp))
        with open(os.path.join(self.tmp, 'site.yml'), 'w') as f:
            f.write(PLAYBOOK)
        open(os.path.join(self.tmp, 'ansible.cfg'), 'w').close()
        self.json_path = os.path.join(self.tmp, 'fleet.json')

    def play(self, *options):
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_CONFIG=os.path.join(self.tmp, 'ansible.cfg'),
                   ANSIBLE_CALLBACKS_ENABLED='upgrade_guard.debian.fleet_report', UPGRADE_GUARD_FLEET_REPORT=self.json_path,
                   ANSIBLE_HOME=os.path.join(self.tmp, 'home'), ANSIBLE_LOCAL_TEMP=os.path.join(self.tmp, 'tmp'),
                   ANSIBLE_REMOTE_TEMP=os.path.join(self.tmp, 'tmp'), ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0')
        proc = subprocess.run([ANSIBLE_PLAYBOOK, '-i', 'inventory.ini', 'site.yml'] + list(options), cwd=self.tmp, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
        with open(self.json_path) as f:
            return proc.returncode, proc.stdout, json.load(f)

    def calls(self, case):
        path = os.path.join(self.tmp, 'upgrade-guard-%s.calls' % case)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f]

    def test_the_line_stops_at_the_first_bad_wave(self):
        rc, out, report = self.play()
        self.assertEqual(rc, 2, out)  # hosts failed
        verdicts = dict((h, v['verdict']) for h, v in report['hosts'].items())
        self.assertEqual(verdicts, {'canary': 'passed', 'bad': 'gate_closed', 'good': 'passed',
                                    'later1': 'not_reached', 'later2': 'not_reached'}, out)
        self.assertTrue(report['stopped'])
        self.assertEqual((report['hosts']['canary']['run'], report['hosts']['canary']['packages']), (21, 1))
        self.assertIn('gate closed: 1 blocking finding: libraries /usr/bin/curl', report['hosts']['bad']['detail'])
        self.assertEqual(len(self.calls('pass')), 2, out)  # canary and good; later1 and later2 never ran
        self.assertIn('UPGRADE-GUARD FLEET REPORT', out)
        self.assertIn('later1 | not reached | ', out)
        self.assertIn('bad    | gate closed | ', out)
        self.assertIn('the line stopped: 2 hosts not reached', out)

    def test_check_mode_runs_check_and_diff_mode_shows_packages(self):
        with open(os.path.join(self.tmp, 'inventory.ini')) as f:
            inventory = f.read().replace('gated', 'pass')
        with open(os.path.join(self.tmp, 'inventory.ini'), 'w') as f:
            f.write(inventory)
        rc, out, report = self.play('--check')
        self.assertEqual(rc, 0, out)
        self.assertEqual(set(v['verdict'] for v in report['hosts'].values()), set(['passed']), out)
        self.assertFalse(report['stopped'])
        self.assertEqual(set(tuple(c[1:]) for c in self.calls('pass')), set([('check', '--baseline', 'compare')]))
        rc, out, report = self.play('--diff', '--limit', 'canary')
        self.assertEqual(rc, 0, out)
        self.assertIn('-curl 7.88.1-10\n+curl 7.88.1-10+deb12u5', out)
        self.assertEqual(list(report['hosts']), ['canary'])  # --limit: the others are not the play's hosts


if __name__ == '__main__':
    unittest.main()
