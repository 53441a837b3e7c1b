#include "tests/vm/vm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "tests/common/test_env.h"

namespace guard::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";

// Runs argv on the host; fails unless it exits 0, and returns its stdout.
base::Result<std::string> host(const std::vector<std::string>& argv, int timeout_seconds = 600,
                               const std::map<std::string, std::string>& env = {}) {
  auto r = run(argv, timeout_seconds, env);
  if (!r.ok()) return base::fail(argv.front(), "", r.describe() + ": " + r.err + r.out);
  return r.out;
}

std::string last_line(const std::string& text) {
  auto lines = base::split(base::trim(text), '\n');
  return lines.empty() ? std::string() : std::string(lines.back());
}

constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kBase64[n & 63] : '=';
  }
  return out;
}

std::string base64_decode(std::string_view in) {
  std::string out;
  std::uint32_t n = 0;
  int bits = 0;
  for (char c : in) {
    auto at = kBase64.find(c);
    if (at == std::string_view::npos) continue;  // '=' and line breaks
    n = (n << 6) | static_cast<std::uint32_t>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((n >> bits) & 0xff);
    }
  }
  return out;
}

milliseconds left(steady_clock::time_point deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
}

}  // namespace

std::string GuestResult::describe() const {
  std::string head = timed_out ? "timed out" : "exit " + std::to_string(exit_code);
  return head + ": " + err + out;
}

std::string vm_unavailable() {
  if (!is_root()) return "the vm tests need root (loop devices, mounts)";
  if (::access(kQemu, X_OK) != 0 || ::access("/usr/bin/qemu-img", X_OK) != 0)
    return "the vm tests need qemu-system-x86 and qemu-utils (scripts/install-deps)";
  if (::access("/dev/loop-control", F_OK) != 0) return "the vm tests need loop devices (/dev/loop-control)";
  return "";
}

base::Result<std::string> vm_image(const std::string& layout) {
  static std::map<std::string, std::string> built;
  if (auto it = built.find(layout); it != built.end()) return it->second;
  const std::string src = UG_SOURCE_DIR;
  // A trixie guest needs the package built for trixie (its libraries differ).
  auto debs = layout.starts_with("trixie-")
                  ? host({src + "/scripts/build-deb-trixie", std::string(UG_PACKAGE_DIR) + "-trixie"}, 3600)
                  : host({src + "/scripts/test-packages", UG_PACKAGE_DIR}, 3600, {{"UG_ONLY_CURRENT", "1"}});
  if (!debs) return base::fail(debs.error());
  std::string deb(base::trim(base::split(*debs, '\n').front()));
  auto image = host({src + "/scripts/test-vm-image", layout, deb}, 3600);
  if (!image) return base::fail(image.error());
  return built[layout] = last_line(*image);
}

base::Result<std::unique_ptr<Vm>> Vm::create(const std::string& image, const std::string& dir, bool uefi) {
  std::string disk = dir + "/disk.qcow2";
  if (auto r = host({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, disk}, 60); !r)
    return base::fail(r.error());
  return std::unique_ptr<Vm>(new Vm(dir, disk, uefi));
}

Vm::~Vm() { kill(); }

bool Vm::running() {
  if (qemu_ < 0) return false;
  int status = 0;
  pid_t r = ::waitpid(qemu_, &status, WNOHANG);
  if (r == 0) return true;
  qemu_ = -1;  // reaped (or not ours any more)
  agent_.reset();
  return false;
}

void Vm::kill() {
  if (qemu_ < 0) return;
  ::kill(qemu_, SIGKILL);
  int status = 0;
  ::waitpid(qemu_, &status, 0);
  qemu_ = -1;
  agent_.reset();
}

bool Vm::wait_down(seconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (running()) {
    if (left(deadline).count() <= 0) return false;
    std::this_thread::sleep_for(milliseconds(250));
  }
  return true;
}

base::Result<void> Vm::start() {
  if (running()) return base::fail("qemu", disk_, "the VM is running already");
  ++boots_;
  const std::string n = std::to_string(boots_);
  const std::string socket = dir_ + "/agent-" + n + ".sock";
  const std::string log = dir_ + "/qemu-" + n + ".log";
  std::vector<std::string> args{kQemu,
                                "-machine", "pc", "-accel", "tcg", "-smp", "2", "-m", "2048",
                                "-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
                                "-drive", "file=" + disk_ + ",if=virtio,format=qcow2",
                                "-serial", "file:" + dir_ + "/console-" + n + ".log",
                                "-chardev", "socket,path=" + socket + ",server=on,wait=off,id=agent",
                                "-device", "virtio-serial",
                                "-device", "virtserialport,chardev=agent,name=org.qemu.guest_agent.0"};
  if (uefi_) args.insert(args.end(), {"-bios", "/usr/share/ovmf/OVMF.fd"});
  base::UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return base::fail_errno("open", log);
  base::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) return base::fail_errno("open", "/dev/null");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return base::fail_errno("fork", "");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the test died: so does its VM
    ::dup2(null.get(), STDIN_FILENO);
    ::dup2(out.get(), STDOUT_FILENO);
    ::dup2(out.get(), STDERR_FILENO);
    ::execv(kQemu, argv.data());
    ::_exit(127);
  }
  qemu_ = pid;
  pending_.clear();
  return {};
}

