"""Builds the compiled walk (pipeline/_walk.pyx) against lxml's C API; everything else is in
pyproject.toml."""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("pipeline._walk", ["pipeline/_walk.pyx"], include_dirs=lxml.get_include())],
    compiler_directives={"language_level": 3},
))
