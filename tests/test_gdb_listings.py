"""gdb lists the same program after merge-types: nothing moved, nothing lost, no new complaints.

The whole ``info functions .``, ``info variables .`` and ``info types .``
listings of each program are compared by linkplugin.gdblist (the comparison
the benchmark uses too).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, linkplugin, need
from conftest_merge import C_FILES, have
from linkplugin.gdblist import compare_listings, expansion_order

# Several units sharing a header, included after different library headers so
# that each unit numbers the source files differently: static data members
# (plain, const, of a template), member functions declared in the header and
# defined in one unit, inline members, class and function templates
# instantiated in several units, `using` declarations in a namespace and at
# file scope, typedefs of templates.
INVENTORY_H = r"""
#include <cstdio>
#include <string>
#include <vector>
namespace inv {
  using std::string;
  using std::vector;
  struct item {
    string name; int qty;
    static int created;
    static const int limit = 8;
    item(string n, int q);
    int weight() const;
    void bump() { ++qty; }
  };
  template <class T> struct stack {
    vector<T> v;
    static int pushes;
    void push(const T &x) { v.push_back(x); ++pushes; }
    T top() const { return v.back(); }
    int depth() const;
  };
  template <class T> int stack<T>::pushes = 0;
  template <class T> int stack<T>::depth() const { return (int)v.size(); }
  class store {
  public:
    static store *instance;
    vector<item> items;
    int total() const;
    void add(const item &i);
  };
  typedef stack<item> item_stack;
  inline int twice(int x) { return 2 * x; }
  template <class T> T larger(T a, T b) { return a < b ? b : a; }
}
using inv::item;
int report(const inv::store &s);
int count_stack(inv::item_stack &st);
"""

STORE_CPP = r"""
#include "inventory.h"
namespace inv {
int item::created = 0;
store *store::instance = nullptr;
item::item(string n, int q) : name(n), qty(q) { ++created; }
int item::weight() const { return twice(qty) + (int)name.size(); }
void store::add(const item &i) { items.push_back(i); instance = this; }
int store::total() const { int t = 0; for (const item &i : items) t += i.weight(); return t; }
}
"""

REPORT_CPP = r"""
#include <map>
#include <memory>
#include "inventory.h"
static std::map<int, std::shared_ptr<int>> seen;
static int calls;
int report(const inv::store &s) {
    inv::stack<int> sizes;
    for (const item &i : s.items) sizes.push(i.qty);
    ++calls;
    seen[calls] = std::make_shared<int>(inv::larger(calls, 2));
    std::printf("%d %d %d\n", s.total(), sizes.depth(), sizes.top() + calls);
    return inv::twice(sizes.depth());
}
int count_stack(inv::item_stack &st) { return st.depth() + inv::stack<item>::pushes; }
"""

MAIN_CPP = r"""
#include <algorithm>
#include <functional>
#include "inventory.h"
static int calls;
int main() {
    inv::store s;
    s.add(item("bolt", 3));
    s.add(item("nut", inv::item::limit));
    inv::stack<int> ints; ints.push(4); ++calls;
    std::function<int(int)> f = inv::twice;
    calls += f(std::min(1, 2)) + inv::larger(calls, 1) + (int)inv::larger(0.5, 1.5);
    inv::item_stack items; items.push(s.items[0]); items.v.back().bump();
    int r = report(s) + count_stack(items) + ints.top() + calls;
    std::printf("%d %d\n", r, item::created);
    return 0;
}
"""

CPP_FILES = {"inventory.h": INVENTORY_H, "store.cpp": STORE_CPP, "report.cpp": REPORT_CPP, "main.cpp": MAIN_CPP}

# Classes without templated members, so every unit's copy merges into the first unit's: their
# inline members (and a template function's instances) are emitted out of line in a later unit
# that numbers its files differently, with DW_AT_specification (or an abstract origin that has
# one) pointing at the declaration in the class. gdb reads the decl_file it finds there with the
# later unit's file table.
COUNTER_H = r"""
#pragma once
struct counter {
  int n;
  static int total;
  static inline int made = 0;
  __attribute__((noinline)) void bump() { ++n; ++total; ++made; }
  __attribute__((noinline)) int get() const { return n; }
  void reset();
};
namespace geo {
  template <class T> __attribute__((noinline)) T twice(T x) { return x + x; }
  struct span { long lo, hi; __attribute__((noinline)) long width() const { return hi - lo; } };
}
int peek(const counter *c);
long spread(const geo::span *s);
int use_b(void);
"""

COUNTER_A = r"""
#include "counter.h"
int peek(const counter *c) { return c->n; }
long spread(const geo::span *s) { return s->hi; }
"""

COUNTER_B = r"""
#include <cstdio>
#include <cstddef>
#include <cstdlib>
static std::FILE *sink;
static std::size_t sizes[3];
static std::div_t parts;
#include "counter.h"
int counter::total = 0;
void counter::reset() { n = 0; }
int use_b(void) {
  counter c{1}; c.bump(); c.reset(); c.bump();
  geo::span s{1, 5};
  parts = std::div(7, 2);
  sizes[0] = sizeof c; sink = stdout;
  return c.get() + geo::twice(3) + (int)s.width() + (int)geo::twice(2L) + parts.rem + (sink != nullptr);
}
"""

COUNTER_MAIN = r"""
#include <cstdio>
#include "counter.h"
int main() {
  counter c{2}; c.bump(); geo::span s{0, 3};
  std::printf("%d %d %ld %d\n", use_b(), peek(&c), spread(&s) + s.width(), geo::twice(c.get()));
  return 0;
}
"""

COUNTER_FILES = {"counter.h": COUNTER_H, "a.cpp": COUNTER_A, "b.cpp": COUNTER_B, "main.cpp": COUNTER_MAIN}

VARIANTS = [(cc, lang, dw, opt) for lang in ("c", "c++") for cc in ("gcc", "clang") for dw in (4, 5)
            for opt in ("-O0", "-O2")]
DRIVER = {("gcc", "c"): "gcc", ("clang", "c"): "clang", ("gcc", "c++"): "g++", ("clang", "c++"): "clang++"}


def build(folder: Path, files: dict[str, str], driver: str, flags: list[str], name: str = "prog") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    sources = [file for file in files if not file.endswith(".h")]
    subprocess.run([driver, *flags, "-o", name, *sources, "-lm"], cwd=folder, check=True, capture_output=True)
    return folder / name


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_listings_unchanged_after_merge(tmp_path, variant):
    _assert_listings_unchanged(tmp_path, variant, threads=0)


def _assert_listings_unchanged(tmp_path: Path, variant: tuple, threads: int) -> None:
    """Build the C or C++ program of ``variant``, merge it, and compare gdb's listings of both
    (gdb indexing on ``threads`` worker threads)."""
    cc, lang, dwarf, opt = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("gdb")
    files = C_FILES if lang == "c" else CPP_FILES
    prog = build(tmp_path / "src", files, DRIVER[cc, lang], [f"-gdwarf-{dwarf}", opt])
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    report = compare_listings(prog, merged, threads=threads)
    assert report.input_entries > 10
    assert report.ok, report.summary(examples=10)


@pytest.mark.parametrize("threads", [2, 4])
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v[2] == 5], ids=lambda v: "-".join(map(str, v)))
def test_listings_unchanged_with_gdbs_worker_threads(tmp_path, variant, threads):
    """gdb's default indexes on one thread per core, one index per thread over a run of units
    split by their sizes, and expands units index by index: the output must list the same at
    those thread counts too (the references to canonical copies, which expand their units
    early, land on units that keep no copy for an ambiguous name: table.choose_winners)."""
    _assert_listings_unchanged(tmp_path, variant, threads)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v[1] == "c++"], ids=lambda v: "-".join(map(str, v)))
def test_out_of_line_members_stay_in_their_file(tmp_path, variant):
    cc, lang, dwarf, opt = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("gdb")
    prog = build(tmp_path / "src", COUNTER_FILES, DRIVER[cc, lang], [f"-gdwarf-{dwarf}", opt, "-std=c++17"])
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    report = compare_listings(prog, merged)
    assert report.ok, report.summary(examples=10)


@pytest.mark.parametrize("abi", ["-m32", "-mx32"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_32_bit_programs_read_the_same(tmp_path, cc, abi):
    """ELF32 programs (i386, and x32: x86-64 code in ELF32), whose DWARF has 4-byte addresses:
    gdb lists the same program, ``verify`` and readelf read every entity, llvm-dwarfdump finds no
    new error (clang's; on g++'s DWARF 5 it takes minutes), and the i386 program runs the same
    (x32 needs a kernel built for it). Debian's lib32stdc++6-12-dbg merges to 0.888x dwz's bytes
    (BENCHMARKS.md, session 29)."""
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("gdb")
    driver = DRIVER[cc, "c++"]
    try:
        prog = build(tmp_path / "src", CPP_FILES, driver, [abi, "-gdwarf-5", "-O2"])
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"{driver} {abi} cannot link here (Debian: g++-multilib): {exc.stderr.decode()[-200:]}")
    assert subprocess.run(["readelf", "-h", prog], capture_output=True, text=True).stdout.count("ELF32") == 1
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    report = compare_listings(prog, merged)
    assert report.input_entries > 10
    assert report.ok, report.summary(examples=10)
    linkplugin("verify", prog, merged)
    dump = subprocess.run(["readelf", "--debug-dump=info,abbrev,aranges,loc,Ranges", merged],
                          capture_output=True, text=True)
    assert dump.returncode == 0 and "Warning" not in dump.stderr, dump.stderr[-2000:]
    dwarfdump = "llvm-dwarfdump-16" if have("llvm-dwarfdump-16") else "llvm-dwarfdump"
    if cc == "clang" and have(dwarfdump):
        from test_compress import verify_errors

        assert verify_errors(dwarfdump, merged) <= verify_errors(dwarfdump, prog)
    if abi == "-m32":
        before = subprocess.run([prog], capture_output=True, text=True)
        if before.returncode != 126:  # (a kernel without 32-bit support: not run)
            after = subprocess.run([merged], capture_output=True, text=True)
            assert (after.returncode, after.stdout) == (before.returncode, before.stdout)


# Builds whose DWARF has another shape: link-time optimisation (gcc's early-debug units, which
# the LTO unit names across units by DW_AT_abstract_origin; clang's ThinLTO), DWARF 3, -g3 (a
# .debug_macro section beside) and clang's template names without arguments.
FLAVOURS = {"gcc-lto": ("g++", ["-g", "-O2", "-flto"]),
            "clang-thinlto": ("clang++", ["-g", "-O2", "-flto=thin", "-fuse-ld=lld"]),
            "gcc-dwarf3": ("g++", ["-gdwarf-3", "-O2"]), "gcc-g3": ("g++", ["-g3", "-O2"]),
            "clang-simple-template-names": ("clang++", ["-g", "-O0", "-gsimple-template-names"])}


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_listings_unchanged_for_other_dwarf_shapes(tmp_path, flavour):
    """gdb lists the same program (LTO drops some duplicate listings: allowed), ``verify`` reads
    every entity the same, and the program runs the same."""
    driver, flags = FLAVOURS[flavour]
    if not have(driver):
        pytest.skip(f"{driver} missing")
    need("gdb")
    try:
        prog = build(tmp_path / "src", CPP_FILES, driver, flags)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"{driver} {' '.join(flags)} cannot build here: {exc.stderr.decode()[-200:]}")
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    report = compare_listings(prog, merged, threads=2)
    assert report.input_entries > 10
    assert report.ok, report.summary(examples=10)
    linkplugin("verify", prog, merged)
    before = subprocess.run([prog], capture_output=True, text=True)
    after = subprocess.run([merged], capture_output=True, text=True)
    assert (after.returncode, after.stdout) == (before.returncode, before.stdout)


# The comparison itself, on pairs whose differences are known.

MOVE_H = "struct pair { int a, b; };\nint left(struct pair *p);\nint right(struct pair *p);\n"
MOVE_A = '#include "move.h"\nint left(struct pair *p) { return p->a; }\n'
MOVE_B = '#include "move.h"\nint right(struct pair *p) { return p->b; }\n'
MOVE_MAIN = '#include "move.h"\nint main(void) { struct pair p = {1, 2}; return left(&p) + right(&p) - 3; }\n'


def test_comparison_sees_moved_and_lost(tmp_path):
    need("gcc", "gdb", "objcopy")
    files = {"move.h": MOVE_H, "a.c": MOVE_A, "b.c": MOVE_B, "main.c": MOVE_MAIN}
    prog = build(tmp_path / "one", files, "gcc", ["-g", "-O0"])
    # The same program with left() defined in b.c (built in the same folder,
    # as gdb names files by their full path): gdb lists it under another file.
    files_moved = dict(files, **{"a.c": '#include "move.h"\n',
                                 "b.c": MOVE_B + MOVE_A.replace('#include "move.h"\n', "")})
    moved = build(tmp_path / "one", files_moved, "gcc", ["-g", "-O0"], name="moved")
    report = compare_listings(prog, moved)
    assert [(e.kind, Path(e.file).name, e.text) for e in report.moved] == \
        [("functions", "b.c", "int left(struct pair *);")]
    assert not report.lost
    # Without debug info every entity is lost and the functions become non-debugging symbols.
    stripped = tmp_path / "stripped"
    subprocess.run(["objcopy", "--strip-debug", str(prog), str(stripped)], check=True)
    report = compare_listings(prog, stripped)
    assert ("functions", "int left(struct pair *);") in report.lost
    assert ("types", "struct pair;") in report.lost
    assert {s.name for s in report.new_nondebug} >= {"left", "right", "main"}
    # A file compared with itself: nothing differs.
    assert compare_listings(prog, prog).ok


def test_comparison_command(tmp_path):
    need("gcc", "gdb")
    prog = build(tmp_path / "src", {"main.c": "int main(void) { return 0; }\n"}, "gcc", ["-g"])
    same = tmp_path / "same"
    shutil.copy(prog, same)
    result = linkplugin_module("linkplugin.gdblist", prog, same)
    assert result.returncode == 0 and "moved 0, lost 0" in result.stdout
    result = linkplugin_module("linkplugin.gdblist", prog, same, "--order")
    assert result.returncode == 0 and "units expanded: input 1, output 1; at a different place 0" in result.stdout
    bad = linkplugin_module("linkplugin.gdblist", prog, tmp_path / "missing")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def linkplugin_module(module: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


# gdb lists, for a typedef whose copies differ between units, the copy of the unit it expanded
# last. Lazily gdb 13 expands main's unit first, then units by their first function name
# (alpha.c, beta.c, zeta.c here), not in link order (zeta.c, beta.c, alpha.c). A canonical copy
# of `struct shared` in the first unit of the link (zeta.c) made gdb expand zeta.c as soon as
# alpha.c referenced it, before beta.c: gdb then listed beta.c's `typedef long value_t`.
ORDER_FILES = {
    "value.h": "typedef VALUE_T value_t;\n",
    "shared.h": "struct shared { int x; long y; };\n",
    "zeta.c": '#define VALUE_T int\n#include "value.h"\n#include "shared.h"\n'
              "value_t va; struct shared sa;\nint zeta(void) { return sa.x + (int)va; }\n",
    "beta.c": '#define VALUE_T long\n#include "value.h"\n#include "shared.h"\n'
              "value_t vb; struct shared sb;\nint beta(void) { return sb.x + (int)vb; }\n",
    "alpha.c": '#include "shared.h"\nstruct shared sc;\nint alpha(void) { return sc.x; }\n',
    "main.c": "int zeta(void); int beta(void); int alpha(void);\n"
              "int main(void) { return zeta() + beta() + alpha(); }\n",
}


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_canonical_copies_keep_gdbs_expansion_order(tmp_path, cc):
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("gdb")
    prog = build(tmp_path / "src", ORDER_FILES, cc, ["-g", "-O0"])
    # The link order puts zeta.c first; gdb's own order is the one expansion.py computes.
    assert expansion_order(prog) == ["main.c", "alpha.c", "beta.c", "zeta.c"]
    assert [k for k, _ in sorted(enumerate(unit_keys(prog)), key=lambda x: x[1])] == [3, 2, 1, 0]
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    assert expansion_order(merged) == ["main.c", "alpha.c", "beta.c", "zeta.c"]
    for readnow in (False, True):
        report = compare_listings(prog, merged, readnow=readnow)
        assert report.ok, report.summary(examples=10)


# zeta.c first in the link and larger than the other units together: with two indexing threads
# gdb indexes it alone, and expands it before the others.
THREAD_ORDER_FILES = {
    "zeta.c": "".join(f"struct z{k} {{ int a{k}; long b{k}; double c{k}; }} z{k};\n"
                      f"int zeta{k}(void) {{ return z{k}.a{k}; }}\n" for k in range(60)),
    "beta.c": "int beta(void) { return 2; }\n",
    "alpha.c": "int alpha(void) { return 1; }\n",
    "main.c": "int zeta0(void); int beta(void); int alpha(void);\n"
              "int main(void) { return zeta0() + beta() + alpha(); }\n",
}


@pytest.mark.parametrize("threads", [0, 2, 4])
def test_expansion_order_with_worker_threads(tmp_path, threads):
    """gdb on N worker threads builds one index per thread over runs of units cut by size and
    expands the units index by index (main's first): the order expansion.thread_ranks gives."""
    from linkplugin.dwarf.units import parse_units
    from linkplugin.merge.expansion import ranks, thread_ranks
    from elftools.elf.elffile import ELFFile
    if not have("gcc"):
        pytest.skip("gcc missing")
    need("gdb")
    prog = build(tmp_path / "src", THREAD_ORDER_FILES, "gcc", ["-g", "-O0"])
    with open(prog, "rb") as f:
        info = ELFFile(f).get_section_by_name(".debug_info").data()
    sizes = [u.end - u.off for u in parse_units(info)]
    keys = unit_keys(prog)
    rank = thread_ranks(keys, sizes, threads) if threads > 1 else ranks(keys)
    names = ["zeta.c", "beta.c", "alpha.c", "main.c"]
    predicted = [names[u] for u in sorted(range(4), key=lambda u: (rank[u], keys[u]))]
    assert predicted == (["main.c", "alpha.c", "beta.c", "zeta.c"] if threads < 2 else
                         ["main.c", "zeta.c", "alpha.c", "beta.c"])
    assert expansion_order(prog, threads=threads) == predicted


def unit_keys(prog: Path) -> list[tuple[int, bytes]]:
    """expansion.py's key of every unit of ``prog``."""
    from linkplugin.dwarf.abbrev import parse_abbrev_table
    from linkplugin.dwarf.read import decode_unit
    from linkplugin.dwarf.units import parse_units
    from linkplugin.merge.expansion import expansion_key
    from linkplugin.merge.hash import UnitEnv
    from elftools.elf.elffile import ELFFile
    with open(prog, "rb") as f:
        elf = ELFFile(f)
        secs = {name: elf.get_section_by_name(name).data() for name in (
            ".debug_info", ".debug_abbrev", ".debug_str", ".debug_line_str", ".debug_str_offsets", ".debug_line")
            if elf.get_section_by_name(name) is not None}
    keys = []
    for hdr in parse_units(secs[".debug_info"]):
        ud = decode_unit(secs[".debug_info"], hdr, parse_abbrev_table(secs[".debug_abbrev"], hdr.abbrev_off)[0])
        keys.append(expansion_key(secs[".debug_info"], ud, UnitEnv(secs, ud, secs[".debug_info"]).string))
    return keys


# gdb lists a type nested in a class on its own (`outer<int>::rebind<char>`) from the last unit
# holding *it*. Here a.cpp holds it last (c_a sorts before d_b), b.cpp holds the class last but
# without the member template's instance, and a.cpp's copy equals z.cpp's: merged away, gdb listed
# y.cpp's rebind<char> (another line) until nested names counted on their own (table.py).
NESTED_H = r"""
#ifdef SHIFT
template <class T> struct outer {
  T value;
  template <class U> struct rebind { typedef U other; };
  int get() const { return (int)value; }
};
#else
template <class T> struct outer {
  template <class U> struct rebind { typedef U other; };
  T value;
  int get() const { return (int)value; }
};
#endif
"""
NESTED_FILES = {
    "h.h": NESTED_H,
    "z.cpp": '#include "h.h"\nint a_z() { outer<int>::rebind<char>::other c = 1; outer<int> o{1}; return o.get() + c; }\n',
    "y.cpp": '#define SHIFT\n#include "h.h"\n'
             "int b_y() { outer<int>::rebind<char>::other c = 2; outer<int> o{2}; return o.get() + c; }\n",
    "a.cpp": '#include "h.h"\nint c_a() { outer<int>::rebind<char>::other c = 3; outer<int> o{3}; return o.get() + c; }\n',
    "b.cpp": '#include "h.h"\nint d_b() { outer<int> o{4}; return o.value; }\n',
    "main.cpp": "int a_z(); int b_y(); int c_a(); int d_b();\n"
                "int main() { return a_z() + b_y() + c_a() + d_b() > 0 ? 0 : 1; }\n",
}


@pytest.mark.parametrize("variant", [(cc, dw) for cc in ("gcc", "clang") for dw in (4, 5)],
                         ids=lambda v: f"{v[0]}-{v[1]}")
def test_nested_type_listed_from_its_own_last_holder(tmp_path, variant):
    cc, dwarf = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("gdb")
    prog = build(tmp_path / "src", NESTED_FILES, DRIVER[cc, "c++"], [f"-gdwarf-{dwarf}", "-O0"])
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    report = compare_listings(prog, merged)
    assert report.ok, report.summary(examples=10)
    # The compiled hash kernel finds the same nested names as the pure path.
    pure = tmp_path / "pure"
    subprocess.run([sys.executable, "-m", "linkplugin", "merge-types", str(prog), "-o", str(pure), "-j", "1"],
                   check=True, env=dict(os.environ, LINKPLUGIN_PURE_PYTHON="1"), cwd=ROOT)
    assert pure.read_bytes() == merged.read_bytes()
