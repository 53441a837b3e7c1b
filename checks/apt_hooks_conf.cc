#include "checks/apt_hooks_conf.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stack>

#include "base/dir.h"
#include "base/strings.h"
#include "checks/interpreters.h"

namespace guard::checks {
namespace {

constexpr const char* kParts = "/etc/apt/apt.conf.d";
constexpr const char* kMain = "/etc/apt/apt.conf";
constexpr std::uint64_t kMaxConfigBytes = 16 << 20;
constexpr std::size_t kMaxFiles = 4096;

bool space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string strip(std::string_view s) {
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// apt's ParseQuoteWord: a word up to white space, "..." and [...] kept together, quotes
// dropped, %XX decoded.
bool parse_quote_word(const char*& str, std::string& res) {
  const char* c = str;
  while (*c == ' ') ++c;
  if (*c == 0) return false;
  const char* start = c;
  for (; *c != 0 && !space(*c); ++c) {
    if (*c == '"') {
      c = std::strchr(c + 1, '"');
      if (c == nullptr) return false;
    }
    if (*c == '[') {
      c = std::strchr(c + 1, ']');
      if (c == nullptr) return false;
    }
  }
  res.clear();
  for (const char* s = start; s != c;) {
    if (*s == '%' && s + 2 < c && std::isxdigit(static_cast<unsigned char>(s[1])) &&
        std::isxdigit(static_cast<unsigned char>(s[2]))) {
      char hex[3] = {s[1], s[2], 0};
      res.push_back(static_cast<char>(std::strtol(hex, nullptr, 16)));
      s += 3;
      continue;
    }
    if (*s != '"') res.push_back(*s);
    ++s;
  }
  while (*c != 0 && space(*c)) ++c;
  str = c;
  return true;
}

// apt's ParseCWord: the rest is only quoted strings and white space; the strings are joined.
bool parse_c_word(const char*& str, std::string& res) {
  const char* c = str;
  while (*c == ' ') ++c;
  if (*c == 0) return false;
  std::string buf;
  for (; *c != 0; ++c) {
    if (*c == '"') {
      for (++c; *c != 0 && *c != '"'; ++c) buf.push_back(*c);
      if (*c == 0) return false;
      continue;
    }
    if (c != str && space(*c) && space(c[-1])) continue;
    if (!space(*c)) return false;
    buf.push_back(' ');
  }
  res = std::move(buf);
  str = c;
  return true;
}

bool starts_at(std::string_view s, std::size_t i, std::string_view what) { return s.substr(i, what.size()) == what; }

}  // namespace

bool is_apt_config_name(std::string_view name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  std::size_t dot = name.rfind('.');
  if (dot != std::string_view::npos && name.substr(dot + 1) != "conf") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == ':' || c == '.';
  });
}

AptNode* AptConfig::lookup(std::string_view item, bool create) {
  AptNode* node = root_.get();
  if (item.empty()) return node;
  while (true) {
    std::size_t sep = item.find("::");
    std::string_view tag = item.substr(0, sep);
    AptNode* next = nullptr;
    if (!tag.empty()) {
      for (auto& c : node->children)
        if (iequal(c->tag, tag)) next = c.get();
    }
    if (next == nullptr) {
      if (!create) return nullptr;
      node->children.push_back(std::make_unique<AptNode>());
      next = node->children.back().get();
      next->tag = std::string(tag);
    }
    node = next;
    if (sep == std::string_view::npos) return node;
    item.remove_prefix(sep + 2);
    if (item.empty()) {  // "A::B::": a new list item
      if (!create) return nullptr;
      node->children.push_back(std::make_unique<AptNode>());
      return node->children.back().get();
    }
  }
}

void AptConfig::set(std::string_view item, std::string value, const std::string& file, std::size_t line) {
  AptNode* n = lookup(item, true);
  n->value = std::move(value);
  n->has_value = true;
  n->file = file;
  n->line = line;
}

void AptConfig::clear(std::string_view item) {
  // The parent of `item`, then the child removed from it.
  std::size_t sep = item.rfind("::");
  AptNode* parent = sep == std::string_view::npos ? root_.get() : lookup(item.substr(0, sep), false);
  if (parent == nullptr) return;
  std::string_view tag = sep == std::string_view::npos ? item : item.substr(sep + 2);
  auto& kids = parent->children;
  kids.erase(std::remove_if(kids.begin(), kids.end(), [&](const auto& c) { return iequal(c->tag, tag); }), kids.end());
}

const AptNode* AptConfig::find(std::string_view item) const {
  return const_cast<AptConfig*>(this)->lookup(item, false);
}

