"""``transt-convert``: write the project's checkpoint format from any accepted input."""
from __future__ import annotations

import argparse
import sys

from ..model import TransTConfig
from .loader import CheckpointError, load_model, read_checkpoint, save_checkpoint


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='transt-convert',
        description="Convert an authors' TransT checkpoint (training checkpoint with 'net', or a bare "
                    "state dict) or a project checkpoint to the project format {'model','config','meta'}.")
    parser.add_argument('input', help='checkpoint to read (nothing in it is executed)')
    parser.add_argument('output', help='project-format checkpoint to write (atomically)')
    parser.add_argument('--half', action='store_true', help='store float tensors as float16 (half size)')
    parser.add_argument('--nhead', type=int, default=None,
                        help='attention heads, when not the default 8 (not recorded in authors\' files)')
    args = parser.parse_args(argv)
    try:
        checkpoint = read_checkpoint(args.input)
        config = None
        if args.nhead is not None:
            from .keys import infer_config
            config = TransTConfig(**{**infer_config(checkpoint.state_dict).to_dict(), 'nhead': args.nhead})
        model = load_model(args.input, config=config)
    except CheckpointError as error:
        print(f'transt-convert: error: {error}', file=sys.stderr)
        return 1
    meta = {'converted_from': str(args.input), 'source_format': checkpoint.source_format, **checkpoint.meta}
    save_checkpoint(args.output, model, meta=meta, half=args.half)
    print(f'wrote {args.output} ({checkpoint.source_format} -> project format)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
