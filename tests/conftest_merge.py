"""Test programs for the DWARF reader and the type merger, compiled inside the tests."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from elftools.elf.elffile import ELFFile

COMMON_H = r"""
#include <stddef.h>
typedef unsigned long ulong_t;
struct point { int x, y; };
struct node { int value; struct node *next; struct point where; };
struct ping; struct pong;
struct ping { struct pong *other; int n; };
struct pong { struct ping *other; double d; };
enum color { RED, GREEN = 5, BLUE };
struct flags { unsigned a : 3; unsigned b : 5; signed c : 7; unsigned long long wide : 40; };
struct holder {
    union { int i; float f; } u;
    struct { short lo, hi; } pair;
    enum { ANON_A, ANON_B } kind;
    struct flags fl;
    int arr[4][2];
    const volatile struct node *cvn;
    void (*callback)(struct holder *, int);
};
extern struct node *global_list;
double blend(double a, double b, float t);
int walk(const struct node *n);
void fill(struct holder *h, int k);
int secret_a(void);
int secret_b(void);
"""

A_C = r"""
#include "common.h"
struct secret { int a; double b; };
static struct secret sa = { 1, 2.5 };
struct node *global_list;
struct holder ha;
double blend(double a, double b, float t) {
    double r = a * (1.0 - t) + b * t;
    long double x = (long double)r * 3;
    return (double)(x / 7) + (float)r;
}
int walk(const struct node *n) { int s = 0; for (; n; n = n->next) s += n->value + n->where.x; return s; }
int secret_a(void) { return sa.a + (int)sa.b; }
"""

B_C = r"""
#include "common.h"
struct secret { char c[3]; };
static struct secret sb = { { 'x', 'y', 'z' } };
struct ping gping; struct pong gpong;
void fill(struct holder *h, int k) {
    h->u.i = k; h->pair.lo = (short)k; h->pair.hi = 2; h->kind = ANON_B;
    h->fl.a = 1; h->fl.b = 3; h->fl.c = -2; h->fl.wide = 12345; h->arr[1][1] = k;
    gping.other = &gpong; gpong.other = &gping; gpong.d = k * 0.5;
}
int secret_b(void) { return sb.c[0] + sb.c[2]; }
"""

MAIN_C = r"""
#include <stdio.h>
#include "common.h"
static void cb(struct holder *h, int k) { h->u.i += k; }
int main(void) {
    struct node n2 = { 2, NULL, { 3, 4 } }, n1 = { 1, &n2, { 5, 6 } };
    struct holder h;
    enum color c = GREEN;
    global_list = &n1;
    fill(&h, 7);
    h.callback = cb;
    h.callback(&h, 1);
    float t = 0.25f;
    double v = blend(1.5, 2.5, t);
    printf("%d %d %d %d %.3f %d\n", walk(global_list), h.u.i, secret_a(), secret_b(), v, (int)c);
    return 0;
}
"""

CPP_H = r"""
namespace geo {
  template <class T> struct box { T value; box *next; T get() const { return value; } };
  struct shape { virtual ~shape() {} virtual double area() const = 0; int id; };
  struct circle : shape { double r; double area() const override; };
  class tree;
  class forest { public: tree *first; int count; };
  class tree { public: forest *owner; tree *left, *right; box<int> payload; };
  enum class kind : unsigned char { small, large };
  struct point3 { float x, y, z; point3 operator+(const point3 &o) const { return {x + o.x, y + o.y, z + o.z}; } };
}
namespace { struct hidden { int h; }; }
double total(const geo::shape &s);
int count_trees(const geo::forest &f);
geo::point3 shift(geo::point3 p);
"""

A_CPP = r"""
#include "shapes.h"
double geo::circle::area() const { return 3.14159 * r * r; }
double total(const geo::shape &s) { geo::box<double> b{ s.area(), nullptr }; return b.get() + s.id; }
int count_trees(const geo::forest &f) { int n = 0; for (geo::tree *t = f.first; t; t = t->left) n += t->payload.get(); return n + f.count; }
"""

B_CPP = r"""
#include "shapes.h"
geo::point3 shift(geo::point3 p) { geo::point3 d{1.0f, 2.0f, 0.5f}; static hidden hh{3}; return p + d + geo::point3{(float)hh.h, 0, 0}; }
"""

MAIN_CPP = r"""
#include <cstdio>
#include "shapes.h"
int main() {
    geo::circle c; c.r = 2.0; c.id = 1;
    geo::forest f; geo::tree t1{}, t2{}; t1.left = &t2; t1.payload.value = 4; t2.payload.value = 5;
    f.first = &t1; f.count = 2; t1.owner = &f;
    geo::box<geo::kind> bk{ geo::kind::large, nullptr };
    geo::point3 p = shift(geo::point3{1, 1, 1});
    std::printf("%.2f %d %d %.1f\n", total(c), count_trees(f), (int)bk.get(), p.x + p.y + p.z);
    return 0;
}
"""

C_FILES = {"common.h": COMMON_H, "a.c": A_C, "b.c": B_C, "main.c": MAIN_C}
CPP_FILES = {"shapes.h": CPP_H, "a.cpp": A_CPP, "b.cpp": B_CPP, "main.cpp": MAIN_CPP}

# (compiler, language, dwarf version, optimisation)
VARIANTS = [(cc, lang, dw, opt) for lang in ("c", "c++") for cc in ("gcc", "clang") for dw in (4, 5)
            for opt in ("-O0", "-O2")]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def build(tmp: Path, cc: str, lang: str, dwarf: int, opt: str, extra: tuple[str, ...] = ()) -> Path:
    """Compile one of the test programs; returns the executable."""
    files = C_FILES if lang == "c" else CPP_FILES
    src = tmp / f"src-{lang}"
    src.mkdir(exist_ok=True)
    for name, text in files.items():
        (src / name).write_text(text)
    driver = {("gcc", "c"): "gcc", ("clang", "c"): "clang", ("gcc", "c++"): "g++", ("clang", "c++"): "clang++"}
    out = tmp / f"prog-{cc}-{lang.replace('+', 'x')}-{dwarf}{opt}"
    sources = [str(src / n) for n in files if not n.endswith(".h")]
    subprocess.run([driver[cc, lang], f"-gdwarf-{dwarf}", opt, *extra, "-o", str(out), *sources, "-lm"],
                   check=True, capture_output=True)
    return out


def load_sections(path: Path) -> tuple[dict[str, bytes], bool, int]:
    """The (decompressed) .debug_* sections of an ELF file, its endianness and address size."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        secs = {s.name: s.data() for s in elf.iter_sections() if s.name.startswith((".debug_", ".gdb_index"))}
        return secs, elf.little_endian, elf.elfclass // 8


