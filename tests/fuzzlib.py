"""Fuzzing harness: mutate real ELF files and run every linkplugin command on them, in process.

Used by tests/test_fuzz.py (a short run with a fixed seed) and bench/fuzz.py (long runs).

* Seeds are small C and C++ programs compiled here by gcc and clang (DWARF 4, DWARF 5, 64-bit
  DWARF, a 32-bit object file), and copies made by objcopy with compressed debug sections (zlib,
  zstd, legacy .zdebug).
* A *case* is (seed, mutations, command), drawn from ``random.Random(f"{seed}:{case}")``, so
  any case can be replayed from its number alone. The mutators know the seed's structure (ELF
  header, section headers, compression headers, unit headers, abbreviation tables, references,
  expressions, string offsets, line table headers; mapped once with pyelftools, not with our
  reader) and aim at its boundaries and fields; DWARF inside a compressed section is mutated
  plain and compressed again.
* Cases run in worker processes (``-j``), each case through ``linkplugin.cli.main`` in
  process, under ``signal.alarm``; a worker that stops answering is killed by the parent, so a
  hang in C code counts too. Outcomes: success, clean error (exit 2, one line), traceback
  (anything escaping ``main``, or an unclean error), hang, leftover (a file left in the output
  folder), input changed.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BAD_OUTCOMES = ("traceback", "hang", "leftover", "input-changed", "bad-output", "harness-error")
OUTCOMES = ("success", "clean-error") + BAD_OUTCOMES

# --- seed programs ------------------------------------------------------------------------------

C_SOURCES = {
    "shapes.h": """
struct point { double x, y; };
enum kind { SQUARE, CIRCLE = 7 };
struct shape { const char *name; struct point corner[4]; unsigned flags : 3, kind : 5; enum kind k;
               union { int i; float f; } u; struct shape *next; };
typedef struct shape shape_t;
double area(const shape_t *s);
""",
    "area.c": """
#include "shapes.h"
static int calls;
double area(const shape_t *s) {
    double w = s->corner[1].x - s->corner[0].x, h = s->corner[2].y - s->corner[0].y;
    calls++;
    return s->k == CIRCLE ? 3.14 * w * w : w * h;
}
""",
    "main.c": """
#include <stdio.h>
#include "shapes.h"
shape_t global_shape = {"square", {{0, 0}, {2, 0}, {2, 2}, {0, 2}}, 1, 2, SQUARE, {3}, 0};
int main(int argc, char **argv) {
    shape_t local = global_shape;
    int vla[argc + 1];
    vla[0] = argc;
    double a = area(&local);
    printf("%s %.1f %d\\n", local.name, a, vla[0]);
    return a == 4.0 ? 0 : 1;
}
""",
}

CXX_SOURCES = {
    "zoo.h": """
namespace zoo {
enum class Diet : unsigned char { plants, meat };
template <typename T> struct Box { T value; Box *next; static int count; };
template <typename T> int Box<T>::count = 0;
struct Animal { virtual ~Animal() {} virtual int legs() const = 0; Diet diet = Diet::plants; };
struct Cat : Animal { int legs() const override { return 4; } Box<int> toys; };
struct Bird : Animal { int legs() const override { return 2; } Box<double> seeds; };
int count(const Animal &a);
}
""",
    "zoo.cpp": """
#include "zoo.h"
namespace zoo { int count(const Animal &a) { Box<int> b{a.legs(), nullptr}; return b.value; } }
""",
    "main.cpp": """
#include "zoo.h"
zoo::Box<double> global_box{2.5, nullptr};
int main() {
    zoo::Cat cat;
    zoo::Bird bird;
    int total = zoo::count(cat) + zoo::count(bird);
    auto lambda = [&](int k) { return total * k; };
    return lambda(1) == 6 ? 0 : 1;
}
""",
}

# Two units (the cxx-large seed; test_merge_output) of clang++ -fstandalone-debug over 64 KiB each (450 KiB and 70 KiB): full class
# definitions of the standard library's containers, regex and streams in every unit.
BIG_CPP = {
    "big.cpp": r"""
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>
int big(int argc) {
    std::unordered_map<std::string, std::vector<int>> m;
    std::map<int, std::shared_ptr<std::string>> n;
    std::ostringstream os;
    std::regex re("a+b");
    m["x"].push_back(argc);
    n[argc] = std::make_shared<std::string>("y");
    os << m.size() << *n[argc];
    std::function<int(int)> f = [](int v) { return v + 1; };
    return f((int)std::regex_match(os.str(), re));
}
""",
    "main.cpp": r"""
