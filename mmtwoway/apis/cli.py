"""Command-line pieces of the inference tools: model arguments, errors.

Exit statuses of the tools are listed in docs/tools.md.
"""
import argparse
import sys
from typing import Callable, Optional, Sequence

from mmengine.config import DictAction
from mmengine.model import BaseModel

from .model import load_model


def add_model_arguments(parser: argparse.ArgumentParser,
                        decision: bool = True) -> None:
    """``CONFIG CHECKPOINT`` and ``--device``/``--cfg-options``, and with
    ``decision`` the exclusive ``--thresholds FILE`` / ``--topk K``."""
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    if decision:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            '--thresholds',
            help='calibration file from tools/calibrate.py (overrides the '
            "config's decision)")
        group.add_argument(
            '--topk', type=int, help='predict the K best classes per image')
    parser.add_argument('--device', help='cpu or cuda (default: cuda if any)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.head.calibration=FILE')


def model_from_args(args: argparse.Namespace) -> BaseModel:
    """:func:`load_model` with the arguments of :func:`add_model_arguments`.

    Raises:
        ValueError: ``--topk`` below 1, or what :func:`load_model` raises.
    """
    topk = getattr(args, 'topk', None)
    if topk is not None and topk < 1:
        raise ValueError(f'--topk must be >= 1, got {topk}')
    return load_model(
        args.config,
        args.checkpoint,
        args.device,
        calibration=getattr(args, 'thresholds', None),
        topk=topk,
        cfg_options=args.cfg_options)


def describe_decision(model: BaseModel) -> str:
    """How the model's head decides labels, in one line."""
    decision = getattr(model.head, 'decision', None)
    return decision.describe() if decision else "the head's pred_label"


def run_tool(main: Callable[[Optional[Sequence[str]]], Optional[int]],
             name: str) -> None:
    """Run a tool's ``main``; bad input ends it with a one-line error.

    The error names the file and what to do, without a traceback. Exit
    status: 0 success, 1 error, 2 usage error (argparse), or the small int
    ``main`` returns.

    Args:
        main (Callable[[Optional[Sequence[str]]], Any]):
            The tool's entry point; a non-zero int it returns becomes the
            exit status, anything else it returns (e.g. a summary for
            callers in Python) means success.
        name (str): The tool's file name, for the message.
    """
    try:
        status = main(None)
    except (FileNotFoundError, ValueError, KeyError) as err:
        # KeyError's str() is the quoted key: show the message itself.
        text = err.args[0] if isinstance(err, KeyError) and err.args else err
        sys.exit(f'{name}: error: {text}')
    # sys.exit(obj) prints obj and exits 1 for anything but an int.
    if isinstance(status, int) and not isinstance(status, bool) and status:
        sys.exit(status)
    sys.exit(0)
