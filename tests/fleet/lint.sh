#!/usr/bin/env bash
# Offline static checks of the Ansible collection upgrade_guard.debian (issue 16), from any
# directory:  tests/fleet/lint.sh
# Exits 1 when any check fails, after running them all. A check whose tool is missing is
# skipped with a message, and fails instead when CI=true. Debian 12 packages it uses:
# ansible-core, ansible-lint, yamllint, python3-voluptuous (validate-modules), python3-pycodestyle.
#
#  1. every Python file of the collection and of tests/fleet/units compiles (/usr/bin/python3);
#  2. ansible-doc renders each module and callback;
#  3. ansible-lint (profile production, experimental rules too, .ansible-lint of the collection),
#     offline, over the collection: plugins' documentation, roles, examples;
#  4. ansible-test's validate-modules (documentation against argument spec, RETURN, EXAMPLES),
#     its pep8 (pycodestyle with its settings), its yamllint (YAML files and the plugins'
#     documentation) and runtime-metadata: ansible-test's own scripts run with /usr/bin/python3;
#  5. `ansible-test sanity` itself for the tests that need no Python packages beyond ansible's.
#
# What does not run, and why: `ansible-test sanity` runs validate-modules, pep8, yamllint,
# runtime-metadata, ansible-doc, import and pylint each in a virtualenv it fills from PyPI
# (pinned versions, and pip's bootstrap script from ci-files.testing.ansible.com): offline they
# stop at "does not have pip available". Step 4 runs the first four with Debian's packages
# instead, and step 2 stands for ansible-doc. import (loading each plugin with only the
# allowed imports) and pylint (ansible-test's configuration and checkers against pylint 2.15)
# do not run; the unit tests import both plugins, and step 1 compiles everything.
# Exceptions ansible-test would honour are in the collection's tests/sanity/ignore-2.14.txt;
# step 4 honours its validate-modules lines.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$PWD
collections=$repo/packaging/ansible
collection=$collections/ansible_collections/upgrade_guard/debian
python=/usr/bin/python3
sanity_root=/usr/lib/python3/dist-packages/ansible_test/_util/controller/sanity
export ANSIBLE_COLLECTIONS_PATH=$collections ANSIBLE_NOCOLOR=1 NO_COLOR=1 PYTHONDONTWRITEBYTECODE=1

failed=()
step() { echo "lint: == $*" >&2; }
fail() {
  failed+=("$1")
  echo "lint: FAILED: $1" >&2
}
unavailable() {  # a check that cannot run here
  if [ "${CI:-}" = true ]; then
    fail "$1 (CI=true and it cannot run)"
  else
    echo "lint: skipped: $1" >&2
  fi
}
has_module() { "$python" -c "import $1" 2>/dev/null; }

cd "$collection" || exit 1
# The collection's files as git sees them (tracked and new, not ignored), relative to it.
mapfile -t files < <(git ls-files --cached --others --exclude-standard | sort -u | while read -r f; do [ -f "$f" ] && echo "$f"; done)
python_files=()  # .py files and scripts with a python shebang (the facts script)
py_sources=()    # the .py files only, as ansible-test's pep8 takes them
for f in "${files[@]}"; do
  if [[ $f == *.py ]]; then
    python_files+=("$f")
    py_sources+=("$f")
  elif head -c 64 "$f" | head -n 1 | grep -q '^#!.*python'; then
    python_files+=("$f")
  fi
done