std::optional<AptSyntaxError> parse_apt_config(std::string_view bytes, const std::string& file, AptConfig& conf,
                                               unsigned depth, const AptInclude& include) {
  auto error = [&](std::size_t line, std::string what) {
    return std::optional<AptSyntaxError>(AptSyntaxError{file, line, std::move(what)});
  };
  std::string line_buffer;
  std::stack<std::string> stack;
  std::string parent_tag;
  auto pop = [&] {
    if (stack.empty()) {
      parent_tag.clear();
    } else {
      parent_tag = stack.top();
      stack.pop();
    }
  };
  std::size_t cur_line = 0;
  bool in_comment = false;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t nl = bytes.find('\n', pos);
    std::string_view raw = bytes.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? bytes.size() : nl + 1;
    std::string input(raw);
    std::replace(input.begin(), input.end(), '\t', ' ');
    input = strip(input);
    ++cur_line;

    std::size_t start = 0, end = input.size();
    if (in_comment) {
      std::size_t close = input.find("*/");
      if (close == std::string::npos) continue;
      start = close + 2;
      in_comment = false;
    }
    // Single-line comments: `//` and `#` (but #clear, #include, #x-apt-configure-index) outside quotes.
    bool in_quote = false;
    for (std::size_t i = start; i < end; ++i) {
      if (input[i] == '"') in_quote = !in_quote;
      if (in_quote) continue;
      if ((input[i] == '/' && i + 1 < end && input[i + 1] == '/') ||
          (input[i] == '#' && !starts_at(input, i, "#clear") && !starts_at(input, i, "#include") &&
           !starts_at(input, i, "#x-apt-configure-index"))) {
        end = i;
        break;
      }
    }
    // Multi-line comments.
    std::string fragment;
    in_quote = false;
    for (std::size_t i = start; i < end; ++i) {
      if (input[i] == '"') in_quote = !in_quote;
      if (!in_quote && input[i] == '/' && i + 1 < end && input[i + 1] == '*') {
        in_comment = true;
        for (std::size_t j = i; j < end; ++j) {
          if (input[j] == '*' && j + 1 < end && input[j + 1] == '/') {
            i = j + 1;
            in_comment = false;
            break;
          }
        }
        if (in_comment) break;
      } else {
        fragment.push_back(input[i]);
      }
    }
    if (fragment.empty()) continue;

    in_quote = false;
    std::size_t fstart = 0;
    for (std::size_t i = 0; i < fragment.size(); ++i) {
      if (fragment[i] == '"') in_quote = !in_quote;
      if (in_quote || (fragment[i] != '{' && fragment[i] != ';' && fragment[i] != '}')) continue;
      std::string piece = strip(std::string_view(fragment).substr(fstart, i - fstart));
      if (!line_buffer.empty() && !piece.empty()) line_buffer += ' ';
      line_buffer += piece;
      char term = fragment[i];
      fstart = i + 1;
      if (term == '{' && line_buffer.empty()) return error(cur_line, "Block starts with no name.");
      if (line_buffer.empty()) {
        if (term == '}') pop();
        continue;
      }
      std::string tag;
      const char* p = line_buffer.c_str();
      if (!parse_quote_word(p, tag)) return error(cur_line, "Malformed tag");
      std::string word;
      bool no_word = false;
      if (!parse_c_word(p, word) && !parse_quote_word(p, word)) {
        if (term != '{') {
          word = tag;
          tag.clear();
        } else {
          no_word = true;
        }
      }
      if (*p != 0) return error(cur_line, "Extra junk after value");
      if (term == '{') {
        stack.push(parent_tag);
        parent_tag = parent_tag.empty() ? tag : parent_tag + "::" + tag;
        tag.clear();
      }
      std::string item;
      if (parent_tag.empty())
        item = tag;
      else if (term != '{' || !tag.empty())
        item = parent_tag + "::" + tag;
      else
        item = parent_tag;
      if (!tag.empty() && tag.front() == '#') {
        if (!parent_tag.empty()) return error(cur_line, "Directives can only be done at the top level");
        tag.erase(0, 1);
        if (tag == "clear") {
          conf.clear(word);
        } else if (tag == "include") {
          if (depth > 10) return error(cur_line, "Too many nested includes");
          if (!include(word, depth + 1)) return error(cur_line, "Included from here");
        } else if (tag != "x-apt-configure-index") {
          return error(cur_line, "Unsupported directive '" + tag + "'");
        }
      } else if (tag.empty() && !no_word && word == "#clear") {
        return error(cur_line, "clear directive requires an option tree as argument");
      } else if (!no_word) {
        conf.set(item, word, file, cur_line);
      }
      line_buffer.clear();
      if (term == '}') pop();  // move up a level once the value is stored
    }
    std::string rest = strip(std::string_view(fragment).substr(fstart));
    if (!rest.empty() && !line_buffer.empty()) line_buffer += ' ';
    line_buffer += rest;
  }
  if (!line_buffer.empty()) return error(cur_line, "Extra junk at end of file");
  return std::nullopt;
}