base::Result<void> Vm::connect_agent(steady_clock::time_point deadline) {
  const std::string path = dir_ + "/agent-" + std::to_string(boots_) + ".sock";
  while (!agent_) {
    if (!running()) return base::fail("qemu", disk_, "qemu exited before its agent socket was there");
    if (left(deadline).count() <= 0) return base::fail("connect", path, "no agent socket");
    base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      agent_ = std::move(fd);
    } else {
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  // The agent starts late in the boot; until then what we send is lost. Sync again and again:
  // 0xff resets the agent's parser, and its answer starts with 0xff too.
  for (int id = 1;; ++id) {
    if (!running()) return base::fail("qemu", disk_, "the guest went down before its agent answered");
    if (left(deadline).count() <= 0) return base::fail("guest agent", disk_, "no answer to guest-sync");
    const int sync_id = 4711000 + id;
    std::string request = "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":" +
                          std::to_string(sync_id) + "}}\n";
    if (::write(agent_.get(), request.data(), request.size()) < 0) return base::fail_errno("write", "guest agent");
    const auto until = std::min(deadline, steady_clock::now() + seconds(3));
    while (left(until).count() > 0) {
      pollfd p{agent_.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(agent_.get(), buf, sizeof(buf));
      if (n <= 0) return base::fail("read", "guest agent", "the agent socket closed");
      pending_.append(buf, static_cast<std::size_t>(n));
      auto mark = pending_.rfind('\xff');
      if (mark == std::string::npos) continue;
      auto end = pending_.find('\n', mark);
      if (end == std::string::npos) continue;
      auto answer = json::parse(pending_.substr(mark + 1, end - mark - 1), nullptr, false);
      pending_.erase(0, end + 1);
      if (!answer.is_discarded() && answer.value("return", 0) == sync_id) return {};
    }
  }
}

base::Result<std::string> Vm::agent(const std::string& request, milliseconds timeout) {
  if (!agent_) return base::fail("guest agent", disk_, "not connected (the guest is down)");
  std::string line = request + "\n";
  if (::write(agent_.get(), line.data(), line.size()) < 0) return base::fail_errno("write", "guest agent");
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    for (auto end = pending_.find('\n'); end != std::string::npos; end = pending_.find('\n')) {
      auto answer = json::parse(pending_.substr(0, end), nullptr, false);
      pending_.erase(0, end + 1);
      if (answer.is_discarded() || !answer.is_object()) continue;
      if (answer.contains("error")) return base::fail("guest agent", request, answer["error"].dump());
      if (answer.contains("return")) return answer["return"].dump();
    }
    if (!running()) return base::fail("guest agent", request, "the guest went down");
    if (left(deadline).count() <= 0) return base::fail("guest agent", request, "no answer");
    pollfd p{agent_.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(agent_.get(), buf, sizeof(buf));
    if (n <= 0) {
      agent_.reset();
      return base::fail("read", "guest agent", "the agent socket closed");
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

GuestResult Vm::sh(const std::string& script, seconds timeout, const std::string& input) {
  GuestResult result;
  json args = {{"path", "/bin/sh"},
               {"arg", {"-c", script}},
               {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                        "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}},
               {"capture-output", true}};
  if (!input.empty()) args["input-data"] = base64_encode(input);
  auto started = agent(json{{"execute", "guest-exec"}, {"arguments", args}}.dump(), seconds(30));
  if (!started) {
    result.err = started.error().to_string();
    return result;
  }
  const int pid = json::parse(*started).value("pid", -1);
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto status = agent(json{{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}}.dump(), seconds(30));
    if (!status) {
      result.err = status.error().to_string();
      return result;
    }
    auto s = json::parse(*status);
    if (s.value("exited", false)) {
      result.exit_code = s.contains("exitcode") ? s["exitcode"].get<int>() : -1;
      result.out = base64_decode(s.value("out-data", ""));
      result.err = base64_decode(s.value("err-data", ""));
      if (s.contains("signal")) result.err += "\nkilled by signal " + std::to_string(s["signal"].get<int>());
      return result;
    }
    if (left(deadline).count() <= 0) {
      result.timed_out = true;
      (void)agent(json{{"execute", "guest-exec"},
                       {"arguments", {{"path", "/bin/kill"}, {"arg", {"-9", std::to_string(pid)}}}}}
                      .dump(),
                  seconds(10));
      return result;
    }
    std::this_thread::sleep_for(milliseconds(300));
  }
}

base::Result<void> Vm::put(const std::string& path, const std::string& content) {
  auto r = sh("mkdir -p \"$(dirname '" + path + "')\" && cat >'" + path + "'", seconds(60), content);
  if (!r.ok()) return base::fail("put", path, r.describe());
  return {};
}

base::Result<void> Vm::boot(seconds timeout) {
  const auto t0 = steady_clock::now();
  const auto deadline = t0 + timeout;
  auto failed = [this](const base::Error& e) {
    kill();
    return base::fail("boot " + std::to_string(boots_), disk_, e.to_string() + "; console:\n" + console_tail());
  };
  if (auto s = start(); !s) return base::fail(s.error());
  if (auto c = connect_agent(deadline); !c) return failed(c.error());
  std::string state;
  while (state != "running" && state != "degraded") {
    auto remaining = std::chrono::duration_cast<seconds>(left(deadline));
    if (remaining.count() <= 0) return failed(base::Error{"systemctl is-system-running", "", 0, "state " + state});
    auto r = sh("systemctl is-system-running --wait", remaining);
    if (r.exit_code < 0 && !r.timed_out && !running()) return failed(base::Error{"guest", "", 0, r.err});
    state = std::string(base::trim(r.out));
    if (state != "running" && state != "degraded") std::this_thread::sleep_for(milliseconds(500));
  }
  ready_times_.push_back(std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0));
  return {};
}

base::Result<void> Vm::reboot(const std::vector<std::string>& argv, seconds down_timeout) {
  // Fire and forget: the agent dies with the guest, so nobody waits for the command's status.
  json args = {{"path", argv.front()}, {"arg", std::vector<std::string>(argv.begin() + 1, argv.end())}};
  auto r = agent(json{{"execute", "guest-exec"}, {"arguments", args}}.dump(), seconds(30));
  if (!r) return base::fail(r.error());
  if (!wait_down(down_timeout)) {
    return base::fail(argv.front(), disk_,
                      "the guest is still up " + std::to_string(down_timeout.count()) + "s after the reboot");
  }
  return boot();
}

std::string Vm::console(int boot) const { return read_file(dir_ + "/console-" + std::to_string(boot) + ".log"); }

std::string Vm::console_tail(std::size_t lines) const {
  std::string text = console(boots_);
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n) at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

base::Result<std::unique_ptr<DiskView>> DiskView::open(const std::string& qcow2, const std::string& dir) {
  std::unique_ptr<DiskView> view(new DiskView(dir));
  make_dirs(dir + "/top");
  view->raw_ = dir + "/disk.raw";
  if (auto c = host({"qemu-img", "convert", "-O", "raw", qcow2, view->raw_}, 600); !c) return base::fail(c.error());
  // The btrfs partition (the root) and an ext4 one (a separate /boot), by what blkid finds in each.
  auto table = host({"sfdisk", "--json", view->raw_}, 60);
  if (!table) return base::fail(table.error());
  auto parts = json::parse(*table, nullptr, false);
  if (parts.is_discarded()) return base::fail("sfdisk", view->raw_, "unreadable partition table");
  for (const auto& part : parts["partitiontable"]["partitions"]) {
    const std::uint64_t offset = part.value("start", 0ULL) * 512, size = part.value("size", 0ULL) * 512;
    auto type = host({"blkid", "-p", "-O", std::to_string(offset), "-s", "TYPE", "-o", "value", view->raw_}, 60);
    std::string fstype = type ? std::string(base::trim(*type)) : std::string();
    if (fstype != "btrfs" && fstype != "ext4") continue;
    auto loop = host({"losetup", "--find", "--show", "--read-only", "--offset", std::to_string(offset), "--sizelimit",
                      std::to_string(size), view->raw_},
                     60);
    if (!loop) return base::fail(loop.error());
    std::string dev(base::trim(*loop));
    view->loops_.push_back(dev);
    std::string target = dir + (fstype == "btrfs" ? "/top" : "/boot");
    make_dirs(target);
    if (auto m = host({"mount", "-o", fstype == "btrfs" ? "ro,subvolid=5" : "ro,noload", dev, target}, 60); !m)
      return base::fail(m.error());
    view->mounts_.push_back(target);
    (fstype == "btrfs" ? view->top_ : view->boot_) = target;
  }
  if (view->top_.empty()) return base::fail("blkid", view->raw_, "no btrfs partition on the disk");
  return view;
}

DiskView::~DiskView() {
  for (const auto& m : mounts_) {
    if (!run({"umount", m}, 60).ok()) (void)run({"umount", "-l", m}, 60);
  }
  for (const auto& l : loops_) (void)run({"losetup", "-d", l}, 60);
  std::error_code ec;
  if (!raw_.empty()) fs::remove(raw_, ec);
}

}  // namespace guard::testing
