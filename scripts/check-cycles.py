#!/usr/bin/env python3
"""Finds cycles between the files of each crate (see scripts/check-cycles.sh).

A file depends on the file that defines what one of its paths names: `use crate::a::b`,
`super::x`, `self::y` and `crate::…` in expressions. A name re-exported by `pub use` resolves
to the file that defines it, so a parent module that only re-exports is not an edge. The
`mod x;` declaration of a child is not an edge either (it is where the tree is drawn, not a
use), nor is a child's use of what its ancestors define (a child module is part of its parent;
`--strict` counts those edges too). Inline modules (`mod tests { … }`) belong to their file.
"""

import os
import re
import sys

ITEM_RE = re.compile(
    r"\b(?:fn|struct|enum|trait|type|const|static|union|mod)\s+(r#)?([A-Za-z_]\w*)"
    r"|\bmacro_rules!\s*([A-Za-z_]\w*)"
)
MOD_DECL_RE = re.compile(r"\bmod\s+(?:r#)?([A-Za-z_]\w*)\s*([;{])")
# `crate::a`, `super::b`, `self::c`, and `m::d` where `m` is a child module or a name a `use`
# brought in (resolved later; other paths such as `std::…` or `Self::…` resolve to nothing).
PATH_RE = re.compile(r"(?<![\w:])((?:crate|super|self|[A-Za-z_]\w*)(?:\s*::\s*(?:super|[A-Za-z_]\w*))+)")
PATH_ATTR_RE = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*$')


