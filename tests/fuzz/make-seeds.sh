#!/usr/bin/env bash
# Regenerates the committed seed corpus tests/fuzz/corpus/<target>/ from the cached
# debootstrapped roots (scripts/test-root) and a few hand-written samples: a handful of small
# files per target, big files cut to their first stanzas. ELF seeds are not committed (no
# binaries in git): tests/fuzz/CMakeLists.txt compiles them from elf_seed.c at build time.
#   tests/fuzz/make-seeds.sh [ROOTS_DIR]   (default /var/cache/upgrade-guard-tests/roots)
set -euo pipefail

roots=${1:-/var/cache/upgrade-guard-tests/roots}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/corpus
for r in minbase server trixie-minbase trixie-server; do
  [ -d "$roots/$r/var/lib/dpkg" ] || { echo "make-seeds: $roots/$r missing (run scripts/test-root)" >&2; exit 4; }
done
rm -rf "$out"
for t in dpkg_status dpkg_diversions dpkg_list dpkg_md5sums dpkg_version ld_so_cache ld_so_conf grub_cfg \
         grubenv bls fstab unit_file gate_file policy pam nsswitch initramfs decompress apt_conf; do
  mkdir -p "$out/$t"
done
seed() {  # seed TARGET NAME < bytes
  mkdir -p "$out/$1"
  cat >"$out/$1/$2"
}
# The first N stanzas of a deb822 file.
stanzas() { awk -v n="$1" 'BEGIN{RS=""; ORS="\n\n"} NR<=n' "$2"; }
# The stanza of package $1.
stanza() { awk -v p="Package: $1" 'BEGIN{RS=""; ORS="\n\n"} index($0, p "\n")==1' "$2"; }