namespace {

class AptReader {
 public:
  explicit AptReader(const base::Root& root) : root_(root) {}

  bool read_dir(const std::string& dir, unsigned depth) {
    auto names = base::list_dir(root_, dir);
    if (!names) {
      out_.errors.push_back({dir, 0, "cannot list the directory: " + names.error().to_string()});
      return false;
    }
    bool ok = true;
    for (const auto& n : *names) {  // sorted by byte order, as apt sorts the full paths
      if (out_.files > kMaxFiles) return false;
      if (!is_apt_config_name(n)) continue;
      std::string path = base::join_path(dir, n);
      auto st = root_.stat(path);
      if (!st || !S_ISREG(st->st_mode)) continue;
      ok = read_file(path, depth) && ok;
    }
    return ok;
  }

  bool read_file(const std::string& path, unsigned depth) {
    if (++out_.files > kMaxFiles) {  // includes of directories that include themselves
      if (out_.files == kMaxFiles + 1) out_.errors.push_back({path, 0, "more than 4096 files read: an include loop"});
      return false;
    }
    auto bytes = root_.read_file(path, kMaxConfigBytes);
    if (!bytes) {
      out_.errors.push_back({path, 0, "cannot be read: " + bytes.error().to_string()});
      return false;
    }
    auto err = parse_apt_config(*bytes, path, out_.conf, depth, [&](const std::string& inc, unsigned d) {
      std::string p = inc.empty() || inc.front() == '/' ? inc : "/" + inc;
      if (inc.size() > 2 && inc.back() == '/') return read_dir(p, d);
      return read_file(p, d);
    });
    if (!err) return true;
    out_.errors.push_back(std::move(*err));
    return false;
  }

  AptConfigRead take() { return std::move(out_); }

 private:
  const base::Root& root_;
  AptConfigRead out_;
};

}  // namespace

AptConfigRead read_apt_config(const base::Root& root) {
  AptReader reader(root);
  auto dir = root.stat(kParts);
  if (dir && S_ISDIR(dir->st_mode)) (void)reader.read_dir(kParts, 0);
  auto main = root.stat(kMain);
  if (main && S_ISREG(main->st_mode)) (void)reader.read_file(kMain, 0);
  return reader.take();
}

const std::vector<std::string>& apt_hook_keys() {
  static const std::vector<std::string> keys = {
      "APT::Update::Pre-Invoke",  "APT::Update::Post-Invoke",    "APT::Update::Post-Invoke-Success",
      "APT::Update::Post-Invoke-Stats", "APT::Install::Pre-Invoke", "APT::Install::Post-Invoke-Success",
      "DPkg::Pre-Invoke",         "DPkg::Post-Invoke",           "DPkg::Post-Invoke-Success",
      "DPkg::Pre-Install-Pkgs",
  };
  return keys;
}

