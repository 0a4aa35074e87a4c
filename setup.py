"""Builds the Cython hot path under sentinel/_core. Metadata lives in pyproject.toml.

``SENTINEL_NO_EXTENSIONS=1`` at build time skips compiling: the package then runs on its
pure-Python twins, which behave the same, only slower. The Oracle scripts in the top-level ``sql/``
are shipped inside the package as ``sentinel/sql`` so ``sentinel migrate --oracle`` finds them.
"""

import os
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

MODULES = ("_decoder_c", "_batch_c", "_ring_c")
HERE = Path(__file__).parent


class BuildWithSql(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "sentinel" / "sql"
        target.mkdir(parents=True, exist_ok=True)
        for script in sorted((HERE / "sql").glob("*.sql")):
            shutil.copy2(script, target / script.name)


def extensions() -> list:
    if os.environ.get("SENTINEL_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    from Cython.Build import cythonize

    exts = [Extension(f"sentinel._core.{name}", [f"sentinel/_core/{name}.pyx"]) for name in MODULES]
    return cythonize(
        exts,
        compiler_directives={"language_level": "3", "embedsignature": True},
        annotate=os.environ.get("SENTINEL_CYTHON_ANNOTATE") == "1",
    )


setup(ext_modules=extensions(), cmdclass={"build_py": BuildWithSql})