#include <iostream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>
int big(int argc);
int main(int argc, char **) {
    std::map<std::string, std::unordered_map<int, std::vector<std::string>>> m;
    m["a"][argc].push_back("b");
    std::cout << m.size() << big(argc) << std::endl;
    return 0;
}
"""}


# name: (compiler, flags, sources, objcopy compression or None, link)
SEEDS: dict[str, tuple[str, tuple[str, ...], str, str | None, bool]] = {
    "gcc-c-dwarf4": ("gcc", ("-g", "-gdwarf-4", "-O1"), "c", None, True),
    "gcc-c-dwarf5": ("gcc", ("-g", "-gdwarf-5", "-O2"), "c", None, True),
    "gcc-cxx-dwarf5": ("g++", ("-g", "-gdwarf-5", "-O1"), "cxx", None, True),
    "gcc-cxx-dwarf4": ("g++", ("-g", "-gdwarf-4", "-O0"), "cxx", None, True),
    "gcc-c-dwarf64": ("gcc", ("-g", "-gdwarf-5", "-gdwarf64", "-O1"), "c", None, True),
    "clang-c-dwarf5": ("clang", ("-g", "-gdwarf-5", "-O1"), "c", None, True),
    "clang-cxx-dwarf4": ("clang++", ("-g", "-gdwarf-4", "-O0"), "cxx", None, True),
    "clang-cxx-dwarf5": ("clang++", ("-g", "-gdwarf-5", "-O2"), "cxx", None, True),
    "gcc-c-m32-object": ("gcc", ("-g", "-m32", "-O1"), "c-freestanding", None, False),
    "gcc-c-dwarf5-zlib": ("gcc", ("-g", "-gdwarf-5", "-O2"), "c", "zlib", True),
    "gcc-cxx-dwarf4-zstd": ("g++", ("-g", "-gdwarf-4", "-O0"), "cxx", "zstd", True),
    "clang-cxx-dwarf5-zlib": ("clang++", ("-g", "-gdwarf-5", "-O2"), "cxx", "zlib", True),
    "gcc-c-dwarf4-zdebug": ("gcc", ("-g", "-gdwarf-4", "-O1"), "c", "zlib-gnu", True),
    # name indexes, which merge-types has to rewrite or drop
    "clang-cxx-dwarf5-names": ("clang++", ("-g", "-gdwarf-5", "-gpubnames", "-O1"), "cxx", None, True),
    "gcc-cxx-dwarf4-pubnames": ("g++", ("-g", "-gdwarf-4", "-gpubnames", "-O1"), "cxx", None, True),
    "gcc-c-dwarf5-gnu-pubnames": ("gcc", ("-g", "-gdwarf-5", "-ggnu-pubnames", "-O1"), "c", None, True),
    "gcc-cxx-dwarf5-gdb-index": ("g++", ("-g", "-gdwarf-5", "-O1"), "cxx", "gdb-index", True),
    # units over 64 KiB: merge-types writes their local references as DW_FORM_ref_udata
    "clang-cxx-dwarf5-large": ("clang++", ("-g", "-gdwarf-5", "-O1", "-fstandalone-debug"), "cxx-large", None, True),
    # dwz -m output, as Debian's debug files: strings and DIEs of a supplementary file
    "gcc-cxx-dwarf4-dwz-multifile": ("g++", ("-g", "-gdwarf-4", "-O0"), "cxx", "dwz-m", True),
}


def build_seeds(folder: Path) -> dict[str, Path]:
    """Compile the seed programs into ``folder`` (skipping any the toolchain cannot build)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, (compiler, flags, lang, compression, link) in SEEDS.items():
        if shutil.which(compiler) is None:
            continue
        src = folder / f"src-{name}"
        src.mkdir(exist_ok=True)
        freestanding = {k: v.replace("#include <stdio.h>", "int printf(const char *, ...);") for k, v in C_SOURCES.items()}
        sources = {"c": C_SOURCES, "cxx": CXX_SOURCES, "cxx-large": BIG_CPP}.get(lang, freestanding)
        for file, text in sources.items():
            (src / file).write_text(text)
        units = [f for f in sources if f.endswith((".c", ".cpp"))]
        target = folder / name
        # The same bytes whatever the folder, so a case number replays anywhere.
        cmd = [compiler, *flags, f"-fdebug-prefix-map={src}=/fuzz", "-o", str(target)]
        cmd += units if link else ["-c", units[-1]]
        plain = target if compression in (None, "gdb-index", "dwz-m") else folder / f"{name}.plain"
        cmd[cmd.index("-o") + 1] = str(plain)
        if subprocess.run(cmd, cwd=src, capture_output=True).returncode != 0:
            continue
        if compression == "dwz-m":
            # dwz -m wants a second program sharing types; -M names the supplementary file
            # relatively, so the seed's bytes do not depend on the folder either.
            other = folder / f"{name}.other"
            cmd[cmd.index("-o") + 1] = str(other)
            if shutil.which("dwz") is None or subprocess.run(cmd + ["-O2"], cwd=src, capture_output=True).returncode \
                    or subprocess.run(["dwz", "-m", f"{name}.common", "-M", f"{name}.common", target.name, other.name],
                                      cwd=folder, capture_output=True).returncode:
                continue
        elif compression == "gdb-index":
            if shutil.which("gdb-add-index") is None or \
                    subprocess.run(["gdb-add-index", str(target)], capture_output=True).returncode != 0:
                continue
        elif compression is not None:
            r = subprocess.run(["objcopy", f"--compress-debug-sections={compression}", str(plain), str(target)],
                               capture_output=True)
            if r.returncode != 0:
                continue
        out[name] = target
    return out


# --- seed structure (read with pyelftools from the intact seed) ----------------------------------

SHDR64 = {"sh_name": (0, 4), "sh_type": (4, 4), "sh_flags": (8, 8), "sh_addr": (16, 8), "sh_offset": (24, 8),
          "sh_size": (32, 8), "sh_link": (40, 4), "sh_info": (44, 4), "sh_addralign": (48, 8),
          "sh_entsize": (56, 8)}
SHDR32 = {k: (i * 4, 4) for i, k in enumerate(SHDR64)}
EHDR64 = {"ei_class": (4, 1), "ei_data": (5, 1), "e_type": (16, 2), "e_phoff": (32, 8), "e_shoff": (40, 8),
          "e_ehsize": (52, 2), "e_phentsize": (54, 2), "e_phnum": (56, 2), "e_shentsize": (58, 2),
          "e_shnum": (60, 2), "e_shstrndx": (62, 2)}
EHDR32 = {"ei_class": (4, 1), "ei_data": (5, 1), "e_type": (16, 2), "e_phoff": (28, 4), "e_shoff": (32, 4),
          "e_ehsize": (40, 2), "e_phentsize": (42, 2), "e_phnum": (44, 2), "e_shentsize": (46, 2),
          "e_shnum": (48, 2), "e_shstrndx": (50, 2)}
SHF_ALLOC, SHF_COMPRESSED = 0x2, 0x800


@dataclass
class SectionMap:
    index: int
    name: str
    header_at: int          # file offset of its section header
    offset: int
    size: int
    flags: int
    compression: str | None  # None, "gabi" (SHF_COMPRESSED) or "gnu" (.zdebug)
    ch_type: int = 0


@dataclass
class DwarfMap:
    """Positions in the *plain* bytes of the debug sections (section name -> list)."""

    units: list[dict] = field(default_factory=list)      # off, end, version, offset_size, fields {name: (pos, width)}
    abbrevs: list[dict] = field(default_factory=list)    # start, end, decls [{code, tag, children, specs[(apos, fpos)]}]
    dies: list[tuple[int, int, int]] = field(default_factory=list)   # (offset, unit offset, abbrev code)
    refs: list[tuple[int, int, int, int]] = field(default_factory=list)  # (pos, width, form, unit offset)
    strs: list[tuple[int, int, str]] = field(default_factory=list)       # (pos, width, section it points into)
    offsets: list[tuple[int, int, str]] = field(default_factory=list)    # sec_offset values: (pos, width, attr)
    exprs: list[tuple[int, int, int]] = field(default_factory=list)      # (length pos, start, end)
    lines: list[int] = field(default_factory=list)                       # .debug_line header offsets


@dataclass
class SeedMap:
    name: str
    data: bytes
    elfclass: int
    sections: list[SectionMap]
    ehdr: dict[str, tuple[int, int]]
    shdr: dict[str, tuple[int, int]]
    shoff: int
    shentsize: int
    plain: dict[str, bytes]     # plain bytes of the debug sections
    dwarf: DwarfMap | None
    boundaries: list[int]       # file offsets where a structure starts or ends
    shstrndx: int = 0

    def debug_sections(self) -> list[SectionMap]:
        return [s for s in self.sections if s.name.startswith((".debug_", ".zdebug_", ".gdb_index")) and s.size]

    def section(self, name: str) -> SectionMap | None:
        for s in self.sections:
            if s.name in (name, ".z" + name[1:]):
                return s
        return None