def strip(src):
    """Blanks out comments, strings and char literals, keeping offsets and newlines."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:i + 260]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', src[i:]).group(1)
            end = src.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])'", src[i:i + 16])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def use_trees(text):
    """Yields (start offset, [path segment lists]) for each `use` declaration."""
    for m in re.finditer(r"\buse\s+([^;]*);", text):
        body = re.sub(r"\s+", " ", m.group(1))
        body = re.sub(r"\s*(::|[{},])\s*", r"\1", body).strip()
        yield m.start(), expand(body), m
    return


def expand(tree):
    """Expands a use tree (`a::{b, c::{d, e}}`, `x as y`, `*`) into (path, alias) pairs."""
    depth = 0
    brace = tree.find("{")
    if brace < 0:
        path, _, alias = tree.partition(" as ")
        segs = [s for s in path.strip().split("::") if s]
        return [(segs, alias.strip() or None)]
    prefix = [s for s in tree[:brace].split("::") if s]
    inner = tree[brace + 1:tree.rfind("}")]
    parts, cur = [], ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    out = []
    for p in parts:
        for segs, alias in expand(p):
            if segs == ["self"]:
                out.append((prefix, alias))
            else:
                out.append((prefix + segs, alias))
    return out


class Module:
    def __init__(self, path, file, parent):
        self.path = path  # tuple of names from the crate root
        self.file = file
        self.parent = parent
        self.children = {}
        self.items = set()
        self.uses = []  # (segments, alias): names this module brings in
        self.globs = []  # segments of `use x::*`
        self.refs = []  # (segments as written, line) to resolve later


class Crate:
    def __init__(self, name, root):
        self.name = name
        self.files = []
        self.root = self.load(root, (), None)

    def load(self, file, path, parent):
        self.files.append(file)
        with open(file, encoding="utf-8") as f:
            src = f.read()
        text = strip(src)
        mod = Module(path, file, parent)
        self.parse(text, src, 0, len(text), mod, file)
        return mod

    def child_dir(self, mod):
        """Directory where `mod x;` inside `mod` looks for its file."""
        f = mod.file
        base = os.path.basename(f)
        d = os.path.dirname(f)
        # The file module's own directory, then any inline modules within it.
        fm = mod
        inline = []
        while fm.parent is not None and fm.parent.file == fm.file:
            inline.append(fm.path[-1])
            fm = fm.parent
        if base in ("lib.rs", "main.rs", "mod.rs"):
            root = d
        else:
            root = os.path.join(d, base[:-3])
        return os.path.join(root, *reversed(inline))

    def parse(self, text, src, start, end, mod, file):
        # Walk braces at depth 0 of this region to find inline modules; record items,
        # uses and path references of this module, excluding nested inline modules.
        i = start
        own = []  # spans of text that belong to this module (not to nested inline mods)
        last = start
        for m in MOD_DECL_RE.finditer(text, start, end):
            if m.start() < last:
                continue
            name, kind = m.group(1), m.group(2)
            if kind == ";":
                line_start = text.rfind("\n", 0, m.start())
                prev = src[text.rfind("\n", 0, line_start) + 1:line_start] if line_start > 0 else ""
                pa = PATH_ATTR_RE.search(prev.strip())
                d = self.child_dir(mod)
                if pa:
                    cand = [os.path.join(os.path.dirname(file), pa.group(1))]
                else:
                    cand = [os.path.join(d, name + ".rs"), os.path.join(d, name, "mod.rs")]
                for c in cand:
                    if os.path.exists(c):
                        mod.children[name] = self.load(c, mod.path + (name,), mod)
                        break
                continue
            # Inline module: find its closing brace.
            depth, j = 1, m.end()
            while j < end and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            own.append((last, m.start()))
            child = Module(mod.path + (name,), file, mod)
            mod.children[name] = child
            self.parse(text, src, m.end(), j - 1, child, file)
            last = j
        own.append((last, end))
        for a, b in own:
            chunk = text[a:b]
            for im in ITEM_RE.finditer(chunk):
                mod.items.add(im.group(2) or im.group(3))
            # The module's own code, without its `use` declarations.
            blanked = re.sub(r"\buse\s+[^;]*;", lambda m: " " * len(m.group(0)), chunk)
            for off, trees, um in use_trees(chunk):
                reexport = re.search(r"\bpub\s*(\([^)]*\))?\s*$", chunk[max(0, off - 40):off])
                for segs, alias in trees:
                    if not segs:
                        continue
                    name = alias or segs[-1]
                    if segs[-1] == "*":
                        mod.globs.append(segs[:-1])
                    else:
                        mod.uses.append((segs, name))
                    # A re-export is an edge only when the module itself uses the name.
                    if reexport and (name == "*" or not re.search(r"(?<![\w:.])(?<!fn )%s\b" % re.escape(name), blanked)):
                        continue
                    line = src.count("\n", 0, a + off) + 1
                    mod.refs.append((segs if segs[-1] != "*" else segs[:-1], line))
            # Paths in expressions (outside `use` declarations).
            for pm in PATH_RE.finditer(blanked):
                segs = re.sub(r"\s+", "", pm.group(1)).split("::")
                line = src.count("\n", 0, a + pm.start()) + 1
                mod.refs.append((segs, line))

    def absolute(self, mod, segs):
        """Turns a path relative to `mod` into (module, remaining segments), or None."""
        if not segs:
            return None
        if segs[0] == "crate":
            cur, rest = self.root, segs[1:]
        elif segs[0] in ("self", "super"):
            cur, rest = mod, segs
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    if cur.parent is None:
                        return None
                    cur = cur.parent
                rest = rest[1:]
        else:
            # A path starting with a name in scope: a child module or a `use` alias.
            if segs[0] in mod.children:
                cur, rest = mod, segs
            else:
                for usegs, alias in mod.uses:
                    if alias == segs[0] and usegs[0] in ("crate", "self", "super"):
                        r = self.absolute(mod, usegs)
                        if r is None:
                            return None
                        return r[0], r[1] + segs[1:]
                return None
        while rest and rest[0] in cur.children:
            cur, rest = cur.children[rest[0]], rest[1:]
        return cur, rest

    def resolve(self, mod, segs, seen=None):
        """The file that defines what `segs` (relative to `mod`) names."""
        r = self.absolute(mod, segs)
        if r is None:
            return None
        cur, rest = r
        if not rest:
            return cur.file
        name = rest[0]
        seen = seen or set()
        key = (cur.path, name)
        if key in seen:
            return cur.file
        seen.add(key)
        if name in cur.items:
            return cur.file
        for usegs, alias in cur.uses:
            if alias == name:
                t = self.resolve(cur, usegs + rest[1:], seen)
                return t or cur.file
        for g in cur.globs:
            r2 = self.absolute(cur, g)
            if r2 is None:
                continue
            gm, grest = r2
            if grest:
                continue
            if name in gm.items or name in gm.children or any(a == name for _, a in gm.uses):
                t = self.resolve(gm, ["self"] + rest, seen)
                if t:
                    return t
        return cur.file

    def modules(self):
        stack = [self.root]
        while stack:
            m = stack.pop()
            yield m
            stack.extend(m.children.values())

    def graph(self, strict):
        edges = {f: {} for f in self.files}
        for mod in self.modules():
            ancestors = set()
            m = mod.parent
            while m is not None:
                ancestors.add(m.file)
                m = m.parent
            for segs, line in mod.refs:
                t = self.resolve(mod, segs)
                if not t or t == mod.file:
                    continue
                # A child module is part of its parent (declared and owned by it): its use of
                # the definitions the parent shares with its parts is not an arrow between
                # peers. `--strict` counts it too.
                if t in ancestors and not strict:
                    continue
                edges[mod.file].setdefault(t, line)
        return edges


def cycles(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def shortest_cycle(edges, comp, start):
    """One cycle through `start` inside the component, as a list of files."""
    from collections import deque

    comp = set(comp)
    prev = {start: None}
    q = deque([start])
    while q:
        v = q.popleft()
        for w in sorted(edges[v]):
            if w not in comp:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                q.append(w)
    return [start]


def main():
    args = sys.argv[1:]
    strict = "--strict" in args
    roots = [a for a in args if a != "--strict"]
    bad = 0
    for root in roots:
        crate = Crate(root, root)
        edges = crate.graph(strict)
        for comp in cycles(edges):
            bad += 1
            print(f"cycle in {os.path.dirname(os.path.dirname(root)) or '.'}: {len(comp)} files")
            done = set()
            for f in comp:
                cyc = shortest_cycle(edges, comp, f)
                key = frozenset(zip(cyc, cyc[1:]))
                if key in done:
                    continue
                done.add(key)
                hops = " -> ".join(f"{a}:{edges[a][b]}" for a, b in zip(cyc, cyc[1:]))
                print(f"    {hops} -> {cyc[-1]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
