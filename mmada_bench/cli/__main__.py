"""``python -m mmada_bench.cli`` (what ``accelerate launch -m`` and ``torchrun -m`` run)."""

from mmada_bench.cli import main

raise SystemExit(main())
