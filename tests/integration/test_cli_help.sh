#!/usr/bin/env bash
# docs/cli.md agrees with `cairn ... --help`. The commands come from
# `cairn help`, whose output docs/cli.md must show as it is. For each one,
# `cairn CMD --help` must work, its usage line must be the synopsis
# docs/cli.md gives for CMD, its options must be listed sorted by name, and
# every one of them (short and long names) must appear in the section of
# docs/cli.md that documents CMD; every option a synopsis in docs/cli.md
# names must be one that CMD takes, and every command it documents one that
# `cairn help` lists. The checker is then run on two broken copies of the
# manual (an option left out, an option that does not exist), which it must
# reject.
source "$(dirname "$0")/lib.sh"

cat >"$T/check.py" <<'PY'
"""check.py CAIRN DOCS: print each disagreement; exit 1 if there is one."""
import re
import subprocess
import sys

cairn, docs = sys.argv[1], sys.argv[2]
problems = []


def run(*args):
    p = subprocess.run([cairn, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def command_of(words):
    """The command a usage or synopsis line names: its leading lowercase
    words ("runs list", "backfill", "cron next")."""
    cmd = []
    for w in words:
        if not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        cmd.append(w)
    return " ".join(cmd)


def entries(lines, lead):
    """Lines starting with lead (after indentation) begin an entry; deeper
    indented lines continue it. Returns [(command, joined text)]."""
    out = []
    for line in lines:
        m = re.match(r"(\s*)" + lead + r"(.*)", line)
        if m and (not out or out[-1][2] < 0 or len(m.group(1)) <= out[-1][2]):
            text = m.group(2).split("  #")[0].strip()
            out.append([command_of(text.split()), text, len(m.group(1))])
        elif out and line.startswith(" ") and line.strip():
            out[-1][1] += " " + line.strip()
        else:
            out.append(["", "", -1])
    return [(c, " ".join(t.split())) for c, t, _ in out if c]


def options(text):
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))


