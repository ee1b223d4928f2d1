"""A training run's interpreter, started before its turn (trusted: the worker's own code).

    python warm_start.py train.py

On a GPU the next run may start up only once the run before it has finished training (a stranger's
start-up must never share the GPU with a timed run: worker/src/runner/lane.ts). Importing torch is
about 2 s of that start-up and runs no campaign code, so the worker starts this script earlier, while
the run before still trains: it imports torch and numpy (CPU only: importing torch does not start
CUDA), then waits for a line `start` on standard input and runs the script exactly as
`python train.py` would (`__name__ == "__main__"`, its folder first on sys.path). Any other input,
or none, ends it without running the script.

The campaign's code runs only after `start`: nothing of it shares the machine with another run's
training. Environment variables read when torch is imported are the sandbox's by then; train.py's
own `os.environ.setdefault` lines for the compile caches name the same folders.
"""
import os
import runpy
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: warm_start.py SCRIPT [ARGS...]")
    script = sys.argv[1]
    import numpy  # noqa: F401  (the imports are the point: they run before the turn)
    import torch  # noqa: F401

    if sys.stdin.readline().strip() != "start":
        return 0  # not needed: the run was cancelled before its turn
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
