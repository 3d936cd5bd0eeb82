"""The optional C speedup (plogd/formats/_split.c, see plogd/formats/compiled.py): built
from source at install when a C compiler and the Python headers are there. A build that
fails, for whatever reason, leaves plogd installed in pure Python (same results, slower)."""
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the speedup is optional."""

    def run(self):
        try:
            super().run()
        except Exception as e:      # no compiler at all, or the toolchain set-up failed
            self._skipped(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:      # e.g. Python.h missing: python3-dev
            self._skipped(e)

    @staticmethod
    def _skipped(error):
        print(f"plogd: the compiled speedup was not built ({error}); plogd runs in pure "
              "Python. To build it: apt-get install gcc python3-dev, then reinstall plogd.",
              file=sys.stderr)


setup(ext_modules=[Extension("plogd.formats._split", ["plogd/formats/_split.c"])],
      cmdclass={"build_ext": OptionalBuildExt})
