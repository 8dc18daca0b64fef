#!/usr/bin/env python3
"""Fail if files under src/ import each other in a circle, of any length.

Each file should sit in a layer and only reach down; a circle (a.rs uses b.rs ...
uses a.rs) leaves no order in which the files can be read, tested or changed one
at a time.  This check keeps such circles from coming back.

Modules are found from src/lib.rs through `mod x;` (cfg-gated too; the `mod`
line is not an edge).  Paths in `use` trees and in code starting with `crate::`,
`$crate::`, `self::`, `super::`, a child module or a `use`d name resolve to the
deepest module that is a file (`crate::config::Builder` -> config/mod.rs);
re-exports are not followed.  Comments, literals and self-edges are ignored.
On a circle: prints each strongly connected component, one example cycle and
every edge inside it with its line, and exits 1.
By default a `pub use` by a mod.rs/lib.rs of its own descendants is no
edge, and an import through such a re-export is charged to the file that
defines the item; --strict counts the facades as files too.
Usage: python3 .ci/import_cycles.py [--strict] [crate-dir]
"""
import bisect
import re
import sys
from pathlib import Path

TOKEN = re.compile(r"r#[A-Za-z_]\w*|\$?[A-Za-z_]\w*|::|\S")
IDENT = re.compile(r"\$?[A-Za-z_]\w*$")
LEX = re.compile(r"""//[^\n]*|/\*|(?:b|c)?r(\#*)".*?"\1|(?:b|c)?"(?:\\.|[^"\\])*"
    |b?'(?:\\(?:u\{[0-9a-fA-F]*\}|x..|.)|[^'\\])'|(?P<word>\w+)""", re.S | re.X)


def strip(text):
    """Blank out comments, strings and char literals (not 'lifetimes), keeping newlines."""
    out, i = [], 0
    while m := LEX.search(text, i):
        end, depth = m.end(), int(m.group() == "/*")
        while depth:  # block comments nest in Rust
            nxt = re.compile(r"/\*|\*/").search(text, end)
            end = nxt.end() if nxt else len(text)
            depth = nxt and depth + (1 if nxt.group() == "/*" else -1)
        piece = text[m.start():end]
        out += [text[i:m.start()], piece if m.group("word") else re.sub(r"[^\n]", " ", piece)]
        i = end
    return "".join(out + [text[i:]])


def tokens(text):
    """[(token, line number)] of the code with comments and literals blanked."""
    code = strip(text)
    starts = [0] + [m.end() for m in re.finditer("\n", code)]
    return [(m.group().removeprefix("r#"), bisect.bisect_right(starts, m.start()))
            for m in TOKEN.finditer(code)]


def module_tree(src):
    """Map module path tuples ('crate', 'core', 'handoff') -> file Path."""
    modules, todo = {("crate",): src / "lib.rs"}, [("crate",)]
    while todo:
        mod = todo.pop()
        path = modules[mod]
        text = strip(path.read_text())
        if "#[path" in text:
            sys.exit(f"{path}: #[path = ..] is not supported by this check")
        base = path.parent if path.name in ("lib.rs", "mod.rs") else path.with_suffix("")
        for name in re.findall(r"\bmod\s+(?:r#)?(\w+)\s*;", text):
            for cand in (base / f"{name}.rs", base / name / "mod.rs"):
                if cand.is_file():
                    modules[mod + (name,)] = cand; todo.append(mod + (name,)); break
            else:
                print(f"warning: {path}: no file for `mod {name};`")
    return modules


def parse_use(toks, i, prefix, leaves):
    """Parse one use tree at toks[i]; append (segments, alias, line); return next i."""
    segs = list(prefix)
    if toks[i][0] == "::":  # `::std::..` is an external crate
        segs, i = ["::"], i + 1
    while True:
        tok, line = toks[i]
        if tok == "{":
            i += 1
            while toks[i][0] != "}":
                i = parse_use(toks, i, segs, leaves)
                if toks[i][0] == ",": i += 1
            return i + 1
        if tok == "*":
            leaves.append((segs, None, line)); return i + 1
        if tok == "self" and segs:  # `a::{self}` names `a` itself
            tok = None
        elif IDENT.match(tok):
            segs = segs + [tok]
        i += 1
        if toks[i][0] == "::":
            i += 1; continue
        alias = segs[-1] if segs else None
        if toks[i][0] == "as":
            alias, i = toks[i + 1][0], i + 2
        leaves.append((segs, alias, line)); return i


