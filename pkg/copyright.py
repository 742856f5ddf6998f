#!/usr/bin/env python3
"""Write the Debian copyright file of the postie package to stdout: the checked-in
pkg/debian/copyright (postie's own copyright and licences), then one paragraph per Rust
crate statically linked into /usr/bin/postie, with its name, version, authors and licence
expression (SPDX, as in the crate's Cargo.toml), then a stand-alone License paragraph for
each licence those expressions name beyond postie's own.

Which crates: `cargo metadata --locked --filter-platform HOST` (HOST from `rustc -vV`),
walking the resolved graph from postie along normal dependencies only. Build and dev
dependencies are not linked in, and neither are procedural macros (they run in the
compiler) nor what only they depend on. cargo metadata's graph unifies features with
the dev dependencies', so the list may name a few crates more than are linked, never
fewer: pkg/check-debs.sh checks that every crate `cargo tree -e normal,no-proc-macro`
(the build's own feature resolution) names is here, with the same licence expression.

Run by pkg/build-debs.sh from the source tree's top; python3's standard library only.
"""

import json
import re
import subprocess
import sys

# Licences whose text the checked-in head already has (postie's own).
HEAD_LICENSES = {"MIT", "Apache-2.0"}
# Licences Debian ships in /usr/share/common-licenses.
COMMON = {"Apache-2.0", "MPL-2.0", "GPL-2.0", "GPL-3.0", "LGPL-2.1", "LGPL-3.0", "CC0-1.0"}


def host_triple():
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("host: "):
            return line[len("host: "):].strip()
    sys.exit("copyright.py: rustc -vV names no host")


def bundled(meta):
    """The packages linked into the binary, postie's own root excluded."""
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]

    def proc_macro(pkg):
        return any("proc-macro" in t["kind"] for t in pkg["targets"])

    seen, todo = set(), [root]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            normal = any(k["kind"] is None for k in dep["dep_kinds"])
            if not normal or dep["pkg"] in seen or proc_macro(packages[dep["pkg"]]):
                continue
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])
    return sorted((packages[i] for i in seen), key=lambda p: (p["name"], p["version"]))


def expression(pkg):
    """The licence expression, old `A/B` syntax written as `A OR B`."""
    lic = pkg.get("license")
    if not lic:
        return None
    return " OR ".join(part.strip() for part in lic.split("/"))


def identifiers(expr):
    """The licence and exception identifiers an SPDX expression names."""
    words = re.split(r"[\s()]+", expr)
    return {w for w in words if w and w not in ("AND", "OR", "WITH")}


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked",
             "--filter-platform", host_triple()],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    with open("pkg/debian/copyright", encoding="utf-8") as f:
        out = [f.read().rstrip("\n")]
    named = set()
    for pkg in bundled(meta):
        expr = expression(pkg)
        if expr is None:
            # No SPDX expression: the crate names a licence file instead.
            expr = "LicenseRef-{}-{}".format(pkg["name"], pkg["version"])
        named |= identifiers(expr)
        authors = [a.strip() for a in pkg.get("authors") or [] if a.strip()]
        copyright_ = "\n ".join(authors) if authors else "the {} authors".format(pkg["name"])
        para = [
            "Files: vendor/{}-{}/*".format(pkg["name"], pkg["version"]),
            "Copyright: " + copyright_,
            "License: " + expr,
            "Comment: Rust crate {} {}, statically linked into /usr/bin/postie.".format(
                pkg["name"], pkg["version"]),
        ]
        if pkg.get("license_file"):
            para.append(" Licence file in the crate's source: {}.".format(pkg["license_file"]))
        out.append("\n".join(para))
    for ident in sorted(named - HEAD_LICENSES):
        text = [
            "License: " + ident,
            " The text is in the source of each crate above that names {}".format(ident),
            " (its LICENSE or COPYING file), and at https://spdx.org/licenses/{}.html.".format(
                ident),
        ]
        if ident in COMMON:
            text += [" .", " On Debian systems, the complete text can be found in",
                     ' "/usr/share/common-licenses/{}".'.format(ident)]
        out.append("\n".join(text))
    sys.stdout.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()
