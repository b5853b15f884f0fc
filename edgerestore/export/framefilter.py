"""Write the motion deblur stage's filter file (:mod:`edgerestore.runtime.framefilter`) from the torch
prototypes that train it (``benchmarks/blur_estimate.py``, ``benchmarks/global_filter.py``). Host-only."""

import os

from edgerestore.runtime import framefilter


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m edgerestore.export.framefilter",
        description="Write a frame-filter file (.filter.npz) from a blur estimator and a filter predictor "
                    "trained after one student (needs torch).",
        epilog="example: python -m edgerestore.export.framefilter runs/blur-estimator-after.pt "
               "runs/filter.pt edgerestore/weights/nano-motion.filter.npz --student nano-codec")
    parser.add_argument("estimator", help="benchmarks/blur_estimate.py --level --save file (with --train-after "
                                          "STUDENT it reads the student's output)")
    parser.add_argument("filter", help="benchmarks/global_filter.py --mode told --precondition --level --save file")
    parser.add_argument("out", help="the .filter.npz to write (beside the student's model file: %s)" % framefilter.SUFFIX)
    parser.add_argument("--student", default=None, help="the student the filter was trained after (recorded in the file)")
    args = parser.parse_args(argv)
    if not args.out.endswith(framefilter.SUFFIX):
        parser.error("the output must end in %s, so the runtime finds it beside its model" % framefilter.SUFFIX)
    for path in (args.estimator, args.filter):
        if not os.path.isfile(path):
            parser.error("%s does not exist" % path)
    import torch

    estimator = torch.load(args.estimator)
    predictor = torch.load(args.filter)
    framefilter.save(args.out, estimator["state_dict"], predictor["state_dict"], estimator, args.student)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
