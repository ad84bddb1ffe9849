"""`mllm-explain` and `python -m mllm_explain`: stops (Ctrl-C, SIGTERM) are handled from the first
moment, before the command line's own imports, so that a stop while they load is one line too."""

from __future__ import annotations

from mllm_explain import interrupts


def main() -> None:
    interrupts.install()
    try:
        from mllm_explain.cli import main as run
    except KeyboardInterrupt:
        interrupts.exit_stopped(interrupts.reason())
    run()


if __name__ == "__main__":
    main()
