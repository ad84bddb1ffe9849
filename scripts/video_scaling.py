"""`bench` section 7 alone, at any frame counts: time and memory of explaining a video on the bundled model against
its frame count (docs/PERFORMANCE.md, "Video"), one repeat each, as JSON.

    python scripts/video_scaling.py --frames 8,16,32,64,128,256,512 [--methods logit_lens,tam]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from mllm_explain import bench, load_model
from mllm_explain.data.synth import DEFAULT_PROMPT
from mllm_explain.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", default="8,16,32,64,128")
    parser.add_argument("--methods", default=",".join(bench.VIDEO_METHODS))
    args = parser.parse_args()
    sizes = replace(bench.FULL, repeats=1, video_frames=tuple(int(n) for n in args.frames.split(",")))
    runner = bench.Bench(load_model(), load_image(bench.EXAMPLE_IMAGE), DEFAULT_PROMPT, sizes, bench.memory_measure(),
                         lambda label: print(label, file=sys.stderr))
    print(json.dumps(runner.video(tuple(args.methods.split(","))), indent=1))


if __name__ == "__main__":
    main()
