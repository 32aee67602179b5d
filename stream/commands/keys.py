"""`stream keys NAME [--dir keys]`: a ZeroMQ CURVE keypair for a graph whose nodes talk to other hosts."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="make a CURVE keypair (NAME.key public, NAME.key_secret mode 0600) for tcp:// "
                       "between hosts; see [curve] in stream/graph.py")
    p.add_argument("name", help="key name, e.g. the host's name")
    p.add_argument("--dir", type=Path, default=Path("keys"), help="folder for the key files (default: keys)")
    p.set_defaults(func=_keys)


def _keys(args: argparse.Namespace) -> int:
    from stream.curve import write_keypair

    public, secret = write_keypair(args.dir, args.name)
    print(f"public key {public} (give it to the peers: their [curve] authorized folder or servers table)")
    print(f"secret key {secret} (mode 0600; this host's [curve] secret_key; never share it)")
    return 0
