"""``transt-convert``: write the project's checkpoint format from any accepted input."""
from __future__ import annotations

import argparse
import sys

from ..model import TransTConfig
from .keys import infer_config
from .loader import CheckpointError, load_model, read_checkpoint, save_checkpoint

ARCHITECTURE_OVERRIDES = ('nhead', 'template_size', 'search_size')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='transt-convert',
        description="Convert an authors' TransT checkpoint (training checkpoint with 'net', or a bare "
                    "state dict) or a project checkpoint to the project format {'model','config','meta'}.")
    parser.add_argument('input', help='checkpoint to read (nothing in it is executed)')
    parser.add_argument('output', help='project-format checkpoint to write (atomically)')
    parser.add_argument('--half', action='store_true', help='store float tensors as float16 (half size)')
    for name in ARCHITECTURE_OVERRIDES:
        parser.add_argument('--' + name.replace('_', '-'), type=int, default=None,
                            help=f'{name}, when not the default (state dicts do not record it)')
    args = parser.parse_args(argv)
    try:
        checkpoint = read_checkpoint(args.input)
        overrides = {name: getattr(args, name) for name in ARCHITECTURE_OVERRIDES if getattr(args, name)}
        config = None
        if overrides:
            base = checkpoint.config or infer_config(checkpoint.state_dict)
            config = TransTConfig(**{**base.to_dict(), **overrides})
        model = load_model(args.input, config=config)
    except (CheckpointError, ValueError) as error:
        print(f'transt-convert: error: {error}', file=sys.stderr)
        return 1
    meta = {'converted_from': str(args.input), 'source_format': checkpoint.source_format, **checkpoint.meta}
    save_checkpoint(args.output, model, meta=meta, half=args.half)
    print(f'wrote {args.output} ({checkpoint.source_format} -> project format)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
