"""What rendering one message costs the writer (app.markup), per kind of text.

    .venv/bin/python bench/markup_cost.py

The writer renders each message once; fan-out and reads copy the stored HTML.
Since 2026-12-03 it renders in the sender's task, before the write transaction
(app.markup.prepare), and inside the transaction only compares the mentions it
found with the ones the HTML was rendered for (rendering again if they differ).
Prints microseconds per message, best of 5 runs of N each, of this process's CPU
time (which other load on a shared machine inflates less than wall-clock time):

- "before": what the transaction did until then, app.mentions.candidates (a
  regex over the raw text) and app.markup.to_html;
- "sender": app.markup.prepare, now outside the transaction;
- "in tx": what is left inside when the mentions were guessed right (the
  usual case), and "in tx, other": when they were not ("@bob" typed for "Bob").
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable

from app.markup import prepare, to_html
from app.mentions import candidates

TEXTS = {
    "short plain": "sounds good, see you at 3",
    "typical formatted": "**heads up** @bob: the `deploy` job failed, see https://ci.example.com/42",
    "quote + list": "> can we ship today?\n\nyes, once:\n- tests pass\n- @bob reviews\n- docs",
    "code block 40 lines": "```\n" + "for i in range(10):\n    print(i)  # <x>\n" * 20 + "```",
    "4000 chars prose": ("lorem ipsum *dolor* sit amet, https://example.com/x " * 80)[:4000],
}
N = 300


def cpu_us(call: Callable[[], object]) -> float:
    best = min(timeit.repeat(call, number=N, repeat=5, timer=time.process_time))
    return best / N * 1e6


def main() -> None:
    print(f"{'text':22} {'chars':>5} {'before':>9} {'sender':>9} {'in tx':>9} {'in tx, other':>13}")
    for name, text in TEXTS.items():
        mentions = "bob" if "@bob" in text else ""
        prepared = prepare(text)
        before = cpu_us(lambda t=text, m=mentions: (candidates(t), to_html(t, m)))
        sender = cpu_us(lambda t=text: prepare(t))
        inside = cpu_us(lambda t=text, m=mentions, p=prepared: p.html_for(t, m))
        other = cpu_us(lambda t=text, p=prepared: p.html_for(t, "Bob"))
        print(
            f"{name:22} {len(text):5} {before:7.1f}µs {sender:7.1f}µs {inside:7.2f}µs "
            f"{other:11.1f}µs"
        )


if __name__ == "__main__":
    main()
