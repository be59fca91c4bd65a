"""`make bench`: the benchmark harness.

No scenario exists yet: the benchmarks issue adds the harness (production topology, a ceiling
view, wrk and a WebSocket load client, ratios against the ceiling). Until then this says so and
measures nothing.
"""

import sys


def main() -> int:
    print("make bench: no benchmark scenarios are implemented yet; nothing was measured.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
