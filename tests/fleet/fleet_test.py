#!/usr/bin/python3
"""The fleet label: the Ansible collection in packaging/ansible driving real hosts.

    fleet_test.py hosts    # chroot hosts on btrfs images (no network): the canary play, one
                           # host per outcome, a killed ansible-playbook run again
    fleet_test.py reboot   # systemd-nspawn -b hosts with sshd: ansible.builtin.reboot and
                           # boot-check --status --wait against real boots

Needs root, btrfs, loop devices and Debian's ansible. Without them it skips (exit 77) on a
laptop and fails when CI=true. The package under test is UG_FLEET_DEB, else this checkout's
(scripts/test-packages builds it once into UG_FLEET_DIST, default build/dist). Every mount, loop device and container it makes is
released, also when it fails. UG_FLEET_KEEP=1 keeps the work directory for a look.
"""

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, "packaging", "ansible")
COLLECTION = os.path.join(COLLECTIONS, "ansible_collections", "upgrade_guard", "debian")
SITE = os.path.join(COLLECTION, "examples", "site.yml")
CACHE = os.environ.get("UG_TEST_CACHE", "/var/cache/upgrade-guard-tests")
# Bump when the golden image's contents change.
GOLDEN_VERSION = "2"
SKIP = 77


def log(msg):
    print(f"fleet: {time.strftime('%H:%M:%S')} {msg}", flush=True)


def skip(reason):
    if os.environ.get("CI") == "true":
        print(f"fleet: FAILED: cannot run in CI: {reason}", flush=True)
        sys.exit(1)
    print(f"fleet: SKIPPED: {reason}", flush=True)
    sys.exit(SKIP)


def run(argv, check=True, timeout=900, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


class Cleanup:
    """Undo steps run last-in first-out at exit, whatever happened."""

    def __init__(self):
        self.steps = []
        atexit.register(self.run)

    def push(self, what, fn):
        self.steps.append((what, fn))

    def run(self):
        while self.steps:
            what, fn = self.steps.pop()
            try:
                fn()
            except Exception as e:  # keep releasing the rest
                print(f"fleet: cleanup {what}: {e}", file=sys.stderr)


CLEANUP = Cleanup()


def umount(path):
    for _ in range(10):
        if subprocess.run(["mountpoint", "-q", path]).returncode != 0:
            return
        if subprocess.run(["umount", "-R", path], capture_output=True).returncode == 0:
            continue
        time.sleep(1)
    subprocess.run(["umount", "-R", "-l", path], capture_output=True)


def mount_image(img, where, options):
    """Mounts a btrfs image file (loop, detached again at umount) and registers the umount."""
    os.makedirs(where, exist_ok=True)
    run(["mount", "-o", f"loop,{options}", img, where])
    CLEANUP.push(f"umount {where}", lambda: umount(where))


def check_prerequisites():
    if os.geteuid() != 0:
        skip("needs root (loop devices, btrfs, chroot)")
    for tool in ("ansible-playbook", "mkfs.btrfs", "btrfstune", "dpkg-scanpackages", "gcc", "unshare"):
        if shutil.which(tool) is None:
            skip(f"{tool} is not installed (scripts/install-deps installs it)")
    if not os.path.isdir(os.path.join(COLLECTION, "plugins", "modules")):
        print(f"fleet: FAILED: no collection at {COLLECTION}")
        sys.exit(1)


def package_under_test():
    deb = os.environ.get("UG_FLEET_DEB")
    if deb:
        return os.path.abspath(deb)
    dist = os.environ.get("UG_FLEET_DIST") or os.path.join(REPO, "build", "dist")
    r = run([os.path.join(REPO, "scripts", "test-packages"), dist],
            env={**os.environ, "UG_ONLY_CURRENT": "1"}, timeout=3600)
    return r.stdout.strip().splitlines()[-1]


# --- ug-fleet: the package the fleet upgrades --------------------------------------------------

def build_ug_fleet(work, version, lib=True, postinst=""):
    """A package with /usr/bin/ug-fleet-tool and (lib) the libugfleet.so.1 it needs. Without the
    library the tool no longer resolves: the regression the post-checks must find. Each variant
    (version, lib, postinst) is built in a directory and a file of its own."""
    variant = hashlib.sha1(f"{version} {lib} {postinst}".encode()).hexdigest()[:8]
    src = os.path.join(work, f"ug-fleet-src-{variant}")
    tree = os.path.join(src, "tree")
    os.makedirs(os.path.join(tree, "DEBIAN"), exist_ok=True)
    os.makedirs(os.path.join(tree, "usr/bin"), exist_ok=True)
    os.makedirs(os.path.join(tree, "usr/lib/ug-fleet"), exist_ok=True)
    os.makedirs(os.path.join(tree, "usr/share/ug-fleet"), exist_ok=True)
    with open(os.path.join(src, "lib.c"), "w") as f:
        f.write("int ugf_call(void) { return 0; }\n")
    with open(os.path.join(src, "tool.c"), "w") as f:
        f.write("int ugf_call(void);\nint main(void) { return ugf_call(); }\n")
    so = os.path.join(src, "libugfleet.so.1")
    run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libugfleet.so.1", "-o", so, os.path.join(src, "lib.c")])
    run(["gcc", "-o", os.path.join(tree, "usr/bin/ug-fleet-tool"), os.path.join(src, "tool.c"), so,
         "-Wl,-rpath,/usr/lib/ug-fleet"])
    if lib:
        shutil.copy(so, os.path.join(tree, "usr/lib/ug-fleet/libugfleet.so.1"))
    with open(os.path.join(tree, "usr/share/ug-fleet/version"), "w") as f:
        f.write(version + "\n")
    with open(os.path.join(tree, "DEBIAN/control"), "w") as f:
        f.write(textwrap.dedent(f"""\
            Package: ug-fleet
            Version: {version}
            Architecture: amd64
            Maintainer: upgrade-guard tests <root@localhost>
            Description: what the fleet tests upgrade
            """))
    if postinst:
        p = os.path.join(tree, "DEBIAN/postinst")
        with open(p, "w") as f:
            f.write("#!/bin/sh\nset -e\n" + postinst + "\n")
        os.chmod(p, 0o755)
    deb = os.path.join(work, variant, f"ug-fleet_{version}_amd64.deb")
    os.makedirs(os.path.dirname(deb), exist_ok=True)
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb])
    return deb


