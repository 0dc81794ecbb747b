"""``python -m snfseq.cli``: the ``snfseq`` command.

Example:
    >>> from snfseq.cli import main
    >>> main(["train", "missing.nc", "-o", "m.pt"])
    2
"""

from __future__ import annotations

from snfseq.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