step "1. Python compiles"
# compile() rather than py_compile: nothing is written next to the sources.
if ! "$python" - "${python_files[@]}" "$repo"/tests/fleet/units/*.py <<'EOF'
import sys
bad = 0
for path in sys.argv[1:]:
    try:
        with open(path, 'rb') as f:
            compile(f.read(), path, 'exec', dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        print('%s: %s' % (path, e), file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
EOF
then
  fail "Python does not compile"
fi

step "2. ansible-doc"
for f in "${files[@]}"; do
  case $f in
    plugins/modules/*.py) type=module ;;
    plugins/callback/*.py) type=callback ;;
    *) continue ;;
  esac
  name=upgrade_guard.debian.$(basename "$f" .py)
  if ! out=$(/usr/bin/ansible-doc -t "$type" "$name" 2>&1) || grep -q -e '^ERROR' -e '\[WARNING\]' <<<"$out"; then
    echo "$out" | head -20 >&2
    fail "ansible-doc -t $type $name"
  fi
done

step "3. ansible-lint"
if [ -x /usr/bin/ansible-lint ]; then
  # Its cache of collections and roles goes to a temporary directory, not ~/.cache.
  lint_home=$(mktemp -d)
  # The trailing slash: ansible-compat 3.0.1 points Ansible's collection finder at the parent
  # of ANSIBLE_COLLECTIONS_PATH (os.path.dirname) under ansible-core < 2.15; without it the
  # collection's own module is not found and its options are not checked (args[module]).
  if ! ANSIBLE_COLLECTIONS_PATH=$collections/ XDG_CACHE_HOME=$lint_home \
    /usr/bin/ansible-lint --offline --nocolor -c .ansible-lint; then
    fail "ansible-lint"
  fi
  rm -rf "$lint_home"
else
  unavailable "ansible-lint (Debian package ansible-lint)"
fi

step "4. validate-modules, pep8, yamllint, runtime-metadata (ansible-test's scripts)"
# validate-modules' JSON on stdin: prints the errors tests/sanity/ignore-2.14.txt does not list
# ("PATH validate-modules:CODE # why"), exits 1 when there are any.
report_errors='import json, sys
ignored = set()
for line in open(sys.argv[1]):
    words = line.split("#")[0].split()
    if len(words) == 2 and words[1].startswith("validate-modules:"):
        ignored.add((words[0], words[1].split(":", 1)[1]))
bad = 0
for path, result in sorted(json.load(sys.stdin).items()):
    for e in result["errors"]:
        if (path, e["code"]) not in ignored:
            print("%s:%s:%s: %s %s" % (path, e.get("line", 0), e.get("column", 0), e["code"], e["msg"]), file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)'
if has_module voluptuous && [ -f "$sanity_root/validate-modules/validate.py" ]; then
  version=$(sed -n 's/^version: *//p' galaxy.yml)
  for type in modules callback; do
    targets=()
    for f in "${files[@]}"; do [[ $f == plugins/$type/*.py ]] && targets+=("$f"); done
    [ ${#targets[@]} -gt 0 ] || continue
    plugin_type=()
    [ "$type" = modules ] || plugin_type=(--plugin-type "$type")
    out=$("$python" "$sanity_root/validate-modules/validate.py" --format json --arg-spec \
      --collection ansible_collections/upgrade_guard/debian --collection-version "$version" "${plugin_type[@]}" \
      "${targets[@]}")
    rc=$?  # 3: errors found, listed in the JSON
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
      fail "validate-modules ($type) exited $rc"
    elif ! "$python" -c "$report_errors" tests/sanity/ignore-2.14.txt <<<"$out"; then
      fail "validate-modules ($type)"
    fi
  done
else
  unavailable "validate-modules (Debian package python3-voluptuous)"
fi
if has_module pycodestyle; then
  ignore=$(grep -v '^#' "$sanity_root/pep8/current-ignore.txt" | sort | paste -sd, -)
  if ! "$python" -m pycodestyle --max-line-length 160 --config /dev/null --ignore "$ignore" \
    "${py_sources[@]}" "$repo"/tests/fleet/units/*.py; then
    fail "pep8"
  fi
else
  unavailable "pep8 (Debian package python3-pycodestyle)"
fi
if has_module yamllint; then
  out=$(printf '%s\n' "${files[@]}" | grep -E '\.ya?ml$|^plugins/[^/]+/[^/]+\.py$' | "$python" "$sanity_root/yamllint/yamllinter.py")
  if ! "$python" -c 'import json, sys
messages = json.load(sys.stdin)["messages"]
for m in messages:
    print("%(path)s:%(line)s:%(column)s: %(level)s %(code)s %(message)s" % m, file=sys.stderr)
sys.exit(1 if messages else 0)' <<<"$out"; then
    fail "yamllint"
  fi
else
  unavailable "yamllint (Debian package yamllint)"
fi
if has_module voluptuous; then
  out=$("$python" "$sanity_root/code-smell/runtime-metadata.py" meta/runtime.yml 2>&1)
  if [ -n "$out" ]; then
    echo "$out" >&2
    fail "runtime-metadata"
  fi
else
  unavailable "runtime-metadata (Debian package python3-voluptuous)"
fi

step "5. ansible-test sanity (the tests that run offline)"
offline_tests=(action-plugin-docs changelog compile empty-init future-import-boilerplate ignores line-endings
  metaclass-boilerplate no-assert no-basestring no-dict-iteritems no-dict-iterkeys no-dict-itervalues
  no-get-exception no-illegal-filenames no-main-display no-smart-quotes no-unicode-literals pslint
  replace-urlopen shebang shellcheck symlinks use-argspec-type-path use-compat-six)
args=()
for t in "${offline_tests[@]}"; do args+=(--test "$t"); done
pyversion=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
out=$(/usr/bin/ansible-test sanity --python "$pyversion" "${args[@]}" 2>&1)
rc=$?
# Its "C.UTF-8 instead of en_US.UTF-8" warning says nothing about the collection.
grep -v -e 'Using locale' -e 'Reviewing previous' <<<"$out" >&2
[ $rc -eq 0 ] || fail "ansible-test sanity"
rm -rf tests/output

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint: all checks passed" >&2
