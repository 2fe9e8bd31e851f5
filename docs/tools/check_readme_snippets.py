#!/usr/bin/env python3
"""The README's code snippets come from examples/: a ```cpp block preceded by
<!-- snippet: examples/x.cpp --> must consist of lines of that file, in the
same order (compared without leading/trailing blanks). A line "// ..." (or
"// ... text") marks an elision: the lines after it may come from anywhere
in the file, in order again.

usage: check_readme_snippets.py README.md REPO_ROOT
"""
import os
import re
import sys


def main(readme, root):
    text = open(readme, encoding="utf-8").read().splitlines()
    problems, checked = [], 0
    i = 0
    while i < len(text):
        m = re.match(r"<!-- snippet: (\S+) -->", text[i].strip())
        if not m:
            i += 1
            continue
        src = os.path.join(root, m.group(1))
        if not os.path.exists(src):
            problems.append(f"line {i + 1}: {m.group(1)} does not exist")
            i += 1
            continue
        lines = [l.strip() for l in open(src, encoding="utf-8").read().splitlines()]
        if i + 1 >= len(text) or not text[i + 1].startswith("```"):
            problems.append(f"line {i + 1}: snippet marker not followed by a code block")
            i += 1
            continue
        j, pos = i + 2, 0
        while j < len(text) and not text[j].startswith("```"):
            want = text[j].strip()
            if want.startswith("// ..."):
                pos = 0  # after an elision the next lines may come from anywhere in the file
            elif want:
                try:
                    pos = lines.index(want, pos) + 1
                except ValueError:
                    problems.append(f"README line {j + 1}: not in {m.group(1)} (in order): {want}")
            j += 1
        checked += 1
        i = j + 1
    for p in problems:
        print(p, file=sys.stderr)
    if checked == 0:
        print("no snippet markers found", file=sys.stderr)
        return 1
    if problems:
        return 1
    print(f"{checked} README snippets match examples/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
