"""What rendering one message costs the writer (app.markup.to_html), per kind of text.

    .venv/bin/python bench/markup_cost.py

The writer renders each message once, before its insert; fan-out and reads copy
the stored HTML. Prints microseconds per message, best of 5 runs of N each, as
wall-clock time and as this process's CPU time (which other load on a shared
machine inflates less).
"""

from __future__ import annotations

import time
import timeit

from app.markup import to_html

TEXTS = {
    "short plain": "sounds good, see you at 3",
    "typical formatted": "**heads up** @bob: the `deploy` job failed, see https://ci.example.com/42",
    "quote + list": "> can we ship today?\n\nyes, once:\n- tests pass\n- @bob reviews\n- docs",
    "code block 40 lines": "```\n" + "for i in range(10):\n    print(i)  # <x>\n" * 20 + "```",
    "4000 chars prose": ("lorem ipsum *dolor* sit amet, https://example.com/x " * 80)[:4000],
}
N = 300


def main() -> None:
    for name, text in TEXTS.items():
        best = min(timeit.repeat(lambda t=text: to_html(t, "bob"), number=N, repeat=5))
        cpu = min(
            timeit.repeat(
                lambda t=text: to_html(t, "bob"), number=N, repeat=5, timer=time.process_time
            )
        )
        print(
            f"{name:22} {len(text):5} chars  {best / N * 1e6:8.1f} µs wall"
            f"  {cpu / N * 1e6:8.1f} µs CPU per message"
        )


if __name__ == "__main__":
    main()
