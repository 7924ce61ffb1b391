"""Import circles between the files of host/src (`./dev circles`).

A file imports another when it names an item of it: `use crate::a::b::X`,
`use super::{x, y}`, or a path `crate::a::b::f(...)` in its code. A path to
a `mod.rs` that only re-exports an item (`pub use child::X`) counts as
importing the file that defines it. A circle is a set of files each of
which reaches the others through such imports (a strongly connected
component of the graph, Tarjan's algorithm); a module's `mod child;`
declaration is not an import. Inside an inline module of a file (`mod tests
{ use super::*; }`), `super` first leaves the inline module, as in Rust: it
names the file's own items, not its parent's. Prints each circle, smallest first, and
exits 1 when there is any.
"""
import re, sys, os
from pathlib import Path
ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "host/src")

def module_of(p: Path):
    rel = p.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod": parts = parts[:-1]
    if parts == ["lib"]: parts = []
    return tuple(parts)

files = {}
for p in ROOT.rglob("*.rs"):
    if p.name == "main.rs" and p.parent == ROOT: continue
    files[module_of(p)] = p

def strip(src):
    """Comments out, strings and char literals emptied, in one left-to-right
    pass (a `//` inside a string is not a comment; a `{` in a string or a
    char is not a brace)."""
    token = re.compile(r"""/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])'""", re.S)
    def blank(m):
        t = m.group(0)
        return "" if t.startswith("/") else t[0] * 2
    return token.sub(blank, src)

def expand(tree):
    """'a::{b, c::{d, e}}' -> ['a::b', 'a::c::d', 'a::c::e']"""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [re.sub(r"\s+as\s+\w+$", "", tree).strip()]
    prefix = tree[:i]
    depth = 0; parts = []; cur = ""
    for ch in tree[i+1:tree.rfind("}")]:
        if ch == "{": depth += 1
        if ch == "}": depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur); cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for part in parts:
        if part.strip():
            out += [prefix + x if x != "self" else prefix.rstrip(":") for x in expand(part)]
    return out

def inline_mods(src):
    """The spans (start, end) of the inline modules (`mod x { … }`) in `src`."""
    spans = []
    for m in re.finditer(r"\bmod\s+\w+\s*\{", src):
        depth = 0
        for i in range(m.end() - 1, len(src)):
            if src[i] == "{": depth += 1
            elif src[i] == "}":
                depth -= 1
                if depth == 0:
                    spans.append((m.start(), i)); break
    return spans

def in_file(path, depth):
    """`path` as written `depth` inline modules deep, as seen from the file:
    the `super`s that only leave inline modules are dropped (None: it names
    the file itself)."""
    segs = path.split("::")
    while depth and segs and segs[0] in ("super", "self"):
        if segs[0] == "self":
            return None
        segs = segs[1:]; depth -= 1
        if not segs or segs[0] not in ("super",):
            return None if not segs or depth else "self::" + "::".join(segs)
    return "::".join(segs)

reexports = {}  # module -> {name: full path}
paths_of = {}
for mod, p in files.items():
    src = strip(p.read_text())
    spans = inline_mods(src)
    depth_at = lambda pos: sum(1 for a, b in spans if a < pos < b)
    paths = []
    for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", src):
        d = depth_at(m.start())
        for path in expand(m.group(2)):
            path = in_file(path, d)
            if path is None: continue
            paths.append(path)
            if m.group(1) and d == 0:
                name = path.split("::")[-1]
                reexports.setdefault(mod, {})[name] = path
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", src):
        path = in_file(m.group(1), depth_at(m.start()))
        if path is not None: paths.append(path)
    paths_of[mod] = paths

def absolute(mod, path):
    segs = path.split("::")
    # `super` from a file module a/b.rs (module a::b) is a; from a/mod.rs (module a) is ''.
    if segs[0] == "crate": cur = []; segs = segs[1:]
    elif segs[0] in ("super", "self"):
        cur = list(mod)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super": cur = cur[:-1]
            segs = segs[1:]
    else:
        # a sibling or child module named directly (use child::X)
        if tuple(list(mod) + segs[:1]) in files: cur = list(mod)
        else: return None
    return cur + segs

def resolve(segs, depth=0):
    """The file defining what `segs` names (following pub use re-exports of mod.rs files)."""
    best = None; i = 0
    for i in range(len(segs), -1, -1):
        if tuple(segs[:i]) in files:
            best = tuple(segs[:i]); break
    if best is None: return None
    rest = segs[i:]
    if rest and depth < 5 and best in reexports and rest[0] in reexports[best]:
        target = absolute(best, reexports[best][rest[0]])
        if target:
            r = resolve(target + rest[1:], depth + 1)
            if r: return r
    return best

edges = {m: set() for m in files}
for mod, paths in paths_of.items():
    for path in paths:
        segs = absolute(mod, path)
        if segs is None: continue
        t = resolve(segs)
        if t is not None and t != mod:
            edges[mod].add(t)

# Tarjan
index = {}; low = {}; stack = []; on = set(); sccs = []; counter = [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in files:
    if v not in index: strong(v)
name = lambda m: str(files[m].relative_to(ROOT))
for c in sorted(sccs, key=len):
    print(len(c), sorted(name(m) for m in c))
print(f"{len(sccs)} import circle(s) among {len(files)} files of {ROOT}")
sys.exit(1 if sccs else 0)