def mentions(text, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None


# the commands, from `cairn help`
rc, out, err = run("help")
if rc != 0:
    sys.exit("cairn help: exit %d" % rc)
block = out.split("commands:\n", 1)[1].split("\n\n", 1)[0].split("\n")
cmds = []
for line in block:
    if re.match(r"  [a-z]", line):
        cmds.append(command_of(line.split()))
if len(cmds) < 20:
    sys.exit("cairn help lists only %d commands: %s" % (len(cmds), cmds))

# docs/cli.md: the list `cairn help` prints, as it prints it
text = open(docs).read()
m = re.search(r"^```\n(usage: cairn .*?)^```$", text, flags=re.M | re.S)
if not m or m.group(1) != out:
    problems.append("docs/cli.md does not show the output of `cairn help` as it is")

# docs/cli.md: its sections, and the synopses in their code blocks
sections = re.split(r"^## ", text, flags=re.M)[1:]
synopsis = {}  # command -> (section, synopsis)
for sec in sections:
    in_code = False
    lines = []
    for line in sec.split("\n"):
        if line.startswith("```"):
            # synopses are in plain blocks; ```sh blocks hold examples
            in_code = not in_code and line.strip() == "```"
            lines.append("")
            continue
        lines.append(line if in_code else "")
    for cmd, syn in entries(lines, "cairn "):
        if cmd in synopsis and synopsis[cmd][1] != syn:
            problems.append("docs/cli.md: two synopses of %s:\n  %s\n  %s"
                            % (cmd, synopsis[cmd][1], syn))
        synopsis.setdefault(cmd, (sec, syn))

for cmd in cmds:
    rc, out, err = run(*cmd.split(), "--help")
    if rc != 0 or err:
        problems.append("cairn %s --help: exit %d, stderr %r" % (cmd, rc, err))
        continue
    usage = out.split("\n\n", 1)[0].split("\n")
    usage = [u.replace("usage: ", "       ", 1) for u in usage]
    mine = [t for c, t in entries(usage, "cairn ") if c == cmd]
    if len(mine) != 1:
        problems.append("cairn %s --help: no usage line of its own in %r" % (cmd, usage))
        continue
    # its own options: "options:" of its help, or its block in a group's help
    title = "\noptions of cairn %s:\n" % cmd
    if title not in out:
        title = "\noptions:\n"
    if title not in out:
        problems.append("cairn %s --help lists no options" % cmd)
        continue
    help_opts, order = set(), []
    for line in out.split(title, 1)[1].split("\n\n", 1)[0].split("\n"):
        m = re.match(r"  (-[\w-]+)(?:, (--[\w-]+))?", line)
        if m:
            help_opts.update(x for x in m.groups() if x)
            order.append((m.group(2) or m.group(1)).lstrip("-"))
    help_opts -= {"-h", "--help"}
    if "help" in order:
        order.remove("help")
    if order != sorted(order):
        problems.append("cairn %s --help: the options are not sorted by name: %s" % (cmd, order))
    if not options(mine[0]) - {"-h", "--help"} <= help_opts:
        problems.append("cairn %s --help: its usage names options it does not list" % cmd)
    if cmd not in synopsis:
        problems.append("docs/cli.md has no synopsis of `cairn %s`" % cmd)
        continue
    sec, syn = synopsis[cmd]
    if syn != mine[0]:
        problems.append("docs/cli.md's synopsis of %s is not its usage:\n  docs: %s\n  help: %s"
                        % (cmd, syn, mine[0]))
    for opt in sorted(help_opts):
        if not mentions(sec, opt):
            problems.append("cairn %s takes %s; its section of docs/cli.md (## %s) does not "
                            "mention it" % (cmd, opt, sec.split("\n", 1)[0]))
    for opt in sorted(options(syn) - help_opts):
        problems.append("docs/cli.md gives `cairn %s` the option %s, which it does not take"
                        % (cmd, opt))

for cmd in sorted(set(synopsis) - set(cmds)):
    problems.append("docs/cli.md documents `cairn %s`, which cairn help does not list" % cmd)

for p in problems:
    print(p)
print("%d commands checked, %d problems" % (len(cmds), len(problems)))
sys.exit(1 if problems else 0)
PY

check_docs() { /usr/bin/python3 "$T/check.py" "$CAIRN" "$1" >"$T/check.out" 2>&1; }

if check_docs "$CAIRN_SRC/docs/cli.md"; then
    ok "docs/cli.md agrees with every command's --help ($(tail -n1 "$T/check.out"))"
else
    bad "docs/cli.md and --help disagree:"
    sed 's/^/#   /' "$T/check.out"
fi

# Every sub-command group prints its help too.
for g in artifacts backfill cron dags runs; do
    check "cairn $g --help" bash -c '"$0" "$1" --help | grep -q "^usage: cairn $1 "' "$CAIRN" "$g"
done

# The checker can fail: an option the manual leaves out, one it invents.
sed 's/--limit/--lim/g' "$CAIRN_SRC/docs/cli.md" >"$T/no-limit.md"
sed 's/^cairn workers \[--json\]/cairn workers [--json] [--all]/' "$CAIRN_SRC/docs/cli.md" >"$T/extra.md"
check "(the broken copies differ from the manual)" bash -c \
    '! cmp -s "$0" "$1" && ! cmp -s "$0" "$2"' "$CAIRN_SRC/docs/cli.md" "$T/no-limit.md" "$T/extra.md"
if check_docs "$T/no-limit.md"; then
    bad "the checker accepted a manual without runs list --limit"
else
    check "a manual without runs list --limit is rejected, naming the option" \
        grep -q "cairn runs list takes --limit" "$T/check.out"
fi
if check_docs "$T/extra.md"; then
    bad "the checker accepted a manual that gives workers an --all option"
else
    check "a manual with an option workers does not take is rejected" \
        grep -q "gives \`cairn workers\` the option --all" "$T/check.out"
fi
finish