def scan(toks, mod):
    """Yield (kind, scope, segments, alias, line, is_pub) for use leaves and paths."""
    scope, stack, depth, i = list(mod), [], 0, 0
    while i < len(toks):
        tok, line = toks[i]
        if tok == "use" and (i == 0 or toks[i - 1][0] != "::"):
            j = i - 1
            while j >= 0 and toks[j][0] in ("(", ")", "crate", "super", "in"): j -= 1
            is_pub = j >= 0 and toks[j][0] == "pub"
            leaves = []
            i = parse_use(toks, i + 1, [], leaves)
            for segs, alias, ln in leaves:
                yield "use", tuple(scope), segs, alias, ln, is_pub
            continue
        if tok == "mod" and i + 2 < len(toks) and toks[i + 2][0] == "{":
            scope.append(toks[i + 1][0]); stack.append(depth); depth += 1; i += 3; continue
        if tok == "{": depth += 1
        elif tok == "}":
            depth -= 1
            if stack and stack[-1] == depth: stack.pop(); scope.pop()
        elif (IDENT.match(tok) and i + 2 < len(toks) and toks[i + 1][0] == "::"
              and (i == 0 or toks[i - 1][0] not in ("::", "."))):
            segs = [tok]
            while i + 2 < len(toks) and toks[i + 1][0] == "::" and IDENT.match(toks[i + 2][0]):
                segs.append(toks[i + 2][0]); i += 2
            yield "path", tuple(scope), segs, None, line, False
        i += 1


def absolute(segs, scope, modules, aliases):
    """Turn a path into ('crate', ...) segments, or None if it leaves the crate."""
    first, rest = (segs or [None])[0], list(segs[1:])
    if first in ("crate", "$crate"): return ["crate"] + rest
    if first in ("self", "super"):
        base = list(scope)
        for k, seg in enumerate(segs + [None]):
            if seg == "super": base = base[:-1]
            elif seg != "self": break
        return base + list(segs[k:])
    if scope + (first,) in modules: return list(scope) + list(segs)
    for k in range(len(scope), 0, -1):  # names imported by `use`, innermost scope first
        if (scope[:k], first) in aliases: return aliases[(scope[:k], first)] + rest
    return None


def reexports_of(file_mod, modules):
    """(facade module, name) -> where the name really lives, for every
    `pub use` of a lib.rs/mod.rs: an import through a facade is charged to
    the file that defines the item, not to the facade."""
    found = {}
    for f, mod in file_mod.items():
        if f.name not in ("lib.rs", "mod.rs"): continue
        text, aliases = f.read_text(), {}
        for kind, scope, segs, alias, ln, is_pub in scan(tokens(text), mod):
            if kind == "use" and is_pub and alias and alias != "_" and scope == tuple(mod):
                a = absolute(segs, scope, modules, aliases)
                if a: found[(tuple(mod), alias)] = a
    return found


def follow(a, modules, reexports):
    """Resolve `a` through facade re-exports until it names a defining file."""
    for _ in range(8):
        k = next((k for k in range(len(a), 0, -1) if tuple(a[:k]) in modules), None)
        if k is None or k >= len(a) or (tuple(a[:k]), a[k]) not in reexports: return a
        a = reexports[(tuple(a[:k]), a[k])] + list(a[k + 1:])
    return a


