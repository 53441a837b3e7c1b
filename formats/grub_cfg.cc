#include "formats/grub_cfg.h"

#include <sys/stat.h>

#include <cctype>
#include <charconv>

#include "base/strings.h"

namespace guard::formats {
namespace {

struct Word {
  std::string text;
  bool unresolved = false;  // held a variable we could not expand
  bool quoted = false;      // any part was quoted (then "{" is not a brace)
};

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// Splits grub.cfg into commands of words; reports braces as separate events.
class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) { frames_.push_back(Frame{}); }

  GrubConfig run() {
    std::vector<Word> words;
    Word cur;
    bool in_word = false;
    std::size_t cmd_line = 1;
    auto end_word = [&] {
      if (in_word) words.push_back(std::move(cur));
      cur = Word{};
      in_word = false;
    };
    auto end_command = [&] {
      end_word();
      if (!words.empty()) command(words, cmd_line);
      words.clear();
    };
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (words.empty() && !in_word) cmd_line = line_;
      if (c == '\n') {
        end_command();
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        end_word();
        ++pos_;
      } else if (c == ';') {
        end_command();
        ++pos_;
      } else if (c == '#' && !in_word) {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else if ((c == '{' || c == '}') && !in_word && at_word_end(pos_ + 1)) {
        ++pos_;
        if (c == '{') {
          end_word();
          open_block(words, cmd_line);
          words.clear();
        } else {
          end_command();
          close_block();
        }
      } else if (c == '\'') {
        in_word = true;
        cur.quoted = true;
        ++pos_;
        while (pos_ < src_.size() && src_[pos_] != '\'') {
          if (src_[pos_] == '\n') ++line_;
          cur.text += src_[pos_++];
        }
        ++pos_;
      } else if (c == '"') {
        in_word = true;
        cur.quoted = true;
        ++pos_;
        while (pos_ < src_.size() && src_[pos_] != '"') {
          char d = src_[pos_];
          if (d == '\\' && pos_ + 1 < src_.size() &&
              std::string_view("$\"\\\n").find(src_[pos_ + 1]) != std::string_view::npos) {
            if (src_[pos_ + 1] != '\n')
              cur.text += src_[pos_ + 1];
            else
              ++line_;
            pos_ += 2;
          } else if (d == '$') {
            expand(cur);
          } else {
            if (d == '\n') ++line_;
            cur.text += d;
            ++pos_;
          }
        }
        ++pos_;
      } else if (c == '\\') {
        in_word = true;
        if (pos_ + 1 < src_.size()) {
          if (src_[pos_ + 1] == '\n') {
            ++line_;
          } else {
            cur.text += src_[pos_ + 1];
          }
        }
        pos_ += 2;
      } else if (c == '$') {
        in_word = true;
        expand(cur);
      } else {
        in_word = true;
        cur.text += c;
        ++pos_;
      }
    }
    end_command();
    return std::move(config_);
  }

 private:
  enum class Kind { top, entry, submenu, function, other };
  struct Frame {
    Kind kind = Kind::top;
    std::map<std::string, std::string> vars;
    GrubRoot root;
    std::vector<GrubMenuLevel> chain;  // for entries and submenus: the path to here
    int next_index = 0;                // the index of the next item in this menu
    std::size_t entry = 0;             // index into config_.entries for Kind::entry
  };

  bool at_word_end(std::size_t p) const {
    return p >= src_.size() || src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\n' || src_[p] == '\r' ||
           src_[p] == ';';
  }

  // Expands $name, ${name}, $1… at pos_ (which points at '$').
  void expand(Word& w) {
    ++pos_;
    std::string name;
    if (pos_ < src_.size() && src_[pos_] == '{') {
      std::size_t close = src_.find('}', pos_);
      if (close == std::string_view::npos) close = src_.size();
      name = std::string(src_.substr(pos_ + 1, close - pos_ - 1));
      pos_ = close + 1;
    } else {
      while (pos_ < src_.size() && is_name_char(src_[pos_])) name += src_[pos_++];
    }
    if (name.empty()) {
      w.text += '$';
      return;
    }
    if (name == "menuentry_id_option") {
      w.text += "--id";  // set to "--id" by every GRUB that supports ids (feature_menuentry_id)
      return;
    }
    if (name == "root") {
      w.text += "$root";  // the device found by `search`: kept symbolic, it is the entry's root
      return;
    }
    const auto& vars = frames_.back().vars;
    auto it = vars.find(name);
    if (it != vars.end()) {
      w.text += it->second;
    } else {
      w.text += "${" + name + "}";
      w.unresolved = true;
    }
  }

