"""The one exception of config validation: :class:`ConfigError`, a one-line message."""

from __future__ import annotations

import re


class ConfigError(ValueError):
    """A config problem, reported as one line naming the key (newlines are folded)."""

    def __init__(self, message: str):
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", str(message)).strip())
