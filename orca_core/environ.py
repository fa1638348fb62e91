"""Environment variables set for a context's lifetime and restored afterwards."""

from __future__ import annotations

import os


class EnvPatch:
    """Sets variables in `os.environ`, remembering the first value each had; `restore()` puts them back."""

    def __init__(self):
        self._saved: dict[str, str | None] = {}

    def set(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