std::vector<AptHook> apt_hooks(const AptConfig& conf) {
  std::vector<AptHook> out;
  for (const auto& key : apt_hook_keys()) {
    const AptNode* node = conf.find(key);
    if (node == nullptr) continue;
    for (const auto& c : node->children)  // RunScripts runs each child's value; an empty one is skipped
      if (!c->value.empty()) out.push_back({key, c->value, c->file, c->line});
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// The programs a shell command string runs.

namespace {

struct Token {
  enum Kind { word, op, redir } kind = word;
  std::string text;      // the word after quote removal, or the operator
  std::string raw;       // as written
  bool dynamic = false;  // holds $ or `: known only at run time
};

bool op_char(char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>'; }

// Consumes a balanced $( ... ) or ${ ... } starting at s[i] == '(' or '{'; returns the index after it.
std::size_t skip_balanced(std::string_view s, std::size_t i) {
  char open = s[i], close = open == '(' ? ')' : '}';
  int depth = 0;
  for (; i < s.size(); ++i) {
    if (s[i] == open) ++depth;
    if (s[i] == close && --depth == 0) return i + 1;
  }
  return s.size();
}

std::vector<Token> lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '\n') {
      out.push_back({Token::op, ";", ";"});
      ++i;
      continue;
    }
    if (c == '#') {  // a comment to the end of the line
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (op_char(c)) {
      std::string o(1, c);
      if (i + 1 < s.size()) {
        std::string two{c, s[i + 1]};
        if (two == "&&" || two == "||" || two == ";;" || two == ">>" || two == "<<" || two == ">&" || two == "<&" ||
            two == ">|" || two == "<>")
          o = two;
      }
      i += o.size();
      bool r = o[0] == '<' || o[0] == '>';
      out.push_back({r ? Token::redir : Token::op, o, o});
      continue;
    }
    Token t;
    std::size_t begin = i;
    while (i < s.size()) {
      c = s[i];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || op_char(c)) break;
      if (c == '\\' && i + 1 < s.size()) {
        t.text.push_back(s[i + 1]);
        i += 2;
      } else if (c == '\'') {
        std::size_t close = s.find('\'', i + 1);
        if (close == std::string_view::npos) close = s.size();
        t.text.append(s.substr(i + 1, close - i - 1));
        i = close + 1;
      } else if (c == '"') {
        for (++i; i < s.size() && s[i] != '"'; ++i) {
          if (s[i] == '\\' && i + 1 < s.size()) ++i;
          if (s[i] == '$' || s[i] == '`') t.dynamic = true;
          t.text.push_back(s[i]);
        }
        ++i;
      } else if (c == '$') {
        t.dynamic = true;
        if (i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == '{'))
          i = skip_balanced(s, i + 1);
        else
          ++i;
      } else if (c == '`') {
        t.dynamic = true;
        std::size_t close = s.find('`', i + 1);
        i = close == std::string_view::npos ? s.size() : close + 1;
      } else {
        t.text.push_back(c);
        ++i;
      }
    }
    t.raw = std::string(s.substr(begin, std::min(i, s.size()) - begin));
    // "2>" : an IO number before a redirection belongs to it.
    if (i < s.size() && (s[i] == '<' || s[i] == '>') && !t.raw.empty() &&
        std::all_of(t.raw.begin(), t.raw.end(), [](char d) { return d >= '0' && d <= '9'; }))
      continue;
    out.push_back(std::move(t));
  }
  return out;
}

