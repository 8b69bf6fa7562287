"""Builds the compiled walk (pipeline/_walk.pyx) against lxml's C API; everything else is in
pyproject.toml. The .pyx's SHA-256 is compiled in, so the module can tell when it is older than
its source (an editable install after an edit)."""

import hashlib
from pathlib import Path

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

SOURCE = "pipeline/_walk.pyx"
source_sha256 = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()

setup(ext_modules=cythonize(
    [Extension("pipeline._walk", [SOURCE], include_dirs=lxml.get_include(),
               define_macros=[("WALK_SOURCE_SHA256", f'"{source_sha256}"')])],
    compiler_directives={"language_level": 3},
))
