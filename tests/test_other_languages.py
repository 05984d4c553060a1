"""Programs in Fortran, Go and Rust: what their compilers emit merges, the program runs the same,
and gdb lists the same program with no complaint the input did not cause.

Rust is the case that needed something of its own: rustc puts a method's abstract instance inside
its struct, so a merged struct would move what the unit's inlined calls name by
DW_AT_abstract_origin to another unit (hash._holding_abstract_instances).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import linkplugin, need, run
from linkplugin.gdblist import compare_listings

FORTRAN = {"shapes.f90": """
module shapes
  implicit none
  type :: point
     real(8) :: x, y
  end type point
  type :: poly
     type(point), allocatable :: pts(:)
     character(len=16) :: name
  end type poly
contains
  function area(p) result(a)
    type(poly), intent(in) :: p
    real(8) :: a
    integer :: i, n
    a = 0
    n = size(p%pts)
    do i = 1, n
       a = a + p%pts(i)%x * p%pts(mod(i, n) + 1)%y - p%pts(mod(i, n) + 1)%x * p%pts(i)%y
    end do
    a = abs(a) / 2
  end function area
end module shapes
""", "main.f90": """
program main
  use shapes
  implicit none
  type(poly) :: sq
  real(8), allocatable :: grid(:,:)
  allocate(sq%pts(4))
  sq%pts(1) = point(0, 0); sq%pts(2) = point(1, 0); sq%pts(3) = point(1, 1); sq%pts(4) = point(0, 1)
  sq%name = 'square'
  allocate(grid(3, 4))
  grid = 1.5d0
  print *, trim(sq%name), area(sq), sum(grid)
end program main
"""}

GO = {"main.go": """package main

import (
	"fmt"
	"sort"
)

type Shape interface{ Area() float64 }
type Rect struct{ W, H float64 }
type Circle struct{ R float64 }

func (r Rect) Area() float64   { return r.W * r.H }
func (c Circle) Area() float64 { return 3.14159 * c.R * c.R }

func main() {
	shapes := map[string]Shape{"rect": Rect{2, 3}, "circle": Circle{1}}
	keys := make([]string, 0)
	for k := range shapes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s %.3f\\n", k, shapes[k].Area())
	}
}
"""}

RUST = {"main.rs": """use std::collections::HashMap;
#[derive(Debug, Clone)]
enum Shape { Circle { r: f64 }, Rect { w: f64, h: f64 }, Tri(f64, f64, f64) }
trait Area { fn area(&self) -> f64; }
impl Area for Shape {
    fn area(&self) -> f64 {
        match self {
            Shape::Circle { r } => 3.14159 * r * r,
            Shape::Rect { w, h } => w * h,
            Shape::Tri(a, b, c) => { let s = (a + b + c) / 2.0; (s * (s - a) * (s - b) * (s - c)).sqrt() }
        }
    }
}
fn main() {
    let shapes = vec![Shape::Circle { r: 1.0 }, Shape::Rect { w: 2.0, h: 3.0 }, Shape::Tri(3.0, 4.0, 5.0)];
    let mut by: HashMap<String, f64> = HashMap::new();
    for s in &shapes { by.insert(format!("{:?}", s), s.area()); }
    let mut keys: Vec<_> = by.keys().cloned().collect();
    keys.sort();
    for k in keys { println!("{} {:.3}", k, by[&k]); }
}
"""}


def _build(folder: Path, lang: str) -> Path:
    out = folder / "prog"
    if lang == "fortran":
        need("gfortran")
        sources = FORTRAN
        cmd = ["gfortran", "-g", "-O1", "-o", out, "shapes.f90", "main.f90"]
    elif lang == "go":
        need("go")
        sources = GO
        cmd = ["go", "build", "-o", out, "main.go"]  # DWARF compressed (SHF_COMPRESSED), as Go does
    else:
        # Debian 12's rustc 1.63 (.ci/run installs it) is the one whose output showed the
        # abstract instances in structs; a rustup toolchain on PATH is the fallback.
        rustc = "/usr/bin/rustc" if os.access("/usr/bin/rustc", os.X_OK) else "rustc"
        need(rustc)
        sources = RUST
        cmd = [rustc, "-g", "-C", "opt-level=1", "-o", out, "main.rs"]
    for name, text in sources.items():
        (folder / name).write_text(text)
    env = dict(os.environ, GOCACHE=str(folder / "gocache"), GO111MODULE="off")  # one file, no module
    run(*cmd, cwd=folder, env=env)
    return out


@pytest.mark.parametrize("lang", ["fortran", "go", "rust"])
def test_merged_program_lists_the_same(tmp_path: Path, lang: str):
    need("gdb")
    prog = _build(tmp_path, lang)
    out = tmp_path / "prog.merged"
    linkplugin("merge-types", prog, "-o", out, "-j", "2")
    assert run(out).stdout == run(prog).stdout
    report = compare_listings(prog, out)
    assert report.ok and report.input_entries > 0, report.summary(5)