bool is_assignment(std::string_view raw) {
  std::size_t eq = raw.find('=');
  if (eq == 0 || eq == std::string_view::npos) return false;
  if (!(std::isalpha(static_cast<unsigned char>(raw[0])) || raw[0] == '_')) return false;
  return std::all_of(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(eq),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool is_builtin(std::string_view w) {
  static const char* const kBuiltins[] = {
      ":",    ".",     "[",      "alias", "bg",      "break", "cd",     "chdir",  "continue", "echo", "eval",
      "exit", "export", "false", "fc",    "fg",      "getopts", "hash", "jobs",   "kill",     "local", "printf",
      "pwd",  "read",  "readonly", "return", "set",  "shift", "test",   "times",  "trap",     "true", "type",
      "ulimit", "umask", "unalias", "unset", "wait"};
  return std::any_of(std::begin(kBuiltins), std::end(kBuiltins), [&](const char* b) { return w == b; });
}

// A command that looks for a file or program: what follows it with && or || is guarded.
bool is_test(std::string_view w) {
  auto name = base::basename(w);
  return name == "[" || name == "test" || name == "which" || w == "type";
}

// One open compound command: `if`/`while`/`until` (condition, then body) or `case`.
struct Frame {
  enum Kind { cond, casep } kind = cond;
  bool in_condition = false;  // between if/while/elif and then/do
  bool cond_tested = false;   // the condition ran a test
  bool body_guarded = false;  // the current body is only reached after a test
  bool patterns = false;      // case: reading patterns up to ')'
  bool case_head = false;     // case: between `case` and `in`
};

}  // namespace

std::vector<ShellProgram> shell_programs(std::string_view command) {
  std::vector<ShellProgram> out;
  std::vector<Token> toks = lex(command);
  std::vector<Frame> frames;
  bool at_start = true;
  bool skip_to_do = false;          // inside `for NAME in ...`
  bool after_test_and = false;      // an earlier test in this and-or list, joined by &&
  bool last_was_test = false;       // the command just finished was a test
  bool next_is_program = false;     // after exec/command
  bool in_test = false;             // reading the arguments of a test command
  std::set<std::string> tested;     // the arguments of every test so far
  std::size_t and_or_begin = 0;     // index in `out` where the current and-or list starts
  std::size_t pipeline_begin = 0;   // index in `out` where the current pipeline starts
  auto guarded_here = [&] {
    if (after_test_and) return true;
    for (const auto& f : frames)
      if (f.kind == Frame::cond && (f.in_condition || f.body_guarded)) return true;
    return false;
  };
  auto end_list = [&] {
    at_start = true;
    after_test_and = false;
    last_was_test = false;
    and_or_begin = pipeline_begin = out.size();
  };
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const Token& t = toks[i];
    if (t.kind == Token::redir) {
      ++i;  // its target
      continue;
    }
    if (!frames.empty() && frames.back().kind == Frame::casep) {
      Frame& f = frames.back();
      if (f.case_head) {
        if (t.kind == Token::word && t.text == "in") f.case_head = false, f.patterns = true;
        continue;
      }
      if (f.patterns) {
        if (t.kind == Token::word && t.text == "esac") {
          frames.pop_back();
          at_start = false;
        } else if (t.kind == Token::op && t.text == ")") {
          f.patterns = false;
          end_list();
        }
        continue;
      }
      if (t.kind == Token::op && t.text == ";;") {
        f.patterns = true;
        end_list();
        continue;
      }
    }
    if (skip_to_do) {
      if (t.kind == Token::word && t.text == "do") skip_to_do = false, end_list();
      continue;
    }
    if (t.kind == Token::op) {
      if (t.text == "||") {
        for (std::size_t k = and_or_begin; k < out.size(); ++k) out[k].guarded = true;
        after_test_and = after_test_and || last_was_test;  // `[ ! -x P ] || P`
        at_start = true;
        pipeline_begin = out.size();
      } else if (t.text == "&&") {
        after_test_and = after_test_and || last_was_test;
        at_start = true;
        pipeline_begin = out.size();
      } else if (t.text == "|") {
        for (std::size_t k = pipeline_begin; k < out.size(); ++k) out[k].guarded = true;
        at_start = true;
      } else {  // ; & ( ) ;;
        end_list();
      }
      last_was_test = false;
      continue;
    }
    if (!at_start && !next_is_program) {  // an argument
      if (in_test) {  // "/usr/bin/appstreamcli" tests for both that path and the name appstreamcli
        tested.insert(t.text.starts_with("/") ? base::normalize_path(t.text) : t.text);
        tested.insert(std::string(base::basename(t.text)));
      }
      continue;
    }
    const std::string& w = t.text;
    if (next_is_program) {
      next_is_program = false;
      if (!w.empty() && w.front() == '-') {  // command -v P: a lookup, not a run, and a test for P
        last_was_test = in_test = true;
        continue;
      }
    } else {
      if (is_assignment(t.raw)) continue;
      if (w == "if" || w == "while" || w == "until" || w == "elif") {
        if (w == "elif" && !frames.empty()) frames.back().in_condition = true, frames.back().cond_tested = false;
        if (w != "elif") frames.push_back({Frame::cond, true});
        continue;
      }
      if (w == "then" || w == "do") {
        if (!frames.empty() && frames.back().kind == Frame::cond) {
          Frame& f = frames.back();
          f.in_condition = false;
          f.body_guarded = f.cond_tested;
        }
        end_list();
        continue;
      }
      if (w == "else") {
        if (!frames.empty()) frames.back().body_guarded = false;
        end_list();
        continue;
      }
      if (w == "fi" || w == "done") {
        if (!frames.empty() && frames.back().kind == Frame::cond) frames.pop_back();
        at_start = false;
        continue;
      }
      if (w == "case") {
        frames.push_back({Frame::casep, false, false, false, false, true});
        at_start = false;
        continue;
      }
      if (w == "for") {
        skip_to_do = true;
        continue;
      }
      if (w == "!" || w == "{" || w == "}") continue;
      if (w == "exec" || w == "command") {
        next_is_program = true;
        at_start = false;
        continue;
      }
    }
    at_start = false;
    bool test = is_test(w);
    last_was_test = test;
    in_test = test;
    if (test && !frames.empty() && frames.back().kind == Frame::cond && frames.back().in_condition)
      frames.back().cond_tested = true;
    if (t.dynamic || w.empty() || (w.find('/') == std::string::npos && is_builtin(w))) continue;
    // A program an earlier test looked for (`[ -x P ] || exit 0; P`) is expected to be absent.
    std::string key = w.starts_with("/") ? base::normalize_path(w) : w;
    bool was_tested = tested.count(key) != 0;
    out.push_back({w, guarded_here() || was_tested, was_tested});
  }
  return out;
}

}  // namespace guard::checks
