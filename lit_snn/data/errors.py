"""Error types raised by the data package."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk where the DataModule looked for it.

    Nothing is ever downloaded: the message names the path that was inspected, the
    expected on-disk layout and where to obtain the files.
    """

    def __init__(self, name: str, path: str, layout: str, source: str, detail: str = "") -> None:
        self.name = name
        self.path = str(path)
        self.source = source.rstrip()
        msg = (
            f"{name} not found at '{self.path}'"
            + (f" ({detail})" if detail else "")
            + f".\nExpected layout:\n{layout.rstrip()}\n"
            + f"Where to get it: {source.rstrip()}\n"
            + "lit_snn never downloads datasets; put the manually obtained files in that layout "
            + "and pass its parent folder as `root`."
        )
        super().__init__(msg)


class CorruptDataError(RuntimeError):
    """A file of a dataset exists but cannot be parsed (truncated, garbage, wrong structure)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"corrupt or unreadable data file '{self.path}': {reason}")
