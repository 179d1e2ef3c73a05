"""`python -m worker.ops.cli`: the `wire` command, as `wire run` starts its processes."""

from . import main

if __name__ == "__main__":
    main()
