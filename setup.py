"""Builds the Cython hot path under sentinel/_core. Metadata lives in pyproject.toml.

``SENTINEL_NO_EXTENSIONS=1`` at build time skips compiling: the package then runs on its
pure-Python twins, which behave the same, only slower.
"""

import os

from setuptools import Extension, setup

MODULES = ("_decoder_c", "_batch_c", "_ring_c")


def extensions() -> list[Extension]:
    if os.environ.get("SENTINEL_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    from Cython.Build import cythonize

    exts = [Extension(f"sentinel._core.{name}", [f"sentinel/_core/{name}.pyx"]) for name in MODULES]
    return cythonize(
        exts,
        compiler_directives={"language_level": "3", "embedsignature": True},
        annotate=os.environ.get("SENTINEL_CYTHON_ANNOTATE") == "1",
    )


setup(ext_modules=extensions())
