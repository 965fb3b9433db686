"""A terminal that types at its prompt in a process of its own: ``python -m bench.echoprobe <url>``.

It opens the terminal websocket ``url``, waits for the prompt, then types ``echo abcdefghijklmno``
a key at a time (each once the previous one's echo came), Enter, a typist's pause, again, until its
standard input ends; then it prints the echo latencies (seconds, a JSON list) on standard output.

The classroom bench runs it beside the class so that what it measures is the path a keystroke takes
through Playground under the class's load, not the wait of a key behind fifty learners' work in the
bench's own event loop (a learner's browser is a process, on a machine, of its own).
"""

from __future__ import annotations

import asyncio
import json
import sys

from bench.terminals import PROMPT, PlaygroundClient, type_line

LINE = "echo abcdefghijklmno"
PAUSE = 0.2  # seconds between lines: a typist's, not a loop that loads the host itself


async def probe(url: str, stop: asyncio.Event) -> list[float]:
    """Type at the prompt of the terminal at ``url`` until ``stop`` is set; the echo latencies."""
    terminal = await PlaygroundClient.open(url)
    echoes: list[float] = []
    try:
        await terminal.expect(PROMPT, 60)
        while not stop.is_set():
            await type_line(terminal, LINE, echoes)
            await terminal.expect(PROMPT, 30)
            await asyncio.sleep(PAUSE)
        return echoes
    finally:
        await terminal.close()


async def main(url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    typing = asyncio.create_task(probe(url, stop))
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our standard input
    stop.set()
    print(json.dumps(await typing), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