_BUILD_DIR: Path | None = None
_BUILT: dict[tuple, Path] = {}


def cached_build(cc: str, lang: str, dwarf: int, opt: str) -> Path:
    """``build`` once per test session (the programs are shared by the reader and merge tests)."""
    global _BUILD_DIR
    key = (cc, lang, dwarf, opt)
    if key not in _BUILT:
        if _BUILD_DIR is None:
            _BUILD_DIR = Path(tempfile.mkdtemp(prefix="linkplugin-merge-tests-"))
        _BUILT[key] = build(_BUILD_DIR, cc, lang, dwarf, opt)
    return _BUILT[key]


def merge_file(src: Path, dst: Path, jobs: int = 1) -> "object":
    """Merge the types of ``src`` into ``dst``; returns the MergeResult.

    Uses the library's ELF writer when it exists, objcopy otherwise.
    """
    from linkplugin.merge import merge_sections
    secs, little, asize = load_sections(src)
    result = merge_sections(secs, little_endian=little, address_size=asize, jobs=jobs)
    try:
        from linkplugin.api import merge_types_file  # type: ignore[attr-defined]
    except ImportError:
        merge_types_file = None
    if merge_types_file is not None:
        merge_types_file(src, dst, jobs=jobs)
        return result
    args = ["objcopy", "--decompress-debug-sections"]
    for name, data in sorted(result.replace.items()):
        f = dst.parent / (dst.name + name)
        f.write_bytes(data)
        args += ["--update-section", f"{name}={f}"]
    for name in result.drop:
        args += ["--remove-section", name]
    subprocess.run(args + [str(src), str(dst)], check=True, capture_output=True)
    return result
