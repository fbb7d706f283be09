"""``transt-trax``: TransT as a TraX server, so the VOT toolkit (``vot evaluate``) can run it.

    transt-trax [--checkpoint CKPT] [--device cpu|cuda|cuda:N] [--backend B] [--precision P]

The client (the toolkit, or ``trax.client.Client``) starts this command and talks TraX over its
stdin / stdout (or the socket of ``TRAX_SOCKET``). Regions: rectangles, and polygons taken as their
bounding rectangle; the answers are rectangles with the per-frame property ``confidence`` (the
tracker's raw target probability, ``TrackResult.score``; 1 on the initialisation frame). Images: file
paths, in-memory images and encoded buffers (:mod:`.trax_messages`). One target per session; a new
``initialize`` request starts over with a new target.

The model is loaded (and warmed up) before the handshake. A checkpoint that cannot be used, an image
that cannot be read or an unsupported request ends the session: the reason goes to stderr (and, once
the session is open, to the client in the quit message) and the process exits with status 1. Nothing
but the protocol is written to the protocol's stdout: the process's own stdout goes to stderr.
See docs/evaluation.md for a VOT workspace that runs it.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from ..common.ros_environment import passive_openmp_env
from ..runtimes.backends import add_backend_arguments

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / 'data' / 'demo_model.pth'
PROGRAM = 'transt-trax'
CONFIDENCE = 'confidence'
"""The per-frame property that carries the tracker's score (the toolkit's long-term analyses read it)."""
EXIT_ERROR = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--checkpoint', type=Path, default=DEFAULT_CHECKPOINT,
                        help='TransT checkpoint (default: the bundled demo model)')
    parser.add_argument('--device', default='cpu', help="torch device ('cpu', 'cuda', 'cuda:N'; default cpu)")
    add_backend_arguments(parser)
    return parser


def keep_stdout_for_the_protocol() -> None:
    """Give the TraX library duplicates of stdin / stdout (``TRAX_IN`` / ``TRAX_OUT``) and point the
    process's stdout at stderr, so that a stray print (ours, a library's) cannot corrupt the protocol.
    Nothing to do when the client chose a socket or the streams itself."""
    if any(name in os.environ for name in ('TRAX_SOCKET', 'TRAX_IN', 'TRAX_OUT')):
        return
    sys.stdout.flush()
    os.environ['TRAX_IN'] = str(os.dup(sys.stdin.fileno()))
    os.environ['TRAX_OUT'] = str(os.dup(sys.stdout.fileno()))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def fail(message: str) -> int:
    print(f'{PROGRAM}: error: {message}', file=sys.stderr, flush=True)
    return EXIT_ERROR


def quit_quietly(server, reason: str | None = None) -> None:
    """End the session; a client that is gone already cannot be told."""
    import trax

    try:
        server.quit(reason=reason)
    except trax.TraxException:
        pass


def serve(server, tracker) -> None:
    """Answer requests until the client quits; a request that cannot be served raises (the caller ends
    the session)."""
    import trax

    from .trax_messages import TraxRequestError, frame_of, rectangle, single_target

    initialized = False
    while True:
        request = server.wait()
        if request.type == trax.TraxStatus.QUIT:
            return
        frame = frame_of(request.image)
        if request.type == trax.TraxStatus.INITIALIZE or request.objects:
            box = single_target(request.objects)
            tracker.initialize(frame, box)
            initialized = True
            server.status([(rectangle(box), {CONFIDENCE: '1'})])
            continue
        if not initialized:
            raise TraxRequestError('a frame before any initialize request')
        result = tracker.track(frame)
        server.status([(rectangle(result.box), {CONFIDENCE: repr(float(result.score))})])


def main(argv: list[str] | None = None) -> int:
    passive_openmp_env(os.environ)  # before torch is imported
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    keep_stdout_for_the_protocol()
    try:
        import trax
    except ImportError as error:
        return fail(f'the TraX bindings are missing ({error}); pip install vot-trax==4.0.2')
    from ..checkpoint import CheckpointError
    from ..tracking.warmup import WarmUpError
    from .offline_run import transt_tracker
    from .trax_messages import CHANNEL, IMAGE_FORMATS, REGION_FORMATS

    try:
        tracker = transt_tracker(args.checkpoint, args.device, args.precision, backend=args.backend)
    except (CheckpointError, WarmUpError, ValueError, RuntimeError, OSError) as error:
        cause = str(error) if str(args.checkpoint) in str(error) else f'{args.checkpoint}: {error}'
        return fail(f'cannot load the tracker: {cause}')
    try:
        server = trax.Server(REGION_FORMATS, IMAGE_FORMATS, [CHANNEL], tracker_name='TransT',
                             tracker_description=f'TransT ({args.checkpoint.name}, {args.device}, {args.precision})',
                             tracker_family='transt')
    except trax.TraxException as error:
        return fail(f'no TraX session: {error}')
    try:
        serve(server, tracker)
    except trax.TraxException as error:  # the client went away or broke the protocol: no one to tell
        return fail(f'TraX session lost: {error}')
    except Exception as error:  # TraxRequestError, ImageReadError, TrackerInputError ...: end the session, say why
        if not isinstance(error, (ValueError, OSError)):
            traceback.print_exc(file=sys.stderr)
        quit_quietly(server, str(error))
        return fail(str(error))
    quit_quietly(server)
    return 0


if __name__ == '__main__':
    sys.exit(main())