def publish(root, debs):
    """Makes `debs` the whole of the host's apt repository, /srv/fleet-repo."""
    repo = os.path.join(root, "srv/fleet-repo")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    for d in debs:
        shutil.copy(d, repo)
    r = run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo)
    with open(os.path.join(repo, "Packages"), "w") as f:
        f.write(r.stdout)


# --- hosts ---------------------------------------------------------------------------------------

def deb_depends(deb):
    """The package's Depends as package names, e.g. ['libc6', 'libsqlite3-0', ...]."""
    field = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    names = []
    for alt in field.split(","):
        name = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            names.append(name)
    return names


def server_root():
    r = run([os.path.join(REPO, "scripts", "test-root"), "server"], timeout=3600)
    return r.stdout.strip().splitlines()[-1]


def golden_image(deb, work):
    """A btrfs image with subvolume @: the cached server root, upgrade-guard's runtime
    dependencies installed (so installing the .deb needs no network) and python3-apt (which
    Ansible's apt module needs on a managed host), ug-fleet 1.0 installed and apt reading only
    /srv/fleet-repo. Cached by its inputs under CACHE/fleet."""
    root = server_root()
    depends = sorted(set(deb_depends(deb)))
    stamp = open(os.path.join(root, ".complete")).read() if os.path.exists(os.path.join(root, ".complete")) else ""
    key = hashlib.sha1((GOLDEN_VERSION + stamp + " ".join(depends)).encode()).hexdigest()[:12]
    cache = os.path.join(CACHE, "fleet")
    os.makedirs(cache, exist_ok=True)
    img = os.path.join(cache, f"golden-{key}.img")
    lock = open(os.path.join(cache, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others wait and use it
    if os.path.exists(img):
        return img
    log(f"building the golden host image {img}")
    tmp = img + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    with open(tmp, "wb") as f:
        f.truncate(3 << 30)
    run(["mkfs.btrfs", "-q", tmp])
    top = os.path.join(work, "golden-top")
    mount_image(tmp, top, "subvolid=5")
    run(["btrfs", "subvolume", "create", os.path.join(top, "@")])
    at = os.path.join(top, "@")
    run(["cp", "-a", root + "/.", at], timeout=1800)
    if os.path.exists(os.path.join(at, ".complete")):
        os.unlink(os.path.join(at, ".complete"))
    with open(os.path.join(at, "etc/hostname"), "w") as f:
        f.write("ug-fleet-host\n")
    # apt-get in the root with the host's resolver: the dependencies come from Debian's archive.
    shutil.copy("/etc/resolv.conf", os.path.join(at, "etc/resolv.conf"))
    live_chroot(at, ["apt-get", "update", "-qq"], work)
    live_chroot(at, ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
                     "--no-install-recommends", "python3-apt"] + depends, work, timeout=1800)
    live_chroot(at, ["apt-get", "clean"], work)
    v1 = build_ug_fleet(work, "1.0")
    shutil.copy(v1, os.path.join(at, "tmp/ug-fleet.deb"))
    live_chroot(at, ["dpkg", "-i", "/tmp/ug-fleet.deb"], work)
    os.unlink(os.path.join(at, "tmp/ug-fleet.deb"))
    for f in ("etc/apt/sources.list",):
        open(os.path.join(at, f), "w").close()
    shutil.rmtree(os.path.join(at, "etc/apt/sources.list.d"), ignore_errors=True)
    os.makedirs(os.path.join(at, "etc/apt/sources.list.d"))
    with open(os.path.join(at, "etc/apt/sources.list.d/fleet.list"), "w") as f:
        f.write("deb [trusted=yes] file:/srv/fleet-repo ./\n")
    publish(at, [v1])
    shutil.rmtree(os.path.join(at, "var/lib/apt/lists"), ignore_errors=True)
    os.makedirs(os.path.join(at, "var/lib/apt/lists/partial"))
    umount(top)
    os.replace(tmp, img)
    return img


LIVE_CHROOT = r"""#!/bin/sh
# live-chroot DIR CMD...: CMD chrooted into DIR as if DIR were a running system's root: /proc,
# /sys and /dev mounted, DIR.run as its /run (kept between calls, like a real /run), all in a
# private mount namespace that ends with CMD. Used as ansible_chroot_exe. DIR is already the
# mount of the host's root subvolume: it is never bound onto itself (that would make the
# subvolume busy for a rollback's exchange).
dir=$1; shift
exec unshare --mount --propagation private /bin/sh -c '
  d=$1; shift
  mount -t proc proc "$d/proc" && mount --rbind /sys "$d/sys" && mount --make-rslave "$d/sys" &&
    mount --rbind /dev "$d/dev" && mount --make-rslave "$d/dev" && mount --bind "$d.run" "$d/run" || exit 125
  exec chroot "$d" "$@"' live-chroot "$dir" "$@"
"""


def live_chroot_exe(work):
    path = os.path.join(work, "live-chroot")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(LIVE_CHROOT)
        os.chmod(path, 0o755)
    return path


def live_chroot(root, argv, work, check=True, timeout=900):
    os.makedirs(root + ".run", exist_ok=True)
    return run([live_chroot_exe(work), root] + argv, check=check, timeout=timeout)


class HostDisk:
    """A host's own copy of the golden image, WORK/NAME/disk.img."""

    def __init__(self, name, golden, work):
        self.name = name
        self.work = work
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.img = os.path.join(self.dir, "disk.img")
        run(["cp", "--sparse=always", golden, self.img], timeout=1800)
        # Copies share the golden image's filesystem UUID: give each its own.
        run(["btrfstune", "-f", "-m", self.img])
        self.uuid = run(["blkid", "-o", "value", "-s", "UUID", self.img]).stdout.strip()

    def write_fstab(self, root):
        with open(os.path.join(root, "etc/fstab"), "w") as f:
            f.write(f"UUID={self.uuid} / btrfs subvol=@,defaults 0 0\n")


class Host(HostDisk):
    """A chroot host: a copy of the golden image, its @ mounted at WORK/NAME/root."""

    def __init__(self, name, golden, work):
        super().__init__(name, golden, work)
        self.root = os.path.join(self.dir, "root")
        mount_image(self.img, self.root, "subvol=@")
        os.makedirs(self.root + ".run", exist_ok=True)
        self.write_fstab(self.root)

    def sh(self, argv, check=True, timeout=900):
        return live_chroot(self.root, argv, self.work, check=check, timeout=timeout)

    def guard_json(self, *args, check=False):
        r = self.sh(["upgrade-guard", "--json"] + list(args), check=check)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, {"unparsed": r.stdout, "stderr": r.stderr}

    def version(self, package="ug-fleet"):
        r = self.sh(["dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", package], check=False)
        return r.stdout.strip()

    def upgrades_in_dpkg_log(self, package="ug-fleet"):
        try:
            with open(os.path.join(self.root, "var/log/dpkg.log")) as f:
                return [line.split()[3:6] for line in f if f" upgrade {package}:" in line]
        except FileNotFoundError:
            return []

    def subvolume_root_file(self, rel):
        """`rel` as subvolume @ holds it now (after a rollback swapped @, the mount at root still
        shows the replaced tree): read through a fresh mount of subvol=@."""
        where = os.path.join(self.dir, "fresh")
        mount_image(self.img, where, "subvol=@,ro")
        try:
            with open(os.path.join(where, rel), errors="replace") as f:
                return f.read()
        finally:
            umount(where)

    def subvolumes(self):
        where = os.path.join(self.dir, "top")
        mount_image(self.img, where, "subvolid=5,ro")
        try:
            return run(["btrfs", "subvolume", "list", where]).stdout
        finally:
            umount(where)


def inventory(path, hosts, work, host_vars=None):
    lines = ["[fleet]"]
    for h in hosts:
        extra = " ".join(f"{k}={v}" for k, v in (host_vars or {}).get(h.name, {}).items())
        lines.append(f"{h.name} ansible_host={h.root} {extra}".rstrip())
    lines += ["", "[fleet:vars]", "ansible_connection=community.general.chroot",
              f"ansible_chroot_exe={live_chroot_exe(work)}", "ansible_python_interpreter=/usr/bin/python3"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def playbook_env(work, report):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(COLLECTION, "examples", "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_CALLBACKS_ENABLED": "upgrade_guard.debian.fleet_report",
        "UPGRADE_GUARD_FLEET_REPORT": report,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_LOCAL_TEMP": os.path.join(work, "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": "/tmp/.ansible-remote",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("PYTHONPATH", None)
    return env


def playbook_argv(inv, deb, limit=None, extra=None):
    argv = ["/usr/bin/ansible-playbook", "-i", inv, SITE, "-e", f"upgrade_guard_deb={deb}",
            "-e", "upgrade_guard_reboot=false"]
    if extra:
        argv += ["-e", json.dumps(extra)]  # JSON: lists and booleans keep their types
    if limit:
        argv += ["--limit", limit]
    return argv


def play(work, inv, deb, name, limit=None, extra=None, timeout=1800):
    """Runs the example playbook; returns (exit code, output, the callback's JSON report)."""
    report = os.path.join(work, f"report-{name}.json")
    start = time.time()
    r = subprocess.run(playbook_argv(inv, deb, limit, extra), capture_output=True, text=True,
                       env=playbook_env(work, report), timeout=timeout)
    out = r.stdout + r.stderr
    with open(os.path.join(work, f"play-{name}.log"), "w") as f:
        f.write(out)
    log(f"play {name}: exit {r.returncode} in {time.time() - start:.0f} s")
    try:
        with open(report) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = None
    return r.returncode, out, data


class Failures:
    def __init__(self):
        self.items = []

    def expect(self, cond, what, context=""):
        if cond:
            log(f"ok: {what}")
        else:
            log(f"FAIL: {what}")
            if context:
                print(textwrap.indent(str(context)[-4000:], "    "), flush=True)
            self.items.append(what)


def verdict(report, host):
    try:
        return report["hosts"][host]["verdict"]
    except (TypeError, KeyError):
        return None


def hosts_test(work, deb):
    golden = golden_image(deb, work)
    t0 = time.time()
    names = ["c1", "c2", "c3", "c4", "c5"]
    hosts = {n: Host(n, golden, work) for n in names}
    log(f"{len(hosts)} hosts copied and mounted in {time.time() - t0:.0f} s")
    good = build_ug_fleet(work, "2.0")
    bad = build_ug_fleet(work, "2.0", lib=False)
    for n, h in hosts.items():
        publish(h.root, [bad if n == "c3" else good])
    inv = inventory(os.path.join(work, "inventory.ini"), hosts.values(), work,
                    {"c3": {"upgrade_guard_on_fail": "block-reboot"}})
    fail = Failures()

    # 1. The canary play: waves [c1] [c2] [c3] [c4 c5]; c3's upgrade breaks a library and closes
    # its gate, so the line stops there and c4, c5 are never upgraded.
    rc, out, rep = play(work, inv, deb, "canary")
    print(out[-6000:], flush=True)
    fail.expect(rc != 0, "the canary play fails (exit non-zero)", out[-2000:])
    fail.expect(verdict(rep, "c1") == "passed" and verdict(rep, "c2") == "passed", "c1, c2 passed", rep)
    fail.expect(verdict(rep, "c3") == "gate_closed", "c3: gate closed", rep)
    fail.expect(verdict(rep, "c4") == "not_reached" and verdict(rep, "c5") == "not_reached",
                "c4, c5: not reached", rep)
    fail.expect(bool(rep) and rep.get("stopped") is True, "the report says the line stopped", rep)
    fail.expect("not reached" in out and "gate closed" in out, "the table is printed", out[-3000:])
    for n in ("c1", "c2"):
        fail.expect(hosts[n].version().startswith("2.0 ii"), f"{n} has ug-fleet 2.0", hosts[n].version())
    fail.expect(hosts["c3"].version().startswith("2.0"), "c3 kept its upgrade (block-reboot)", hosts["c3"].version())
    for n in ("c4", "c5"):
        fail.expect(hosts[n].version().startswith("1.0 ii"), f"{n} untouched (ug-fleet 1.0)", hosts[n].version())
    rc3, gate3 = hosts["c3"].guard_json("gate", "status")
    fail.expect(rc3 == 1 and gate3.get("closed") is True, "c3's gate is closed", gate3)
    rc1, gate1 = hosts["c1"].guard_json("gate", "status")
    fail.expect(rc1 == 0 and gate1.get("closed") is False, "c1's gate is open", gate1)

    # 2. The gate already closed: c3 again is stopped before anything runs.
    before = hosts["c3"].upgrades_in_dpkg_log()
    rc, out, rep = play(work, inv, deb, "closed", limit="c3")
    fail.expect(rc != 0 and verdict(rep, "c3") == "gate_closed", "c3 again: gate closed, play failed", out[-3000:])
    fail.expect(hosts["c3"].upgrades_in_dpkg_log() == before, "c3 not upgraded again")

    # 3. A regression rolled back: c4 with on_fail rollback and the bad package.
    publish(hosts["c4"].root, [bad])
    inventory(inv, hosts.values(), work, {"c3": {"upgrade_guard_on_fail": "block-reboot"},
                                          "c4": {"upgrade_guard_on_fail": "rollback"}})
    rc, out, rep = play(work, inv, deb, "rollback", limit="c4")
    fail.expect(rc != 0 and verdict(rep, "c4") == "rolled_back", "c4: rolled back, play failed", out[-3000:])
    status = hosts["c4"].subvolume_root_file("var/lib/dpkg/status")
    fail.expect("Package: ug-fleet\nStatus: install ok installed" in status and "Version: 1.0" in
                status.split("Package: ug-fleet\n", 1)[-1][:400], "c4's root subvolume has ug-fleet 1.0 again")
    fail.expect("-broken" in hosts["c4"].subvolumes(), "c4's broken root is kept", hosts["c4"].subvolumes())

    # 4. Refused: c5 with dpkg interrupted (ug-fleet half-configured).
    status_path = os.path.join(hosts["c5"].root, "var/lib/dpkg/status")
    with open(status_path) as f:
        text = f.read()
    text = text.replace("Package: ug-fleet\nStatus: install ok installed", "Package: ug-fleet\nStatus: install ok half-configured")
    with open(status_path, "w") as f:
        f.write(text)
    rc, out, rep = play(work, inv, deb, "refused", limit="c5")
    fail.expect(rc != 0 and verdict(rep, "c5") == "refused", "c5: refused, play failed", out[-3000:])
    fail.expect(hosts["c5"].version().startswith("1.0 iF"), "c5 untouched (still half-configured 1.0)", hosts["c5"].version())

    # 5. ansible-playbook killed in the middle of c1's upgrade to 3.0 (its postinst sleeps),
    # then the same play again: the interrupted run is recovered and reported, and ug-fleet is
    # upgraded exactly once.
    slow = build_ug_fleet(work, "3.0", postinst="touch /var/tmp/ug-fleet-postinst; sleep 25")
    publish(hosts["c1"].root, [slow])
    report = os.path.join(work, "report-killed.json")
    p = subprocess.Popen(playbook_argv(inv, deb, "c1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=playbook_env(work, report), start_new_session=True)
    marker = os.path.join(hosts["c1"].root, "var/tmp/ug-fleet-postinst")
    deadline = time.time() + 600
    while not os.path.exists(marker) and time.time() < deadline and p.poll() is None:
        time.sleep(0.5)
    fail.expect(os.path.exists(marker), "c1's upgrade reached ug-fleet's postinst")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    log("ansible-playbook killed with its process group")
    facts = {}
    deadline = time.time() + 120
    while time.time() < deadline:
        r = hosts["c1"].sh(["/etc/ansible/facts.d/upgrade_guard.fact"], check=False)
        try:
            facts = json.loads(r.stdout)
        except ValueError:
            facts = {"unparsed": r.stdout}
        if facts.get("interrupted_runs") == 1:
            break
        time.sleep(1)
    fail.expect(facts.get("interrupted_runs") == 1, "c1's facts show the interrupted run", facts)
    rc, out, rep = play(work, inv, deb, "rerun", limit="c1")
    fail.expect(rc == 0, "the play run again passes", out[-3000:])
    fail.expect(bool(verdict(rep, "c1")) and "recovered" in verdict(rep, "c1"), "c1 reported as recovered", rep)
    fail.expect(hosts["c1"].version().startswith("3.0 ii"), "c1 has ug-fleet 3.0", hosts["c1"].version())
    ups = [u for u in hosts["c1"].upgrades_in_dpkg_log() if u[2] == "3.0"]
    fail.expect(len(ups) == 1, "c1 was upgraded to 3.0 exactly once", ups)
    _, facts = hosts["c1"].guard_json("gate", "status")
    fail.expect(facts.get("closed") is False, "c1's gate is open after the recovery", facts)
    return fail


def remove_unmounted(work):
    """Removes the work directory unless something is still mounted under it (a mount that would
    not go away): then it is left for a look rather than deleted through the mount."""
    with open("/proc/self/mountinfo") as f:
        busy = [line.split()[4] for line in f if line.split()[4].startswith(work + "/")]
    if busy:
        print(f"fleet: {work} kept: still mounted: {' '.join(busy)}", file=sys.stderr)
        return
    shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("hosts", "reboot"):
        print(__doc__)
        sys.exit(2)
    check_prerequisites()
    deb = package_under_test()
    work = tempfile.mkdtemp(prefix="ug-fleet.", dir="/var/tmp")
    if os.environ.get("UG_FLEET_KEEP"):
        log(f"work directory kept: {work}")
    else:
        CLEANUP.steps.insert(0, ("remove the work directory", lambda: remove_unmounted(work)))
    t0 = time.time()
    fail = hosts_test(work, deb) if sys.argv[1] == "hosts" else reboot_test(work, deb)
    log(f"{sys.argv[1]}: {time.time() - t0:.0f} s, {len(fail.items)} failed")
    for item in fail.items:
        print(f"  FAILED: {item}")
    sys.exit(1 if fail.items else 0)


# --- booted hosts ------------------------------------------------------------------------------

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class BootedHost(HostDisk):
    """A host booted with systemd-nspawn -b from subvolume @ of its own btrfs image, sshd on a
    port of its own on 127.0.0.1 (nspawn shares the host's network). A supervisor boots it
    again each time it reboots (nspawn exits 133), from the same path, which after a
    rollback's exchange names the restored root, as a real machine's next boot would."""

    def __init__(self, name, golden, work, key):
        super().__init__(name, golden, work)
        self.top = os.path.join(self.dir, "top")
        mount_image(self.img, self.top, "subvolid=5")
        self.root = os.path.join(self.top, "@")
        self.device = run(["findmnt", "-n", "-o", "SOURCE", "--target", self.top]).stdout.strip().split("[")[0]
        self.write_fstab(self.root)
        self.port = free_port()
        self.write("etc/ssh/sshd_config.d/ug-fleet.conf",
                   f"Port {self.port}\nListenAddress 127.0.0.1\nPermitRootLogin prohibit-password\nUseDNS no\n")
        os.makedirs(os.path.join(self.root, "root/.ssh"), mode=0o700, exist_ok=True)
        self.write("root/.ssh/authorized_keys", open(key + ".pub").read(), 0o600)
        self.write("etc/hostname", name + "\n")
        # ug-app: a required service that fails once /etc/ug-fleet/broken exists.
        self.write("usr/local/bin/ug-app", "#!/bin/sh\ntest ! -e /etc/ug-fleet/broken\n", 0o755)
        self.write("etc/systemd/system/ug-app.service",
                   "[Unit]\nDescription=fleet test application\n\n[Service]\nType=oneshot\n"
                   "RemainAfterExit=yes\nExecStart=/usr/local/bin/ug-app\n\n[Install]\nWantedBy=multi-user.target\n")
        wants = os.path.join(self.root, "etc/systemd/system/multi-user.target.wants")
        os.makedirs(wants, exist_ok=True)
        os.symlink("/etc/systemd/system/ug-app.service", os.path.join(wants, "ug-app.service"))
        os.makedirs(os.path.join(self.root, "var/log/journal"), exist_ok=True)
        self.console = os.path.join(self.dir, "console.log")
        self.stop_file = os.path.join(self.dir, "stop")
        self.supervisor = None

    def write(self, rel, text, mode=0o644):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def boot(self):
        script = textwrap.dedent(f"""\
            mount -t tmpfs tmpfs /run/systemd/nspawn || exit 1
            boots=0
            while [ ! -e {self.stop_file} ]; do
              boots=$((boots + 1)); echo "=== boot $boots $(date +%T)" >>{self.console}
              systemd-nspawn -q --register=no --keep-unit -M {self.name} -D {self.root} -b \\
                --console=passive --bind={self.device} >>{self.console} 2>&1
              rc=$?; echo "=== nspawn exit $rc" >>{self.console}
              [ $rc -eq 133 ] || break
            done
            """)
        os.makedirs("/run/systemd/nspawn", exist_ok=True)
        self.supervisor = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                           start_new_session=True)
        CLEANUP.push(f"stop {self.name}", self.shutdown)

    def nspawn(self):
        for pid in children(self.supervisor.pid):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"systemd-nspawn" in f.read():
                    return pid
        return None

    def wait_ssh(self, key, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = subprocess.run(ssh_argv(self, key) + ["true"], capture_output=True, timeout=30)
            if r.returncode == 0:
                return True
            time.sleep(2)
        return False

    def shutdown(self):
        if self.supervisor is None:
            return
        open(self.stop_file, "w").close()
        deadline = time.time() + 60
        while self.supervisor.poll() is None and time.time() < deadline:
            n = self.nspawn()
            if n:
                os.kill(n, signal.SIGTERM)  # a clean halt
            time.sleep(2)
        if self.supervisor.poll() is None:
            n = self.nspawn()
            for pid in children(n) if n else []:
                os.kill(pid, signal.SIGKILL)  # the container's init: every process in it
            os.killpg(self.supervisor.pid, signal.SIGKILL)
            self.supervisor.wait()
        self.supervisor = None

    def boots(self):
        try:
            return open(self.console, errors="replace").read().count("=== boot ")
        except OSError:
            return 0

    def file(self, rel):
        """`rel` in subvolume @ as it is now (the path names the restored root after a rollback)."""
        try:
            with open(os.path.join(self.root, rel), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def ssh_argv(host, key):
    return ["ssh", "-i", key, "-p", str(host.port), "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o",
            "LogLevel=ERROR", "root@127.0.0.1"]


def package_version(status_text, package):
    for block in status_text.split("\n\n"):
        if f"Package: {package}\n" in block + "\n":
            for line in block.splitlines():
                if line.startswith("Version: "):
                    return line[len("Version: "):]
    return None


def reboot_test(work, deb):
    if shutil.which("systemd-nspawn") is None or shutil.which("ssh") is None:
        skip("needs systemd-nspawn and ssh (systemd-container, openssh-client)")
    golden = golden_image(deb, work)
    key = os.path.join(work, "id_ed25519")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    hosts = {n: BootedHost(n, golden, work, key) for n in ("r1", "r2")}
    # ug-fleet 2.0 asks for a reboot as a kernel's postinst does; r2's also breaks ug-app, a
    # required service, which only the next boot shows: the checks pass, the trial boot fails.
    notify = "touch /run/reboot-required"
    good = build_ug_fleet(work, "2.0", postinst=notify)
    breaking = build_ug_fleet(work, "2.0", postinst=notify + "; mkdir -p /etc/ug-fleet; touch /etc/ug-fleet/broken")
    publish(hosts["r1"].root, [good])
    publish(hosts["r2"].root, [breaking])
    fail = Failures()
    t0 = time.time()
    for h in hosts.values():
        h.boot()
    for h in hosts.values():
        fail.expect(h.wait_ssh(key), f"{h.name} boots and answers ssh on port {h.port}", open(h.console).read()[-3000:])
    log(f"booted in {time.time() - t0:.0f} s")
    if fail.items:
        return fail
    inv = os.path.join(work, "inventory.ini")
    with open(inv, "w") as f:
        f.write("[fleet]\n")
        for h in hosts.values():
            f.write(f"{h.name} ansible_host=127.0.0.1 ansible_port={h.port}\n")
        f.write("\n[fleet:vars]\nansible_user=root\n"
                f"ansible_ssh_private_key_file={key}\n"
                "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
                "ansible_python_interpreter=/usr/bin/python3\n")
    rc, out, rep = play(work, inv, deb, "reboot", extra={
        "upgrade_guard_reboot": True, "upgrade_guard_required_services": ["ug-app.service"],
        "upgrade_guard_on_fail": "rollback"})
    print(out[-8000:], flush=True)
    r1, r2 = hosts["r1"], hosts["r2"]
    fail.expect(rc != 0, "the play fails (r2's trial boot was rolled back)", out[-2000:])
    fail.expect(verdict(rep, "r1") == "passed", "r1 passed (rebooted, trial blessed)", rep)
    fail.expect(verdict(rep, "r2") == "rolled_back", "r2 rolled back", rep)
    fail.expect(r1.boots() == 2, "r1 booted twice (the reboot into its trial)", r1.boots())
    fail.expect(r2.boots() == 3, "r2 booted three times (trial, then the restored root)", r2.boots())
    fail.expect(package_version(r1.file("var/lib/dpkg/status"), "ug-fleet") == "2.0", "r1 runs ug-fleet 2.0")
    fail.expect(package_version(r2.file("var/lib/dpkg/status"), "ug-fleet") == "1.0",
                "r2's root is the pre-upgrade one (ug-fleet 1.0)")
    fail.expect(not os.path.exists(os.path.join(r2.root, "etc/ug-fleet/broken")), "r2's /etc/ug-fleet/broken is gone")
    kept = os.path.join(r2.top, "@upgrade-guard")
    broken = [e for e in os.listdir(kept) if e.endswith("-broken") and os.path.isdir(os.path.join(kept, e))] \
        if os.path.isdir(kept) else []
    fail.expect(len(broken) == 1, "r2's broken root is kept", broken)
    st = subprocess.run(ssh_argv(r1, key) + ["upgrade-guard", "--json", "boot-check", "--status"],
                        capture_output=True, text=True, timeout=60)
    fail.expect(st.returncode == 0 and '"blessed"' in st.stdout, "r1: boot-check --status says blessed", st.stdout)
    return fail


if __name__ == "__main__":
    main()