  static std::vector<Word> strip_keywords(std::vector<Word> words) {
    while (!words.empty() && !words.front().quoted &&
           (words.front().text == "then" || words.front().text == "else" || words.front().text == "do"))
      words.erase(words.begin());
    return words;
  }

  void command(std::vector<Word> words, std::size_t line) {
    words = strip_keywords(std::move(words));
    if (words.empty()) return;
    Frame& f = frames_.back();
    if (f.kind == Kind::function) return;
    const std::string& cmd = words[0].text;
    if (cmd == "set" && words.size() >= 2) {
      for (std::size_t i = 1; i < words.size(); ++i) assign(words[i]);
    } else if (words.size() == 1 && !words[0].quoted && cmd.find('=') != std::string::npos && cmd.find('=') > 0) {
      assign(words[0]);
    } else if (cmd == "search" || cmd.rfind("search.", 0) == 0) {
      search(words);
    } else if (f.kind == Kind::entry && (cmd == "linux" || cmd == "linux16" || cmd == "linuxefi")) {
      if (words.size() >= 2) {
        GrubEntry& e = config_.entries[f.entry];
        e.kernel = make_path(words[1]);
        e.kernel_args.clear();  // a later linux line replaces the earlier one, as in GRUB
        for (std::size_t i = 2; i < words.size(); ++i) e.kernel_args.push_back(words[i].text);
        e.root = f.root;
      }
    } else if (f.kind == Kind::entry && (cmd == "initrd" || cmd == "initrd16" || cmd == "initrdefi")) {
      for (std::size_t i = 1; i < words.size(); ++i) config_.entries[f.entry].initrds.push_back(make_path(words[i]));
    }
    (void)line;
  }

  void assign(const Word& w) {
    std::size_t eq = w.text.find('=');
    if (eq == std::string::npos || eq == 0) return;
    std::string name = w.text.substr(0, eq);
    for (char c : name)
      if (!is_name_char(c)) return;
    std::string value = w.text.substr(eq + 1);
    Frame& f = frames_.back();
    if (name == "root") {
      if (w.unresolved) {
        f.root = GrubRoot{GrubRoot::Kind::unknown, ""};
      } else if (value != "$root") {
        if (value.size() >= 2 && value.front() == '(' && value.back() == ')') value = value.substr(1, value.size() - 2);
        f.root = GrubRoot{GrubRoot::Kind::device, value};
      }
      return;
    }
    if (w.unresolved) {
      f.vars.erase(name);
    } else {
      f.vars[name] = value;
    }
  }

  void search(const std::vector<Word>& words) {
    GrubRoot::Kind kind = GrubRoot::Kind::fs_uuid;  // search's default is --file; set below
    bool kind_set = false;
    std::string var;
    std::vector<const Word*> args;
    const std::string& cmd = words[0].text;
    if (cmd == "search.fs_uuid") kind = GrubRoot::Kind::fs_uuid, kind_set = true;
    if (cmd == "search.fs_label") kind = GrubRoot::Kind::fs_label, kind_set = true;
    if (cmd == "search.file") kind = GrubRoot::Kind::file, kind_set = true;
    for (std::size_t i = 1; i < words.size(); ++i) {
      const std::string& a = words[i].text;
      if (a == "--fs-uuid" || a == "-u") {
        kind = GrubRoot::Kind::fs_uuid, kind_set = true;
      } else if (a == "--label" || a == "-l") {
        kind = GrubRoot::Kind::fs_label, kind_set = true;
      } else if (a == "--file" || a == "-f") {
        kind = GrubRoot::Kind::file, kind_set = true;
      } else if (a == "--set" || a == "-s") {
        // `--set VAR` is not GRUB syntax: a bare --set means root.
        var = "root";
      } else if (a.rfind("--set=", 0) == 0) {
        var = a.substr(6);
      } else if (a.rfind('-', 0) == 0) {
        // --no-floppy, --hint=…, --hint-bios=…: no separate argument
      } else {
        args.push_back(&words[i]);
      }
    }
    if (!kind_set) kind = GrubRoot::Kind::file;
    // search.fs_uuid UUID VAR
    if (cmd.rfind("search.", 0) == 0 && args.size() >= 2) var = args[1]->text;
    if (var.empty() && cmd.rfind("search.", 0) == 0) var = "root";
    if (var != "root" || args.empty()) return;
    Frame& f = frames_.back();
    if (args[0]->unresolved) {
      f.root = GrubRoot{GrubRoot::Kind::unknown, ""};
    } else {
      f.root = GrubRoot{kind, args[0]->text};
    }
  }