for r in minbase trixie-server; do
  st=$roots/$r/var/lib/dpkg/status
  stanzas 3 "$st" | seed dpkg_status "$r-first"
  { stanza libc6 "$st"; stanza base-files "$st"; stanza openssh-server "$st"; stanza dash "$st"; } | seed dpkg_status "$r-picked"
  seed dpkg_diversions "$r" <"$roots/$r/var/lib/dpkg/diversions"
  for p in dash base-files; do
    seed dpkg_list "$r-$p" <"$roots/$r/var/lib/dpkg/info/$p.list"
    seed dpkg_md5sums "$r-$p" <"$roots/$r/var/lib/dpkg/info/$p.md5sums"
  done
  seed dpkg_list "$r-dpkg.cfg" < <(cat "$roots/$r/etc/dpkg/dpkg.cfg" "$roots/$r"/etc/dpkg/dpkg.cfg.d/* 2>/dev/null)
  seed ld_so_cache "$r" <"$roots/$r/etc/ld.so.cache"
  seed ld_so_conf "$r" < <(cat "$roots/$r/etc/ld.so.conf" "$roots/$r"/etc/ld.so.conf.d/*.conf)
  seed fstab "$r" <"$roots/$r/etc/fstab"
  seed nsswitch "$r" <"$roots/$r/etc/nsswitch.conf"
  for f in common-auth common-session login su; do seed pam "$r-$f" <"$roots/$r/etc/pam.d/$f"; done
  for f in "$roots/$r"/etc/apt/apt.conf.d/*; do seed apt_conf "$r-$(basename "$f")" <"$f"; done
done
seed pam server-sshd <"$roots/server/etc/pam.d/sshd"
# Versions: each file is "a\0b\0c" (the target splits at NUL).
awk '/^Version: /{print $2}' "$roots/server/var/lib/dpkg/status" | sort -u | head -60 >/tmp/ug-versions.$$
i=0
while read -r a && read -r b && read -r c; do
  i=$((i + 1))
  printf '%s\0%s\0%s' "$a" "$b" "$c" | seed dpkg_version "real-$i"
  [ $i -ge 6 ] && break
done </tmp/ug-versions.$$
rm -f /tmp/ug-versions.$$
printf '1.0~rc1-1\0001.0-1\0001:0.9' | seed dpkg_version tilde-epoch
printf '2.36-9+deb12u4\0002.36-9+deb12u10\0002.36-9' | seed dpkg_version revisions
printf '0:1.2.3a~b.c+d-e.f~g\0001.2.3a~b.c+d-e.f~~\0001.2.3a' | seed dpkg_version odd

for u in ssh.service cron.service systemd-journald.service systemd-journald.socket \
         systemd-tmpfiles-clean.timer tmp.mount; do
  for r in trixie-server server; do
    f=$roots/$r/lib/systemd/system/$u
    [ -f "$f" ] && { seed unit_file "$u" <"$f"; break; }
  done
done
printf '[Service]\nExecStart=\nExecStart=-/usr/sbin/sshd -D $SSHD_OPTS \\\n  -o Foo=bar\n[Unit]\nRequires=a.service b.service\n' |
  seed unit_file drop-in.conf

cat >"$out/fstab/layout" <<'FSTAB'
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=1b2c3d4e-0000-4000-8000-000000000001 /               btrfs   defaults,subvol=@rootfs 0       0
UUID=1b2c3d4e-0000-4000-8000-000000000002 /boot           ext4    defaults        0       2
UUID=ABCD-1234  /boot/efi       vfat    umask=0077      0       1
LABEL=swap none swap sw 0 0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
srv:/export /mnt/nfs nfs4 _netdev,nofail,x-systemd.automount 0 0
tmpfs /tmp tmpfs size=10%,mode=1777 0 0
/dev/disk/by-id/foo\040bar /mnt/a\040b ext4 defaults 0 0
FSTAB

# grub.cfg: the unit tests' update-grub-shaped samples.
python3 - "$here/../unit/formats/grub_cfg_samples.h" "$out/grub_cfg" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
os.makedirs(sys.argv[2], exist_ok=True)
for name, body in re.findall(r'constexpr const char\* (k\w+) = R"CFG\((.*?)\)CFG"', text, re.S):
    open(os.path.join(sys.argv[2], name[1:]), "w").write(body)
PY

cat >"$out/grub_cfg/submenus" <<'CFG'
set default="1>2"
set timeout=5
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-1b2c' {
	insmod gzio
	search --no-floppy --fs-uuid --set=root 1b2c
	linux	/boot/vmlinuz-6.1.0-13-amd64 root=UUID=1b2c ro rootflags=subvol=@rootfs quiet
	initrd	/boot/initrd.img-6.1.0-13-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-1b2c' {
	menuentry "Debian, with Linux ${version}" --id "gnulinux-${version}-advanced" {
		set root='(hd0,gpt2)'
		linux (hd0,gpt2)/vmlinuz-6.1.0-13-amd64 root=/dev/sda2 "quoted arg" 'single' \
		  escaped\ space
		initrd /initrd.img-6.1.0-13-amd64 /intel-ucode.img; echo done
	}
	if [ "${grub_platform}" = "efi" ]; then menuentry 'UEFI Firmware Settings' { fwsetup; } else true; fi
}
function f { linux /nope; }
CFG

# grubenv: GRUB's own writer.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grub-editenv "$tmp/env" create
cp "$tmp/env" "$out/grubenv/empty"
grub-editenv "$tmp/env" set saved_entry='gnulinux-advanced-1b2c>gnulinux-6.1.0-13-amd64-advanced-1b2c' \
  next_entry=1 boot_success=0 boot_indeterminate=1
cp "$tmp/env" "$out/grubenv/set"

cat >"$out/bls/debian.conf" <<'BLS'
# Boot Loader Specification type #1 entry
title      Debian GNU/Linux 12 (bookworm)
version    6.1.0-13-amd64
machine-id 6a9857a393724b7a981ebb5b8495b9ea
sort-key   debian
options    root=UUID=1b2c3d4e-0000-4000-8000-000000000001 ro quiet
linux      /6a9857a393724b7a981ebb5b8495b9ea/6.1.0-13-amd64/linux
initrd     /6a9857a393724b7a981ebb5b8495b9ea/6.1.0-13-amd64/initrd.img-6.1.0-13-amd64
initrd     /intel-ucode.img
BLS
printf 'title UKI\nefi /EFI/Linux/debian.efi\ndevicetree /dtb/board.dtb\noptions a\noptions b\n' | seed bls uki.conf

printf 'closed\nreason=3 new blocking findings after `apt-get -y upgrade`; reboot gate closed\nrun=12\n' | seed gate_file closed
printf 'open\n' | seed gate_file open
printf 'closed\nreason=\nrun=-1\nrun=9223372036854775807\n' | seed gate_file odd

seed policy default.toml <"$here/../../policies/default.toml"
cat >"$out/policy/small.toml" <<'TOML'
[snapshot]
keep = 3
[[custom]]
name = "nginx config"
command = ["/usr/sbin/nginx", "-t"]
TOML

# initramfs: a newc cpio of a few small files, plain and compressed, and concatenated the way
# Debian's initrd is (an uncompressed microcode cpio, then a compressed one).
mkdir -p "$tmp/tree/etc" "$tmp/tree/usr/lib" "$tmp/tree/kernel/x86/microcode"
printf '#!/bin/sh\nexec /sbin/init\n' >"$tmp/tree/init"
chmod 755 "$tmp/tree/init"
cp "$roots/minbase/etc/nsswitch.conf" "$tmp/tree/etc/"
ln -s usr/lib "$tmp/tree/lib"
printf 'microcode' >"$tmp/tree/kernel/x86/microcode/GenuineIntel.bin"
(cd "$tmp/tree" && find kernel | LC_ALL=C sort | cpio -o -H newc --quiet) >"$tmp/early.cpio"
(cd "$tmp/tree" && find . ! -path './kernel*' | LC_ALL=C sort | cpio -o -H newc --quiet) >"$tmp/main.cpio"
cp "$tmp/main.cpio" "$out/initramfs/plain.cpio"
gzip -9n <"$tmp/main.cpio" >"$out/initramfs/main.cpio.gz"
cat "$tmp/early.cpio" <(zstd -q -19 <"$tmp/main.cpio") >"$out/initramfs/debian-like"
xz -q --check=crc32 <"$tmp/main.cpio" >"$out/initramfs/main.cpio.xz"
lz4 -q -l <"$tmp/main.cpio" >"$out/initramfs/main.cpio.lz4"
# decompress: the first byte picks the format (0 gzip, 1 zstd, 2 xz, 3 lzma, 4 lz4 legacy).
src=$roots/minbase/etc/nsswitch.conf
{ printf '\0'; gzip -9n <"$src"; } >"$out/decompress/gzip"
{ printf '\1'; zstd -q <"$src"; } >"$out/decompress/zstd"
{ printf '\2'; xz -q <"$src"; } >"$out/decompress/xz"
{ printf '\3'; xz -q --format=lzma <"$src"; } >"$out/decompress/lzma"
{ printf '\4'; lz4 -q -l <"$src"; } >"$out/decompress/lz4"

du -sh "$out"