def file_edges(f, mod, modules, file_mod, skip_reexports, reexports=None):
    """Yield (target file, line number, line text) for every path in file f."""
    text = f.read_text()
    lines, events, aliases = text.split("\n"), list(scan(tokens(text), mod)), {}
    for kind, scope, segs, alias, ln, _ in events:  # pass 1: names brought in by `use`
        a = absolute(segs, scope, modules, aliases) if kind == "use" else None
        if a and alias and alias != "_": aliases[(scope, alias)] = a
    for kind, scope, segs, alias, ln, is_pub in events:  # pass 2: edges
        a = absolute(segs, scope, modules, aliases)
        if a and reexports: a = follow(a, modules, reexports)
        target = a and next((modules[tuple(a[:k])] for k in range(len(a), 0, -1)
                             if tuple(a[:k]) in modules), None)  # deepest module that is a file
        facade = (is_pub and f.name in ("lib.rs", "mod.rs") and target
                  and file_mod[target][:len(mod)] == mod)
        if target and target != f and not (skip_reexports and facade):
            yield target, ln, lines[ln - 1].strip()


def main(argv):
    root = Path(next((a for a in argv if not a.startswith("--")), Path(__file__).parent.parent))
    src = root / "src"
    modules = module_tree(src)
    file_mod = {f: m for m, f in modules.items()}
    for f in sorted(set(src.rglob("*.rs")) - set(file_mod)):
        print(f"warning: {f.relative_to(src)} is not reached from lib.rs; skipped")
    name = lambda f: str(f.relative_to(src))
    edges = {}  # (from, to) -> distinct [(line number, line text)]
    # A facade (a lib.rs/mod.rs re-exporting its children) is not a layer:
    # its re-export lines are no edges, and imports through it are charged
    # to the file that defines the item. `--strict` counts facades as files.
    strict = "--strict" in argv
    reexports = None if strict else reexports_of(file_mod, modules)
    for f, mod in sorted(file_mod.items()):
        for target, ln, txt in file_edges(f, mod, modules, file_mod, not strict, reexports):
            sites = edges.setdefault((f, target), [])
            if (ln, txt) not in sites: sites.append((ln, txt))
    graph = {f: sorted({b for a, b in edges if a == f}, key=name) for f in file_mod}
    sccs = components(graph)
    if not sccs:
        print(f"import graph: {len(graph)} files, {len(edges)} edges, no cycles"); return 0
    print(f"import graph: {len(graph)} files, {len(edges)} edges, "
          f"{len(sccs)} circle(s) (strongly connected components):")
    def show(a, b):
        (ln, txt), more = edges[(a, b)][0], len(edges[(a, b)]) - 1
        extra = f"  (+{more} more)" if more else ""
        return f"    {name(a)} -> {name(b)}  ({name(a)}:{ln}: {txt}){extra}"
    for n, comp in enumerate(sorted(sccs, key=lambda c: (-len(c), min(map(name, c)))), 1):
        inner = sorted((e for e in edges if e[0] in comp and e[1] in comp),
                       key=lambda e: (name(e[0]), name(e[1])))
        files = ", ".join(sorted(map(name, comp)))
        print(f"\n[{n}] {len(comp)} files, {len(inner)} edges: {files}")
        cycle = example_cycle(graph, min(comp, key=name), comp)
        print("  cycle: " + " -> ".join(map(name, cycle)))
        print("\n".join(show(a, b) for a, b in zip(cycle, cycle[1:])))
        print("  all edges in this component:\n" + "\n".join(show(a, b) for a, b in inner))
    return 1


def components(graph):
    """Strongly connected components of more than one file (the graph is small)."""
    def reach(g, v):
        seen, todo = {v}, [v]
        while todo:
            todo += [w for w in g[todo.pop()] if w not in seen and not seen.add(w)]
        return seen
    rev = {v: [a for a in graph if v in graph[a]] for v in graph}
    comps = {frozenset(reach(graph, v) & reach(rev, v)) for v in graph}
    return [c for c in comps if len(c) > 1]


def example_cycle(graph, start, members):
    """Shortest cycle through `start` inside its component (breadth-first)."""
    prev, todo = {}, [start]
    for v in todo:
        for w in graph[v]:
            if w == start:
                path = [v]  # walk back to start, then reverse
                while path[-1] != start: path.append(prev[path[-1]])
                return path[::-1] + [start]
            if w in members and w not in prev: prev[w] = v; todo.append(w)
    return [start]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