def _uleb(d: bytes, p: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = d[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, p


def _abbrev_table(d: bytes, off: int) -> dict:
    decls = []
    p = off
    while True:
        start = p
        code, p = _uleb(d, p)
        if code == 0:
            return {"start": off, "end": p, "decls": decls}
        tag_pos = p
        _, p = _uleb(d, p)
        children_pos = p
        p += 1
        specs = []
        while True:
            apos = p
            at, p = _uleb(d, p)
            fpos = p
            form, p = _uleb(d, p)
            if at == 0 and form == 0:
                break
            if form == 0x21:  # implicit_const
                _, p = _uleb(d, p)
            specs.append((apos, fpos))
        decls.append({"start": start, "code": code, "tag": tag_pos, "children": children_pos, "specs": specs,
                      "end": p})


_STR_FORMS = {0x0E: ".debug_str", 0x1F: ".debug_line_str", 0x25: ".debug_str_offsets", 0x26: ".debug_str_offsets",
              0x27: ".debug_str_offsets", 0x28: ".debug_str_offsets"}
_REF_WIDTH = {0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8}


def _dwarf_map(elf, plain: dict[str, bytes]) -> DwarfMap | None:
    if ".debug_info" not in plain or not elf.has_dwarf_info():
        return None
    m = DwarfMap()
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
    abbrev_offs = set()
    for cu in dwarf.iter_CUs():
        off, h = cu.cu_offset, cu.header
        osize = 8 if cu.dwarf_format() == 64 else 4
        lw = 12 if osize == 8 else 4
        fields = {"unit_length": (off, 4 if osize == 4 else 12), "version": (off + lw, 2)}
        if h["version"] >= 5:
            fields.update(unit_type=(off + lw + 2, 1), address_size=(off + lw + 3, 1),
                          debug_abbrev_offset=(off + lw + 4, osize))
        else:
            fields.update(debug_abbrev_offset=(off + lw + 2, osize), address_size=(off + lw + 2 + osize, 1))
        m.units.append({"off": off, "end": off + cu.size, "version": h["version"], "offset_size": osize,
                        "fields": fields, "die_off": cu.cu_die_offset})
        abbrev_offs.add(h["debug_abbrev_offset"])
        for die in cu.iter_DIEs():
            if die.is_null():
                continue
            m.dies.append((die.offset, off, die.abbrev_code))
            for name, attr in die.attributes.items():
                code, pos = _FORM_CODES.get(attr.form), attr.offset  # pyelftools names forms
                if code in _REF_WIDTH:
                    m.refs.append((pos, _REF_WIDTH[code], code, off))
                elif code == 0x10:  # ref_addr
                    m.refs.append((pos, osize, 0x10, off))
                elif code in _STR_FORMS:
                    width = {0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4}.get(code, osize)
                    m.strs.append((pos, width, _STR_FORMS[code]))
                elif code == 0x17:  # sec_offset
                    m.offsets.append((pos, osize, name))
                elif code == 0x18:  # exprloc
                    _, start = _uleb(plain[".debug_info"], pos)
                    m.exprs.append((pos, start, start + len(attr.raw_value)))
                if name == "DW_AT_stmt_list":
                    m.lines.append(attr.raw_value)
    abbrev = plain.get(".debug_abbrev", b"")
    for off in sorted(abbrev_offs):
        try:
            m.abbrevs.append(_abbrev_table(abbrev, off))
        except IndexError:
            pass
    m.lines = sorted(set(m.lines))
    return m


def _form_codes() -> dict[str, int]:
    from elftools.dwarf.enums import ENUM_DW_FORM

    return dict(ENUM_DW_FORM)


_FORM_CODES = _form_codes()


def _plain_name(name: str) -> str:
    return ".debug_" + name[len(".zdebug_"):] if name.startswith(".zdebug_") else name


def _plain_bytes(data: bytes, sm: SectionMap, c64: bool) -> bytes:
    raw = data[sm.offset:sm.offset + sm.size]
    if sm.compression == "gnu":
        return zlib.decompress(raw[12:])
    if sm.compression == "gabi":
        body = raw[24:] if c64 else raw[12:]
        if sm.ch_type == 2:
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(body)
        return zlib.decompress(body)
    return raw


def map_seed(name: str, path: Path) -> SeedMap:
    """The seed's structure; DWARF positions come from its plain twin (``NAME.plain``) if compressed."""
    from elftools.elf.elffile import ELFFile

    data = path.read_bytes()
    twin = path.with_name(path.name + ".plain")
    with open(path, "rb") as f:
        elf = ELFFile(f)
        c64 = elf.elfclass == 64
        shoff, shentsize = elf.header["e_shoff"], elf.header["e_shentsize"]
        shstrndx = elf.header["e_shstrndx"]
        sections, plain = [], {}
        for i, sec in enumerate(elf.iter_sections()):
            h = sec.header
            compression = "gabi" if h["sh_flags"] & SHF_COMPRESSED else \
                "gnu" if sec.name.startswith(".zdebug_") else None
            sm = SectionMap(i, sec.name, shoff + i * shentsize, h["sh_offset"], h["sh_size"], h["sh_flags"],
                            compression)
            if compression == "gabi":
                sm.ch_type = struct.unpack_from("<I", data, h["sh_offset"])[0]
            sections.append(sm)
            if sec.name.startswith((".debug_", ".zdebug_", ".gdb_index")) and h["sh_type"] != 8:
                plain[_plain_name(sec.name)] = _plain_bytes(data, sm, c64)
    with open(twin if twin.exists() else path, "rb") as f:
        dwarf = _dwarf_map(ELFFile(f), plain) if c64 else None
    ehdr = EHDR64 if c64 else EHDR32
    bounds = {0, 16, len(data)} | {o for o, w in ehdr.values()} | {o + w for o, w in ehdr.values()}
    for s in sections:
        bounds |= {s.header_at, s.header_at + shentsize, s.offset, s.offset + s.size}
        if s.compression == "gabi":
            bounds |= {s.offset + 4, s.offset + 8, s.offset + 12, s.offset + 16, s.offset + 24}
        elif s.compression == "gnu":
            bounds |= {s.offset + 4, s.offset + 12}
    if dwarf is not None:
        for sec_name, positions in (("info", [u["off"] for u in dwarf.units] + [u["die_off"] for u in dwarf.units]),
                                    ("abbrev", [a["start"] for a in dwarf.abbrevs] + [a["end"] for a in dwarf.abbrevs])):
            sm = next((s for s in sections if s.name == f".debug_{sec_name}"), None)
            if sm is not None and sm.compression is None:
                bounds |= {sm.offset + p for p in positions}
    return SeedMap(name, data, elf.elfclass, sections, ehdr, SHDR64 if c64 else SHDR32, shoff, shentsize, plain,
                   dwarf, sorted(b for b in bounds if 0 <= b <= len(data)), shstrndx)


# --- mutations ----------------------------------------------------------------------------------

def _interesting(rng: random.Random, old: int, width: int) -> int:
    top = (1 << (8 * width)) - 1
    choice = rng.randrange(9)
    if choice == 0:
        return 0
    if choice == 1:
        return top
    if choice == 2:
        return top >> 1
    if choice in (3, 4):
        return max(0, min(top, old + rng.choice((-16, -8, -4, -2, -1, 1, 2, 3, 4, 8, 16, 4096))))
    if choice == 5:
        return min(top, old * 2)
    if choice == 6:
        return rng.choice((1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF)) & top
    return rng.getrandbits(8 * width)


class Mutant:
    """A seed's bytes being mutated, with helpers that keep the mutation description."""

    def __init__(self, seed: SeedMap, rng: random.Random) -> None:
        self.seed = seed
        self.rng = rng
        self.data = bytearray(seed.data)
        self.notes: list[str] = []
        self.cut: int | None = None  # file truncation, applied after every other mutation

    # ELF-level writes
    def put(self, pos: int, width: int, value: int) -> None:
        if 0 <= pos and pos + width <= len(self.data):
            # (a mutation's value wraps to the field's width, as a write of it in C would)
            self.data[pos:pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")

    def get(self, pos: int, width: int) -> int:
        return int.from_bytes(self.data[pos:pos + width], "little")

    def set_shdr(self, sec: SectionMap, name: str, value: int) -> None:
        at, width = self.seed.shdr[name]
        self.put(sec.header_at + at, width, value)

    # DWARF-level writes: through the plain bytes, compressed again where the seed is compressed
    def edit_plain(self, name: str, edit) -> bool:
        sec = self.seed.section(name)
        if sec is None or name not in self.seed.plain:
            return False
        plain = bytearray(self.seed.plain[name])
        note = edit(plain)
        if note is None:
            return False
        if sec.compression is None:
            if len(plain) != sec.size:
                self.set_shdr(sec, "sh_size", len(plain))
                plain = plain[:sec.size]
            self.data[sec.offset:sec.offset + len(plain)] = plain
        else:
            chdr = 24 if self.seed.elfclass == 64 else 12
            if sec.compression == "gnu":
                head = b"ZLIB" + len(plain).to_bytes(8, "big")
                body = zlib.compress(bytes(plain), 9)
            else:
                head = bytes(self.data[sec.offset:sec.offset + chdr])
                size_at = 8 if chdr == 24 else 4
                head = head[:size_at] + len(plain).to_bytes(chdr // 3, "little") + head[size_at + chdr // 3:]
                if sec.ch_type == 2:
                    import zstandard

                    body = zstandard.ZstdCompressor(level=19).compress(bytes(plain))
                else:
                    body = zlib.compress(bytes(plain), 9)
            blob = head + body
            if len(blob) > sec.size:
                return False
            self.data[sec.offset:sec.offset + sec.size] = blob + bytes(sec.size - len(blob))
            self.set_shdr(sec, "sh_size", len(blob))
        self.notes.append(f"{name}: {note}")
        return True


def m_bitflip(m: Mutant) -> None:
    sec = m.rng.choice(m.seed.debug_sections())
    for _ in range(m.rng.choice((1, 1, 2, 4, 8))):
        pos = sec.offset + m.rng.randrange(sec.size)
        m.data[pos] ^= 1 << m.rng.randrange(8)
    m.notes.append(f"bit flips in {sec.name}")


def m_byteset(m: Mutant) -> None:
    sec = m.rng.choice(m.seed.debug_sections())
    for _ in range(m.rng.choice((1, 2, 4))):
        pos = sec.offset + m.rng.randrange(sec.size)
        m.data[pos] = m.rng.choice((0, 0xFF, 0x7F, 0x80, 0x01, m.rng.getrandbits(8)))
    m.notes.append(f"byte sets in {sec.name}")


def m_plain_flip(m: Mutant) -> None:
    names = [n for n in m.seed.plain if m.seed.plain[n]]
    name = m.rng.choice(names)

    def edit(plain: bytearray) -> str:
        for _ in range(m.rng.choice((1, 1, 2, 4))):
            pos = m.rng.randrange(len(plain))
            if m.rng.random() < 0.5:
                plain[pos] ^= 1 << m.rng.randrange(8)
            else:
                plain[pos] = m.rng.choice((0, 0xFF, 0x7F, 0x80, m.rng.getrandbits(8)))
        return "plain byte flips"

    if not m.edit_plain(name, edit):
        m_bitflip(m)


_HUGE = ((1 << 63) - 1, (1 << 63), (1 << 64) - 1, 1 << 70)


def _uleb_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _sleb_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def m_huge_leb(m: Mutant) -> None:
    """A ULEB128 of 2**63 - 1 or more (or a SLEB128 below -2**63) over the bytes at a random
    place of a debug section: where a LEB128 field starts there (a length, an index, an offset,
    an operand, a constant), every bound that adds it to a position overflows 64 bits."""
    names = [n for n in m.seed.plain if m.seed.plain[n]]
    name = m.rng.choice(names)

    def edit(plain: bytearray) -> str:
        pos = m.rng.randrange(len(plain))
        if m.rng.random() < 0.3:  # a SLEB128 past -2**63 (a constant, an implicit_const, an offset)
            value = m.rng.choice((-(1 << 63) - 1, -(1 << 70)))
            big = _sleb_bytes(value)
            kind = "SLEB128"
        else:
            value = m.rng.choice(_HUGE)
            big = _uleb_bytes(value)
            kind = "ULEB128"
        plain[pos:pos + len(big)] = big[:len(plain) - pos]
        return f"{kind} {value:#x} at 0x{pos:x}"

    if not m.edit_plain(name, edit):
        m_bitflip(m)


def m_truncate_file(m: Mutant) -> None:
    at = m.rng.choice(m.seed.boundaries) + m.rng.choice((0, 0, 0, -1, 1))
    at = max(0, min(len(m.data), at))
    m.cut = at if m.cut is None else min(m.cut, at)
    m.notes.append(f"file truncated at {at}")


def m_truncate_section(m: Mutant) -> None:
    """A section cut at a structure boundary inside it (unit, abbreviation table, header field)."""
    secs = m.seed.debug_sections()
    sec = m.rng.choice(secs)
    name = _plain_name(sec.name)
    d = m.seed.dwarf
    cuts = [0, 1, 4, 12]
    if d is not None and name == ".debug_info":
        cuts += [u["off"] for u in d.units] + [u["die_off"] for u in d.units]
        cuts += [p + w for u in d.units for p, w in u["fields"].values()]
        cuts += [o for o, _, _ in m.rng.sample(d.dies, min(4, len(d.dies)))]
    elif d is not None and name == ".debug_abbrev":
        cuts += [a["end"] - 1 for a in d.abbrevs] + [x["end"] for a in d.abbrevs for x in a["decls"]][:50]
    elif d is not None and name == ".debug_line":
        cuts += [o + k for o in d.lines for k in (4, 6, 10, 18, 30)]
    if sec.compression is not None and m.rng.random() < 0.5:
        size = m.rng.choice([4, 8, 12, 16, 24, 25, sec.size - 1, sec.size // 2])
        m.set_shdr(sec, "sh_size", max(0, size))
        m.notes.append(f"{sec.name} (compressed) cut to {size} bytes")
        return
    cut = m.rng.choice(cuts)

    def edit(plain: bytearray) -> str:
        del plain[cut:]
        return f"cut at {cut}"

    if not m.edit_plain(name, edit):
        m.set_shdr(sec, "sh_size", min(cut, sec.size))
        m.notes.append(f"{sec.name} sh_size cut to {cut}")


def m_shdr_field(m: Mutant) -> None:
    secs = m.seed.sections
    weights = [4 if s.name.startswith((".debug", ".zdebug")) or s.name in (".shstrtab", ".symtab", ".strtab")
               else 1 for s in secs]
    sec = m.rng.choices(secs, weights)[0]
    fname = m.rng.choice(list(m.seed.shdr))
    at, width = m.seed.shdr[fname]
    old = m.get(sec.header_at + at, width)
    if fname in ("sh_offset", "sh_size") and m.rng.random() < 0.3:
        value = len(m.data) + m.rng.choice((-1, 0, 1, 8)) - (0 if fname == "sh_size" else 0)
    elif fname == "sh_type" and m.rng.random() < 0.5:
        value = m.rng.choice((0, 1, 2, 3, 4, 8, 9, 17, 18, 0x6FFFFFF6, 0x70000000))
    elif fname == "sh_flags" and m.rng.random() < 0.6:
        value = old ^ m.rng.choice((SHF_ALLOC, SHF_COMPRESSED, 0x40, 0x200, 0x1))
    elif fname in ("sh_link", "sh_info") and m.rng.random() < 0.5:
        value = m.rng.choice((0, len(secs) - 1, len(secs), len(secs) + 1, sec.index, 0xFF00, 0xFFFF))
    else:
        value = _interesting(m.rng, old, width)
    m.put(sec.header_at + at, width, value)
    m.notes.append(f"[{sec.index}] {sec.name}.{fname}: {old:#x} -> {value:#x}")


def m_ehdr_field(m: Mutant) -> None:
    fname = m.rng.choice(list(m.seed.ehdr))
    at, width = m.seed.ehdr[fname]
    old = m.get(at, width)
    if fname in ("e_shnum", "e_shstrndx") and m.rng.random() < 0.6:
        value = max(0, old + m.rng.choice((-2, -1, 1, 2, -old, 0xFF00 - old, 0xFFFF - old)))
    elif fname.startswith("ei_"):
        value = m.rng.choice((0, 1, 2, 3, 0xFF))
    else:
        value = _interesting(m.rng, old, width)
    m.put(at, width, value)
    m.notes.append(f"{fname}: {old:#x} -> {value:#x}")


def m_chdr(m: Mutant) -> None:
    secs = [s for s in m.seed.debug_sections() if s.compression is not None]
    if not secs:
        return m_shdr_field(m)
    sec = m.rng.choice(secs)
    if sec.compression == "gnu":
        which = m.rng.choice(("magic", "size"))
        if which == "magic":
            m.data[sec.offset + m.rng.randrange(4)] ^= 0x20
        else:
            old = int.from_bytes(m.data[sec.offset + 4:sec.offset + 12], "big")
            m.data[sec.offset + 4:sec.offset + 12] = _interesting(m.rng, old, 8).to_bytes(8, "big")
        m.notes.append(f"{sec.name} .zdebug header {which}")
        return
    c64 = m.seed.elfclass == 64
    fields = {"ch_type": (0, 4), "ch_size": (8, 8) if c64 else (4, 4), "ch_addralign": (16, 8) if c64 else (8, 4)}
    fname = m.rng.choice(list(fields))
    at, width = fields[fname]
    old = m.get(sec.offset + at, width)
    value = m.rng.choice((0, 1, 2, 3, 0xFFFFFFFF)) if fname == "ch_type" else _interesting(m.rng, old, width)
    m.put(sec.offset + at, width, value)
    m.notes.append(f"{sec.name}.{fname}: {old:#x} -> {value:#x}")


def _dwarf(m: Mutant) -> DwarfMap | None:
    return m.seed.dwarf if m.seed.dwarf is not None and m.seed.dwarf.units else None


def m_unit_header(m: Mutant) -> None:
    d = _dwarf(m)
    if d is None:
        return m_plain_flip(m)
    unit = m.rng.choice(d.units)
    fname = m.rng.choice(list(unit["fields"]))
    pos, width = unit["fields"][fname]
    width = 4 if fname == "unit_length" else width

    def edit(plain: bytearray) -> str:
        old = int.from_bytes(plain[pos:pos + width], "little")
        if fname == "unit_length":
            value = m.rng.choice((0, 1, 2, 6, 0xFFFFFFFF, 0xFFFFFFF0, old - 1, old + 1, len(plain),
                                  m.rng.getrandbits(32)))
        elif fname == "version":
            value = m.rng.choice((0, 1, 2, 3, 4, 5, 6, 0xFFFF))
        elif fname == "unit_type":
            value = m.rng.choice((0, 2, 3, 4, 5, 6, 7, 0x80, 0xFF))
        elif fname == "address_size":
            value = m.rng.choice((0, 1, 2, 3, 4, 16, 255))
        else:
            tables = [a["start"] for a in d.abbrevs] + [x["start"] for a in d.abbrevs for x in a["decls"][1:3]]
            value = m.rng.choice(tables + [len(m.seed.plain.get(".debug_abbrev", b"")), 0xFFFFFFFF, old + 1])
        value &= (1 << (8 * width)) - 1
        plain[pos:pos + width] = value.to_bytes(width, "little")
        return f"unit 0x{unit['off']:x} {fname} {old:#x} -> {value:#x}"

    m.edit_plain(".debug_info", edit)


_UNKNOWN_FORMS = (0x00, 0x02, 0x16, 0x21, 0x2D, 0x30, 0x7F, 0x1F, 0x20, 0x18, 0x09, 0x03, 0x04)


def m_abbrev(m: Mutant) -> None:
    d = _dwarf(m)
    if d is None or not d.abbrevs:
        return m_plain_flip(m)
    table = m.rng.choice(d.abbrevs)
    decl = m.rng.choice(table["decls"])
    kind = m.rng.choice(("form", "form", "attr", "children", "code", "tag", "terminator", "indirect"))

    def edit(plain: bytearray) -> str | None:
        if kind in ("form", "attr", "indirect") and decl["specs"]:
            apos, fpos = m.rng.choice(decl["specs"])
            if kind == "attr":
                plain[apos] = m.rng.choice((0, 0x01, 0x49, 0x7F))
                return f"abbrev {decl['code']} attribute -> {plain[apos]:#x}"
            value = 0x16 if kind == "indirect" else m.rng.choice(_UNKNOWN_FORMS)
            plain[fpos] = value
            return f"abbrev {decl['code']} form -> {value:#x}"
        if kind == "children":
            plain[decl["children"]] = m.rng.choice((0, 1, 2))
            return f"abbrev {decl['code']} children -> {plain[decl['children']]}"
        if kind == "code":
            other = m.rng.choice(table["decls"])["code"]
            if decl["code"] < 0x80 and other < 0x80:
                plain[decl["start"]] = m.rng.choice((other, 0, 0x7F))
                return f"abbrev {decl['code']} code -> {plain[decl['start']]}"
            return None
        if kind == "tag":
            plain[decl["tag"]] = m.rng.choice((0, 0x11, 0x13, 0x39, 0x41, 0x7F))
            return f"abbrev {decl['code']} tag -> {plain[decl['tag']]:#x}"
        if kind == "terminator":
            plain[table["end"] - 1] = m.rng.choice((1, 0x80))
            return f"abbrev table 0x{table['start']:x} terminator removed"
        return None

    if not m.edit_plain(".debug_abbrev", edit):
        m_plain_flip(m)


def m_ref(m: Mutant) -> None:
    """References aimed at themselves, their parent, a loop, a unit header, past the unit."""
    d = _dwarf(m)
    if d is None or not d.refs:
        return m_plain_flip(m)
    pos, width, form, uoff = m.rng.choice(d.refs)
    unit = next(u for u in d.units if u["off"] == uoff)
    die = max((x for x in d.dies if x[0] < pos), default=(unit["die_off"], uoff, 0))
    base = 0 if form == 0x10 else uoff
    choice = m.rng.randrange(8)
    if choice == 0:
        target = die[0]                                          # itself
    elif choice == 1:
        target = unit["off"]                                     # the unit header
    elif choice == 2:
        target = unit["end"] + m.rng.choice((0, 1, 100))         # past the unit
    elif choice == 3:
        target = die[0] + 1                                      # inside a DIE
    elif choice == 4:
        target = m.rng.choice(d.dies)[0]                         # any DIE (another unit for ref_addr)
    elif choice == 5:
        target = (1 << (8 * width)) - 1 + base
    else:
        # a two-step loop: this reference and the first reference of the target point at each other
        others = [r for r in d.refs if r[3] == uoff and r[0] != pos]
        if not others:
            target = die[0]
        else:
            other = m.rng.choice(others)
            odie = max((x for x in d.dies if x[0] < other[0]), default=die)
            target = odie[0]

            def edit2(plain: bytearray) -> str:
                obase = 0 if other[2] == 0x10 else uoff
                v = (die[0] - obase) & ((1 << (8 * other[1])) - 1)
                plain[other[0]:other[0] + other[1]] = v.to_bytes(other[1], "little")
                t = (target - base) & ((1 << (8 * width)) - 1)
                plain[pos:pos + width] = t.to_bytes(width, "little")
                return f"reference loop 0x{die[0]:x} <-> 0x{odie[0]:x}"

            m.edit_plain(".debug_info", edit2)
            return
    value = (target - base) & ((1 << (8 * width)) - 1)

    def edit(plain: bytearray) -> str:
        plain[pos:pos + width] = value.to_bytes(width, "little")
        return f"reference at 0x{pos:x} (form {form:#x}) -> 0x{target:x}"

    m.edit_plain(".debug_info", edit)


def m_strings(m: Mutant) -> None:
    """String offsets past the end, onto the last byte, into .debug_str_offsets' header."""
    d = _dwarf(m)
    if d is None:
        return m_plain_flip(m)
    if ".debug_str_offsets" in m.seed.plain and m.rng.random() < 0.4:
        so = m.seed.plain[".debug_str_offsets"]
        strs = m.seed.plain.get(".debug_str", b"")
        at = m.rng.choice([p for p in range(8, len(so) - 3, 4)] or [0])

        def edit_so(plain: bytearray) -> str:
            v = m.rng.choice((len(strs), len(strs) - 1, len(strs) + 1000, 0xFFFFFFFF, m.rng.getrandbits(32)))
            plain[at:at + 4] = v.to_bytes(4, "little")
            return f"entry at 0x{at:x} -> {v:#x}"

        if m.edit_plain(".debug_str_offsets", edit_so):
            return
    if ".debug_str" in m.seed.plain and m.rng.random() < 0.2:
        # the terminator of the last string (or of any string) removed
        strs = m.seed.plain[".debug_str"]
        zeros = [i for i, b in enumerate(strs) if b == 0]

        def edit_str(plain: bytearray) -> str:
            at = zeros[-1] if m.rng.random() < 0.5 else m.rng.choice(zeros)
            plain[at] = 0x41
            return f"terminator at 0x{at:x} removed"

        if zeros and m.edit_plain(".debug_str", edit_str):
            return
    pool = d.strs + d.offsets
    if not pool:
        return m_plain_flip(m)
    pos, width, what = m.rng.choice(pool)
    target = m.seed.plain.get(what, b"") if what.startswith(".debug") else b""

    def edit(plain: bytearray) -> str:
        old = int.from_bytes(plain[pos:pos + width], "little")
        value = m.rng.choice((len(target), len(target) - 1, len(target) + 1, old + 1, old - 1,
                              (1 << (8 * width)) - 1, m.rng.getrandbits(8 * width), 0))
        value &= (1 << (8 * width)) - 1
        plain[pos:pos + width] = value.to_bytes(width, "little")
        return f"{what} value at 0x{pos:x}: {old:#x} -> {value:#x}"

    m.edit_plain(".debug_info", edit)


_UNKNOWN_OPS = (0x00, 0x01, 0x02, 0x04, 0x05, 0x07, 0xE1, 0xEF, 0xFE, 0xFF, 0x9E, 0xA3, 0x98, 0x99, 0xA0, 0xA4,
                0xF3, 0xFA, 0x9A, 0xFD, 0xA8)


def m_expr(m: Mutant) -> None:
    d = _dwarf(m)
    if d is None or not d.exprs:
        return m_plain_flip(m)
    lpos, start, end = m.rng.choice(d.exprs)

    def edit(plain: bytearray) -> str:
        if m.rng.random() < 0.3:
            length = m.rng.choice((0, (plain[lpos] + 1) & 0xFF, 0x7F, 0xFF, -1))
            if length < 0:  # a ULEB128 length near or past 2**63 (bounds that overflow 64 bits)
                length = m.rng.choice(_HUGE)
                big = _uleb_bytes(length)  # over the bytes after it: the units keep their sizes
                plain[lpos:lpos + len(big)] = big
            else:
                plain[lpos] = length
            return f"expression length at 0x{lpos:x} -> {length:#x}"
        at = m.rng.randrange(start, end) if end > start else start
        plain[at] = m.rng.choice(_UNKNOWN_OPS)
        if plain[at] == 0xA8 and m.rng.random() < 0.3:  # DW_OP_convert naming an offset past 63 bits
            operand = m.rng.choice(_HUGE)
            big = _uleb_bytes(operand)
            plain[at + 1:at + 1 + len(big)] = big
            return f"expression opcode at 0x{at:x} -> 0xa8 {operand:#x}"
        return f"expression opcode at 0x{at:x} -> {plain[at]:#x}"

    m.edit_plain(".debug_info", edit)


def m_line(m: Mutant) -> None:
    d = _dwarf(m)
    if d is None or not d.lines or ".debug_line" not in m.seed.plain:
        return m_plain_flip(m)
    off = m.rng.choice(d.lines)
    line = m.seed.plain[".debug_line"]
    version = int.from_bytes(line[off + 4:off + 6], "little")
    fields = {"unit_length": (0, 4), "version": (4, 2)}
    hl = 8 if version >= 5 else 6
    fields.update(header_length=(hl, 4), opcode_base=(hl + 4 + (3 if version < 4 else 4) + 1, 1))
    if version >= 5:
        fields.update(address_size=(6, 1))
    fname = m.rng.choice(list(fields) + ["entries", "entries"])

    def edit(plain: bytearray) -> str:
        if fname == "entries":
            ob = fields["opcode_base"][0] + off
            at = m.rng.randrange(ob, min(len(plain), ob + 200))
            plain[at] = m.rng.choice((0, 0xFF, 0x80, 0x1F, 0x08, 0x0E, 0x7F, m.rng.getrandbits(8)))
            return f"header byte 0x{at:x} -> {plain[at]:#x}"
        p, w = fields[fname]
        old = int.from_bytes(plain[off + p:off + p + w], "little")
        value = m.rng.choice((0, 1, 2, 4, 5, 6, 0xFF, old + 1, old - 1, (1 << (8 * w)) - 1)) & ((1 << (8 * w)) - 1)
        plain[off + p:off + p + w] = value.to_bytes(w, "little")
        return f"line table 0x{off:x} {fname} {old:#x} -> {value:#x}"

    m.edit_plain(".debug_line", edit)


def m_section_name(m: Mutant) -> None:
    """Damaged or swapped names: .debug_info lost, two sections of one name, a name past .shstrtab."""
    secs = m.seed.debug_sections()
    sec = m.rng.choice(secs)
    at, width = m.seed.shdr["sh_name"]
    old = m.get(sec.header_at + at, width)
    choice = m.rng.randrange(4)
    if choice == 0:
        other = m.rng.choice(m.seed.sections)
        value = m.get(other.header_at + at, width)
        m.notes.append(f"{sec.name} renamed to {other.name!r}")
    elif choice == 1:
        value = old + m.rng.choice((1, 2, 7, -1))
        m.notes.append(f"{sec.name}.sh_name {old} -> {value}")
    elif choice == 2:
        shstr = m.seed.sections[m.seed.shstrndx]
        value = shstr.size + m.rng.choice((-1, 0, 1, 1000))
        m.notes.append(f"{sec.name}.sh_name past .shstrtab ({value})")
    else:
        shstr = m.seed.sections[m.seed.shstrndx]
        p = shstr.offset + old + m.rng.randrange(1, len(sec.name) + 1)
        if p < len(m.data):
            m.data[p] = m.rng.choice((0, 0x41, 0xFF, 0x80))
        m.notes.append(f"{sec.name} name byte changed in .shstrtab")
        return
    m.put(sec.header_at + at, width, value & ((1 << (8 * width)) - 1))


_INDEXES = (".debug_names", ".gdb_index", ".debug_pubnames", ".debug_pubtypes", ".debug_gnu_pubnames",
            ".debug_gnu_pubtypes", ".debug_aranges")


def m_index(m: Mutant) -> None:
    """A word of a name index or .debug_aranges (counts, unit offsets, hash slots) set to an
    interesting value."""
    names = [n for n in _INDEXES if m.seed.plain.get(n)]
    if not names:
        return m_plain_flip(m)
    name = m.rng.choice(names)

    def edit(plain: bytearray) -> str:
        at = m.rng.randrange(0, max(1, len(plain) - 3)) & ~3 if m.rng.random() < 0.7 else \
            m.rng.randrange(0, min(len(plain) - 3, 64)) & ~3
        old = int.from_bytes(plain[at:at + 4], "little")
        value = _interesting(m.rng, old, 4)
        plain[at:at + 4] = value.to_bytes(4, "little")
        return f"word at 0x{at:x}: {old:#x} -> {value:#x}"

    if not m.edit_plain(name, edit):
        m_plain_flip(m)


MUTATORS = {
    "bitflip": (m_bitflip, 10), "byteset": (m_byteset, 6), "plain-flip": (m_plain_flip, 10),
    "truncate-file": (m_truncate_file, 5), "truncate-section": (m_truncate_section, 6),
    "shdr-field": (m_shdr_field, 10), "ehdr-field": (m_ehdr_field, 5), "chdr": (m_chdr, 5),
    "unit-header": (m_unit_header, 6), "abbrev": (m_abbrev, 8), "ref": (m_ref, 8), "strings": (m_strings, 6),
    "expr": (m_expr, 5), "line": (m_line, 5), "section-name": (m_section_name, 5), "index": (m_index, 5),
    "huge-leb": (m_huge_leb, 6),
}

# (argument list with IN / OUT / ORIG placeholders, weight)
COMMANDS = [
    (["compress", "IN", "-o", "OUT", "--type", "zlib", "-j", "1"], 3),
    (["compress", "IN", "-o", "OUT", "--type", "zstd", "-j", "1"], 3),
    (["decompress", "IN", "-o", "OUT"], 3),
    (["merge-types", "IN", "-o", "OUT", "-j", "1"], 4),
    (["merge-types", "IN", "-o", "OUT", "-j", "1", "--compress", "zlib"], 2),
    (["merge-types", "IN", "-o", "OUT", "-j", "1", "--compress", "zstd"], 2),
    (["info", "IN", "--all"], 2),
    (["verify", "ORIG", "IN"], 2),
    (["verify", "IN", "ORIG"], 1),
]


@dataclass
class Case:
    number: int
    seed: str
    notes: list[str]
    argv: list[str]
    data: bytes


def make_case(seeds: dict[str, SeedMap], fuzz_seed: int, number: int) -> Case:
    rng = random.Random(f"{fuzz_seed}:{number}")
    seed = seeds[rng.choice(sorted(seeds))]
    m = Mutant(seed, rng)
    names = list(MUTATORS)
    weights = [MUTATORS[n][1] for n in names]
    for _ in range(rng.choice((1, 1, 1, 1, 2, 3))):
        kind = rng.choices(names, weights)[0]
        MUTATORS[kind][0](m)
    if m.cut is not None:
        del m.data[m.cut:]
    argv = rng.choices([c for c, _ in COMMANDS], [w for _, w in COMMANDS])[0]
    return Case(number, seed.name, m.notes, list(argv), bytes(m.data))


# --- running one case ---------------------------------------------------------------------------

class Hang(BaseException):
    """Raised by the watchdog alarm: not an Exception, so no handler in linkplugin swallows it."""


def _on_alarm(signum, frame):
    raise Hang()


def _where(tb) -> str:
    """The innermost frame inside linkplugin (else the innermost): the bucket of a failure."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if f"{os.sep}linkplugin{os.sep}" in f.filename]
    f = (ours or frames or [None])[-1]
    if f is None:
        return "?"
    path = f.filename.split(f"{os.sep}linkplugin{os.sep}", 1)[-1]
    return f"{path}:{f.lineno} ({f.name})"


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def run_case(case: Case, work: Path, seed_path: Path, timeout: float) -> dict:
    """Run one case in this process and classify what happened."""
    from linkplugin import cli

    indir, outdir = work / "in", work / "out"
    for d in (indir, outdir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    src = indir / "input"
    src.write_bytes(case.data)
    orig = indir / "orig"
    shutil.copyfile(seed_path, orig)
    out = outdir / "output"
    argv = [str(src) if a == "IN" else str(out) if a == "OUT" else str(orig) if a == "ORIG" else a
            for a in case.argv]
    before = (_sha(src), _sha(orig))
    stderr, stdout = io.StringIO(), io.StringIO()
    outcome, detail = "", ""
    t0 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    rc = None
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            rc = cli.main(argv)
    except Hang as exc:
        outcome, detail = "hang", f"over {timeout:g} s at {_where(exc.__traceback__)}"
    except SystemExit as exc:  # argparse
        rc = exc.code
    except BaseException as exc:  # noqa: BLE001 - the harness records every escape, that is its job
        outcome = "traceback"
        detail = f"{type(exc).__name__}: {str(exc)[:200]} @ {_where(exc.__traceback__)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - t0
    err = stderr.getvalue()
    if not outcome:
        lines = err.strip().splitlines()
        if rc == 0 or (rc == 1 and case.argv[0] == "verify"):
            outcome = "success"
        elif rc == 2 and len(lines) == 1 and lines[0].startswith("linkplugin: error: "):
            outcome, detail = "clean-error", lines[0][len("linkplugin: error: "):]
        else:
            outcome, detail = "traceback", f"exit {rc} with stderr {err[:300]!r}"
    if outcome in ("success", "clean-error"):
        left = sorted(p.name for p in outdir.iterdir())
        expected = ["output"] if outcome == "success" and "OUT" in case.argv else []
        if left != expected:
            outcome, detail = "leftover", f"output folder holds {left} after {outcome}"
        elif (_sha(src), _sha(orig)) != before:
            outcome, detail = "input-changed", "input bytes differ after the run"
        elif expected:
            # What we write, our own reader must accept (it checks every header and bound).
            from linkplugin.elf.read import ElfImage
            from linkplugin.errors import LinkpluginError

            try:
                ElfImage(out).close()
            except LinkpluginError as exc:
                outcome, detail = "bad-output", f"output rejected: {exc}".replace(str(out), "OUTPUT")
    return {"case": case.number, "seed": case.seed, "mutation": "; ".join(case.notes),
            "command": " ".join(case.argv), "outcome": outcome, "detail": detail, "seconds": round(seconds, 4)}


# --- workers and the parent -----------------------------------------------------------------------

def worker_main(seed_dir: str, fuzz_seed: int, timeout: float, memory_mb: int) -> None:
    """A worker: read case numbers on stdin, answer one JSON line per case on the saved stdout."""
    if memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints cannot break the protocol
    seeds = load_seeds(Path(seed_dir))
    work = Path(seed_dir) / f"work-{os.getpid()}"
    import faulthandler

    try:
        for line in sys.stdin:
            number = int(line)
            try:
                case = make_case(seeds, fuzz_seed, number)
            except Exception as exc:  # noqa: BLE001 - a bug of the harness, reported as such
                answer.write(json.dumps({"case": number, "seed": "?", "mutation": "?", "command": "?",
                                         "outcome": "harness-error", "detail": f"{type(exc).__name__}: {exc} @ "
                                         f"{_where(exc.__traceback__)}", "seconds": 0}) + "\n")
                continue
            faulthandler.dump_traceback_later(timeout + 10, exit=False)
            result = run_case(case, work, Path(seed_dir) / case.seed, timeout)
            faulthandler.cancel_dump_traceback_later()
            answer.write(json.dumps(result) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


_seed_cache: dict[str, dict[str, SeedMap]] = {}


def load_seeds(seed_dir: Path) -> dict[str, SeedMap]:
    key = str(seed_dir)
    if key not in _seed_cache:
        names = json.loads((seed_dir / "seeds.json").read_text())
        _seed_cache[key] = {n: map_seed(n, seed_dir / n) for n in names}
    return _seed_cache[key]


def prepare(seed_dir: Path) -> list[str]:
    """Build the seeds into ``seed_dir`` (once) and list them."""
    index = seed_dir / "seeds.json"
    if not index.exists():
        built = build_seeds(seed_dir)
        index.write_text(json.dumps(sorted(built)))
    return json.loads(index.read_text())


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    buckets: dict[str, dict] = field(default_factory=dict)   # "outcome: detail" -> first result + count
    by_command: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, r: dict) -> None:
        self.counts[r["outcome"]] += 1
        self.by_command[(r["command"].split()[0], r["outcome"])] += 1
        if r["outcome"] in BAD_OUTCOMES:
            key = f"{r['outcome']}: {_bucket(r['detail'])}"
            b = self.buckets.setdefault(key, {"count": 0, "first": r})
            b["count"] += 1

    @property
    def bad(self) -> int:
        return sum(self.counts[o] for o in BAD_OUTCOMES)

    def report(self) -> str:
        total = sum(self.counts.values())
        lines = [f"{total} cases in {self.seconds:.0f} s: " +
                 ", ".join(f"{o} {self.counts[o]}" for o in OUTCOMES)]
        for key, b in sorted(self.buckets.items(), key=lambda kv: -kv[1]["count"]):
            f = b["first"]
            lines.append(f"  {b['count']:6d}  {key}\n          e.g. case {f['case']} ({f['seed']}; {f['mutation']}; "
                         f"{f['command']})")
        return "\n".join(lines)


def _bucket(detail: str) -> str:
    """Failures of one kind at one place count as one bucket (the message may hold offsets)."""
    if " @ " in detail:
        kind, where = detail.split(" @ ", 1)
        return f"{kind.split(':', 1)[0]} @ {where}"
    return detail[:120]


def run(seed_dir: Path, cases: range, fuzz_seed: int, jobs: int = 2, timeout: float = 10.0,
        memory_mb: int = 2048, log=None, progress=None) -> Summary:
    """Run ``cases`` on ``jobs`` worker processes; a worker silent for ``timeout`` + 30 s is killed
    and its case counted as a hang."""
    prepare(seed_dir)
    summary = Summary()
    todo = iter(cases)
    lock = threading.Lock()
    t0 = time.time()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]))
    code = (f"import fuzzlib; fuzzlib.worker_main({str(seed_dir)!r}, {fuzz_seed}, {timeout}, {memory_mb})")

    def take() -> int | None:
        with lock:
            return next(todo, None)

    def record(r: dict) -> None:
        with lock:
            summary.add(r)
            if log is not None:
                log.write(json.dumps(r) + "\n")
            if progress is not None:
                progress(summary)

    def drive() -> None:
        proc = None
        while True:
            number = take()
            if number is None:
                break
            if proc is None:
                proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL if log is None else None, env=env, text=True,
                                        bufsize=1)
            proc.stdin.write(f"{number}\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], timeout + 30 + (60 if number == cases.start else 0))
            line = proc.stdout.readline() if ready else ""
            if line:
                record(json.loads(line))
                continue
            # Silent or dead: a hang in code the alarm could not interrupt, or a crash.
            try:
                died = proc.wait(timeout=5) if ready else None
            except subprocess.TimeoutExpired:
                died = None
            proc.kill()
            proc.wait()
            proc = None
            record({"case": number, "seed": "?", "mutation": "?", "command": "?",
                    "outcome": "hang" if died is None else "traceback",
                    "detail": f"worker silent for {timeout + 30:g} s, killed" if died is None
                    else f"worker died with status {died} (replay the case)",
                    "seconds": None})
        if proc is not None:
            proc.stdin.close()
            proc.wait()

    threads = [threading.Thread(target=drive) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary.seconds = time.time() - t0
    return summary


def replay(seed_dir: Path, fuzz_seed: int, number: int, timeout: float = 10.0) -> dict:
    """Run one case here, in this process (for debugging), and describe it."""
    prepare(seed_dir)
    seeds = load_seeds(seed_dir)
    case = make_case(seeds, fuzz_seed, number)
    work = seed_dir / f"replay-{os.getpid()}"
    try:
        return run_case(case, work, seed_dir / case.seed, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