  static GrubPath make_path(const Word& w) {
    GrubPath p;
    p.raw = w.text;
    p.unresolved = w.unresolved;
    std::string_view t = w.text;
    if (!t.empty() && t.front() == '(') {
      std::size_t close = t.find(')');
      if (close != std::string_view::npos) {
        std::string dev(t.substr(1, close - 1));
        if (dev != "$root") p.device = dev;
        t.remove_prefix(close + 1);
      }
    }
    p.path = std::string(t);
    return p;
  }

  void open_block(std::vector<Word> words, std::size_t line) {
    words = strip_keywords(std::move(words));
    Frame next = frames_.back();
    next.kind = Kind::other;
    next.next_index = 0;
    const std::string cmd = words.empty() ? std::string() : words[0].text;
    Frame& parent = frames_.back();
    if (parent.kind == Kind::function || cmd == "function") {
      next.kind = Kind::function;
    } else if ((cmd == "menuentry" || cmd == "submenu") && parent.kind != Kind::entry) {
      std::string title, id;
      bool have_title = false;
      for (std::size_t i = 1; i < words.size(); ++i) {
        const std::string& a = words[i].text;
        if (!words[i].quoted && (a == "--class" || a == "--users" || a == "--hotkey" || a == "--id")) {
          if (i + 1 < words.size() && a == "--id") id = words[i + 1].text;
          ++i;
        } else if (!words[i].quoted && a.rfind("--", 0) == 0) {
          // --unrestricted and other flags
        } else if (!have_title) {
          title = a;
          have_title = true;
        }
      }
      GrubMenuLevel level{title, id, parent.next_index++};
      next.chain.push_back(level);
      if (cmd == "submenu") {
        next.kind = Kind::submenu;
      } else {
        next.kind = Kind::entry;
        GrubEntry e;
        e.title = title;
        e.id = id;
        e.chain = next.chain;
        e.root = next.root;
        e.line = line;
        next.entry = config_.entries.size();
        config_.entries.push_back(std::move(e));
      }
    }
    frames_.push_back(std::move(next));
  }

  void close_block() {
    if (frames_.size() > 1) frames_.pop_back();
  }

  std::string_view src_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::vector<Frame> frames_;
  GrubConfig config_;
};

bool level_matches(const GrubMenuLevel& level, std::string_view part) {
  if (part == level.title || (!level.id.empty() && part == level.id)) return true;
  int n = -1;
  auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
  return ec == std::errc() && p == part.data() + part.size() && n == level.index;
}

}  // namespace

std::string GrubConfig::title_path(const GrubEntry& e) {
  std::string out;
  for (const auto& level : e.chain) {
    if (!out.empty()) out += '>';
    out += level.title;
  }
  return out;
}

bool GrubConfig::selects(std::string_view selector) const {
  std::vector<std::string_view> parts = base::split(selector, '>');
  for (const auto& e : entries) {
    if (parts.size() > e.chain.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; i < parts.size() && ok; ++i) ok = level_matches(e.chain[i], parts[i]);
    if (ok) return true;
  }
  return false;
}

GrubConfig parse_grub_cfg(std::string_view bytes) {
  return Parser(bytes).run();
}

std::string find_grub_cfg(const base::Root& root) {
  for (const char* path : {"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"}) {
    auto st = root.stat(path);
    // Anything but a directory: GRUB reads this name, so a FIFO or a device here is a grub.cfg
    // that cannot be read, for the reader to report, not a missing one.
    if (st && !S_ISDIR(st->st_mode)) return path;
  }
  return {};
}

}  // namespace guard::formats
