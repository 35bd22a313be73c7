"""Progress of a long export: a bar on a terminal (tqdm), plain lines otherwise (logs, CI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO


def reporter(stream: TextIO, every: int = 1000) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """A progress callback (done, total, code) and a function that finishes the display."""
    if stream.isatty():
        from tqdm import tqdm

        bar = tqdm(total=None, unit="code", file=stream, dynamic_ncols=True)

        def tick(done: int, total: int, code: str) -> None:
            if bar.total != total:
                bar.total = total
            bar.set_postfix_str(code, refresh=False)
            bar.update(done - bar.n)

        return tick, bar.close

    def line(done: int, total: int, code: str) -> None:
        if done % every == 0 or done == total:
            print(f"exported {done}/{total} codes (last {code})", file=stream, flush=True)

    return line, lambda: None
