"""Entry of scripts/demo.sh: the demo pipeline (nninteractive_train/demo/pipeline.py)."""

import sys

from nninteractive_train.demo.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
